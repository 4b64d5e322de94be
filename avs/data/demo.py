"""Small synthetic datasets in the real layouts, for demos, tests and the ``avs demo-data`` command.

``write_demo_data(out)`` writes
    out/tau/    TAU Audio-Visual Urban Scenes 2021 development layout (see ``avs.data.tau``): per scene class
                ``n_clips_per_class`` 48 kHz stereo 16-bit WAVs (``scene_audio``), MP4s of the same length
                (small class-coloured moving picture, H.264 when available, stereo AAC of the same audio),
                meta.csv and evaluation_setup/fold1_{train,evaluate,test}.csv. Each class has two or more
                recording locations and the fold1 split is location-disjoint; fold1_test.csv lists the
                evaluate clips without labels, as in the released data.
    out/desed/  DESED layout (see ``avs.data.desed``): 10-s 16 kHz mono clips in audio/train/weak
                (weak tsv), audio/train/synthetic (strong tsv; the events are in the audio),
                audio/train/unlabel_in_domain (no tsv).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avs.classes import SCENE_CLASSES
from avs.testing.media import pick_video_codec, write_video, write_wav
from avs.testing.signals import colored_noise, event_sound, scene_audio

DESED_CLASSES = (
    "Alarm_bell_ringing",
    "Blender",
    "Cat",
    "Dishes",
    "Dog",
    "Electric_shaver_toothbrush",
    "Frying",
    "Running_water",
    "Speech",
    "Vacuum_cleaner",
)
CITIES = ("amsterdam", "barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague", "vienna")

TAU_SAMPLE_RATE_HZ = 48_000
DESED_SAMPLE_RATE_HZ = 16_000
DESED_SECONDS = 10.0


def _tau_class_index(scene: str, position: int) -> int:
    """Index that fixes a scene's sound and colours: its place in SCENE_CLASSES (stable across subsets)."""
    return SCENE_CLASSES.index(scene) if scene in SCENE_CLASSES else len(SCENE_CLASSES) + position


def write_tau_demo(
    root: str | os.PathLike,
    n_clips_per_class: int = 2,
    seconds: float = 10.0,
    seed: int = 0,
    classes: Sequence[str] = SCENE_CLASSES,
    *,
    video_size: tuple[int, int] = (96, 64),
    fps: float = 5.0,
    verbose: bool = False,
) -> dict[str, Any]:
    """TAU-AV 2021 development layout under ``root``; returns counts (see module docstring)."""
    if n_clips_per_class < 1:
        raise ValueError(f"n_clips_per_class must be >= 1, got {n_clips_per_class}")
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct and non-empty, got {list(classes)}")
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "video").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(parents=True, exist_ok=True)
    n_locations = 1 if n_clips_per_class == 1 else max(2, n_clips_per_class // 2)  # per class
    n_eval_locations = 0 if n_locations == 1 else max(1, n_locations // 3)
    width, height = video_size

    rows: list[tuple[str, str, str, str, str]] = []  # (audio, video, scene, identifier, split)
    for position, scene in enumerate(classes):
        k = _tau_class_index(scene, position)
        for i in range(n_clips_per_class):
            j = i % n_locations  # location of this clip within the class
            identifier = f"{CITIES[(k + j) % len(CITIES)]}-{1000 + 10 * k + j}"
            stem = f"{scene}-{identifier}-{40000 + 10 * i}"
            clip_seed = seed * 1_000_003 + k * 1000 + i
            audio = scene_audio(k, seconds, TAU_SAMPLE_RATE_HZ, channels=2, seed=clip_seed)  # (2, samples)
            write_wav(root / "audio" / f"{stem}.wav", audio, TAU_SAMPLE_RATE_HZ, subtype="PCM_16")
            write_video(
                root / "video" / f"{stem}.mp4",
                seconds,
                fps,
                width,
                height,
                audio=audio,
                audio_rate_hz=TAU_SAMPLE_RATE_HZ,
                color_seed=k,
                seed=clip_seed,
            )
            split = "evaluate" if j >= n_locations - n_eval_locations else "train"
            rows.append((f"audio/{stem}.wav", f"video/{stem}.mp4", scene, identifier, split))
            if verbose:
                print(f"tau: {stem} ({split})", flush=True)
    rows.sort()

    def write_tsv(path: Path, header: Sequence[str], lines: list[Sequence[str]]) -> None:
        text = "\t".join(header) + "\n" + "".join("\t".join(line) + "\n" for line in lines)
        path.write_text(text, encoding="utf-8")

    write_tsv(
        root / "meta.csv", ("filename_audio", "filename_video", "scene_label", "identifier"), [r[:4] for r in rows]
    )
    labelled = ("filename_audio", "filename_video", "scene_label")
    setup = root / "evaluation_setup"
    write_tsv(setup / "fold1_train.csv", labelled, [r[:3] for r in rows if r[4] == "train"])
    write_tsv(setup / "fold1_evaluate.csv", labelled, [r[:3] for r in rows if r[4] == "evaluate"])
    write_tsv(setup / "fold1_test.csv", labelled[:2], [r[:2] for r in rows if r[4] == "evaluate"])
    return {
        "root": str(root),
        "clips": len(rows),
        "classes": list(classes),
        "locations": len({r[3] for r in rows}),
        "splits": {s: sum(r[4] == s for r in rows) for s in ("train", "evaluate")},
        "video_codec": pick_video_codec("h264"),
    }


def _desed_clip(
    rng: np.random.Generator, n_events: int, clip_seed: int
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """10-s 16 kHz mono clip: quiet pink noise + ``n_events`` class sounds. Returns (samples,), events."""
    sr = DESED_SAMPLE_RATE_HZ
    audio = colored_noise(DESED_SECONDS, sr, 1.0, seed=clip_seed, amplitude=0.05).astype(np.float64)
    events = []
    for e in range(n_events):
        c = int(rng.integers(len(DESED_CLASSES)))
        duration_s = round(float(rng.uniform(0.5, 3.0)), 3)
        onset_s = round(float(rng.uniform(0.0, DESED_SECONDS - duration_s)), 3)
        sound = event_sound(c, duration_s, sr, seed=clip_seed * 10 + e)  # (event samples,)
        start = int(round(onset_s * sr))
        stop = min(audio.size, start + sound.size)
        audio[start:stop] += sound[: stop - start]
        events.append((onset_s, round(onset_s + (stop - start) / sr, 3), DESED_CLASSES[c]))
    peak = float(np.max(np.abs(audio)))
    if peak > 0.9:
        audio *= 0.9 / peak
    return audio.astype(np.float32), sorted(events)


def write_desed_demo(
    root: str | os.PathLike, n_clips_per_subset: int = 4, seed: int = 0, *, verbose: bool = False
) -> dict[str, Any]:
    """DESED layout under ``root``: train/weak, train/synthetic (strong), train/unlabel_in_domain."""
    if n_clips_per_subset < 1:
        raise ValueError(f"n_clips_per_subset must be >= 1, got {n_clips_per_subset}")
    root = Path(root)
    rng = np.random.default_rng([seed, 23])
    (root / "metadata" / "train").mkdir(parents=True, exist_ok=True)
    counts = {}
    weak_lines, strong_lines = ["filename\tevent_labels"], ["filename\tonset\toffset\tevent_label"]
    for subset in ("train/weak", "train/synthetic", "train/unlabel_in_domain"):
        folder = root / "audio" / subset
        for i in range(n_clips_per_subset):
            clip_seed = seed * 1_000_003 + 100 * len(counts) + i
            if subset == "train/synthetic":
                name = f"{i}.wav"
                n_events = 0 if i == 0 else int(rng.integers(1, 4))  # clip 0: no event
            else:
                youtube_id = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-"), 11))
                start_s = float(rng.integers(0, 30))
                name = f"Y{youtube_id}_{start_s:.3f}_{start_s + DESED_SECONDS:.3f}.wav"
                n_events = int(rng.integers(1, 3))
            audio, events = _desed_clip(rng, n_events, clip_seed)
            write_wav(folder / name, audio, DESED_SAMPLE_RATE_HZ, subtype="PCM_16")
            if subset == "train/weak":
                weak_lines.append(f"{name}\t{','.join(sorted({e[2] for e in events}))}")
            elif subset == "train/synthetic":
                strong_lines += [f"{name}\t{on:.3f}\t{off:.3f}\t{lab}" for on, off, lab in events] or [f"{name}\t\t\t"]
            if verbose:
                print(f"desed: {subset}/{name} ({len(events)} events)", flush=True)
        counts[subset] = n_clips_per_subset
    (root / "metadata" / "train" / "weak.tsv").write_text("\n".join(weak_lines) + "\n", encoding="utf-8")
    (root / "metadata" / "train" / "synthetic.tsv").write_text("\n".join(strong_lines) + "\n", encoding="utf-8")
    return {"root": str(root), "clips": sum(counts.values()), "subsets": counts}


def write_demo_data(
    out: str | os.PathLike,
    n_clips_per_class: int = 2,
    seconds: float = 10.0,
    seed: int = 0,
    classes: Sequence[str] = SCENE_CLASSES,
    *,
    desed: bool = True,
    n_desed_clips_per_subset: int = 4,
    verbose: bool = False,
) -> dict[str, Any]:
    """Write ``out/tau`` (TAU-AV layout) and, with ``desed``, ``out/desed``; return their paths and counts.

    The default (10 classes x 2 clips of 10 s, 3 x 4 DESED clips) takes a few seconds to write.
    Deterministic: the same arguments give the same files.
    """
    out = Path(out)
    tau = write_tau_demo(out / "tau", n_clips_per_class, seconds, seed, classes, verbose=verbose)
    result: dict[str, Any] = {"out": str(out), "tau": tau}
    if desed:
        result["desed"] = write_desed_demo(out / "desed", n_desed_clips_per_subset, seed, verbose=verbose)
    return result
