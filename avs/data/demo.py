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
                audio/train/unlabel_in_domain (no tsv). A small sample of the layout (10 classes of simple
                tones / noise bands) for reader and pipeline tests.
    out/sed/    (``sed=True``, ``write_sed_demo``) a DESED-style sound event detection set that a small CRNN
                learns on a CPU in minutes (paper 003's demo; see ``write_sed_demo``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avs.classes import DESED_CLASSES, SCENE_CLASSES
from avs.testing import sound_events
from avs.testing.media import pick_video_codec, write_video, write_wav
from avs.testing.signals import colored_noise, event_sound, scene_audio

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


# ------------------------------------------------------------------------------------ learnable SED set
# subset -> (audio folder under audio/, strong / weak / None labels, acoustic condition, P(no event) per clip)
SED_SUBSETS: dict[str, tuple[str, str | None, str, float]] = {
    "synthetic": ("train/synthetic20/soundscapes", "strong", "synthetic", 0.15),
    "weak": ("train/weak", "weak", "recorded", 0.0),  # DESED's weak clips all have at least one label
    "unlabeled": ("train/unlabel_in_domain", None, "recorded", 0.15),
    "validation": ("validation", "strong", "recorded", 0.1),
}
SED_DEFAULT_CLIPS = {"synthetic": 60, "weak": 60, "unlabeled": 60, "validation": 30}
SED_MAX_EVENTS = 3


def _youtube_name(rng: np.random.Generator, taken: set[str]) -> str:
    """A DESED-style recorded-clip file name, ``Y<11-character id>_<start>_<end>.wav``, not in ``taken``."""
    while True:
        youtube_id = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"), 11))
        start_s = float(rng.integers(0, 300))
        name = f"Y{youtube_id}_{start_s:.3f}_{start_s + DESED_SECONDS:.3f}.wav"
        if name not in taken:
            taken.add(name)
            return name


def write_sed_demo(
    root: str | os.PathLike,
    n_synthetic: int = SED_DEFAULT_CLIPS["synthetic"],
    n_weak: int = SED_DEFAULT_CLIPS["weak"],
    n_unlabeled: int = SED_DEFAULT_CLIPS["unlabeled"],
    n_validation: int = SED_DEFAULT_CLIPS["validation"],
    seed: int = 0,
    *,
    classes: Sequence[str] = sound_events.SOUND_EVENT_CLASSES,
    verbose: bool = False,
) -> dict[str, Any]:
    """A DESED-style SED set under ``root`` whose events a small CRNN can learn (paper 003's layout).

    Written (10-s 16 kHz mono 16-bit WAVs; ``avs.data.read_desed(root)`` reads it)::

        audio/train/synthetic20/soundscapes/<i>.wav   metadata/train/synthetic20/soundscapes.tsv  (strong)
        audio/train/weak/Y<id>_<s>_<e>.wav           metadata/train/weak.tsv                      (weak)
        audio/train/unlabel_in_domain/Y<id>_...wav   (no tsv: unlabeled)
        audio/validation/Y<id>_...wav                metadata/validation/validation.tsv           (strong)
                                                     metadata/validation/durations.tsv  (filename duration)

    The events are generated sounds of ``classes`` (default the five of ``avs.testing.sound_events``:
    Alarm_bell_ringing, Dishes, Dog, Frying, Speech; each event's pitch, length and level drawn at random),
    0-3 per clip (weak clips 1-3; about 15 % of the synthetic / unlabeled and 10 % of the validation clips
    have none; synthetic clip 0 and validation clip 0 never have one). As in DESED, the synthetic clips and
    the "recorded" ones differ in acoustics: synthetic = dry events on quiet pink noise; weak, unlabeled and
    validation = the ``RECORDED`` condition (a reverberant room, brown noise with mains hum, a band-limited
    and coloured channel, a level change; see ``avs.testing.sound_events``). Strong tsvs list a clip without
    events on a row with empty onset, offset and label.

    The defaults (60 + 60 + 60 + 30 clips, 35 min of audio, 65 MB, about 350 events) take about 10 s of CPU
    to write; ``avs extract OUT/sed --preset dcase2020-sed`` takes under a minute on a 2-core CPU, and one
    epoch of paper 003's CRNN over the 120 labelled clips about 25 s. Each clip depends
    only on (``seed``, subset, its index): a larger set starts with the clips of a smaller one. Returns
    {"root", "clips", "subsets": {subset folder: clips}, "events": {subset folder: events}, "classes"}.
    """
    sizes = {"synthetic": n_synthetic, "weak": n_weak, "unlabeled": n_unlabeled, "validation": n_validation}
    for key, n in sizes.items():
        if n < 0:
            raise ValueError(f"n_{key} must be >= 0, got {n}")
    if sum(sizes.values()) == 0:
        raise ValueError("write_sed_demo: every subset size is 0; nothing to write")
    unknown = [c for c in classes if c not in sound_events.EVENT_GENERATORS]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(
            f"classes must be distinct names of {list(sound_events.EVENT_GENERATORS)}, got {list(classes)}"
        )
    root = Path(root)
    counts: dict[str, int] = {}
    n_events: dict[str, int] = {}
    for key_index, (key, (folder_name, kind, condition_name, p_empty)) in enumerate(SED_SUBSETS.items()):
        if sizes[key] == 0:
            continue
        condition = sound_events.CONDITIONS[condition_name]
        folder = root / "audio" / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        names: set[str] = set()
        lines: list[str] = []
        durations: list[str] = []
        total = 0
        for i in range(sizes[key]):
            rng = np.random.default_rng([seed, 31, key_index, i])  # this clip only
            name = f"{i}.wav" if key == "synthetic" else _youtube_name(rng, names)
            if (i == 0 and kind == "strong") or rng.uniform() < p_empty:
                wanted = 0
            else:
                wanted = int(rng.integers(1, SED_MAX_EVENTS + 1))
            audio, events = sound_events.soundscape(
                rng, wanted, condition, DESED_SECONDS, DESED_SAMPLE_RATE_HZ, classes=classes
            )
            write_wav(folder / name, audio, DESED_SAMPLE_RATE_HZ, subtype="PCM_16")
            total += len(events)
            if kind == "strong":
                lines += [f"{name}\t{on:.3f}\t{off:.3f}\t{lab}" for on, off, lab in events] or [f"{name}\t\t\t"]
                durations.append(f"{name}\t{DESED_SECONDS:.3f}")
            elif kind == "weak":
                lines.append(f"{name}\t{','.join(sorted({e[2] for e in events}))}")
            if verbose:
                print(f"sed: {folder_name}/{name} ({condition.name}, {len(events)} events)", flush=True)
        if kind is not None:
            tsv = root / "metadata" / f"{folder_name}.tsv"
            if key == "validation":
                tsv = root / "metadata" / "validation" / "validation.tsv"
                (tsv.parent).mkdir(parents=True, exist_ok=True)
                text = "filename\tduration\n" + "".join(d + "\n" for d in durations)
                (tsv.parent / "durations.tsv").write_text(text, encoding="utf-8")
            header = "filename\tonset\toffset\tevent_label" if kind == "strong" else "filename\tevent_labels"
            tsv.parent.mkdir(parents=True, exist_ok=True)
            tsv.write_text(header + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
        counts[folder_name] = sizes[key]
        n_events[folder_name] = total
    return {
        "root": str(root),
        "clips": sum(counts.values()),
        "subsets": counts,
        "events": n_events,
        "classes": list(classes),
    }


def write_demo_data(
    out: str | os.PathLike,
    n_clips_per_class: int = 2,
    seconds: float = 10.0,
    seed: int = 0,
    classes: Sequence[str] = SCENE_CLASSES,
    *,
    tau: bool = True,
    desed: bool = True,
    n_desed_clips_per_subset: int = 4,
    sed: bool = False,
    sed_clips: dict[str, int] | None = None,
    ladi: bool = False,
    ladi_images: int = 240,
    ladi_shots: int = 24,
    voc: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Write ``out/tau`` (TAU-AV layout, with ``tau``), ``out/desed`` (a small DESED-layout sample, with
    ``desed``) and ``out/sed`` (the learnable SED set of ``write_sed_demo``, with ``sed``; ``sed_clips``
    overrides its sizes: {"synthetic", "weak", "unlabeled", "validation"} -> clips) and ``out/ladi`` (paper 002's
    LADI-style images, annotator answers and test shots of ``avs.data.demo_ladi``, with ``ladi``) and
    ``out/voc/VOC2007`` (paper 001's transfer task: a VOC 2007 layout of ``avs.data.demo_voc``, with ``voc``);
    return paths and counts.

    The default (10 classes x 2 clips of 10 s, 3 x 4 DESED clips) takes a few seconds to write.
    Deterministic: the same arguments give the same files.
    """
    if not (tau or desed or sed or ladi or voc):
        raise ValueError("write_demo_data: nothing to write (tau, desed, sed, ladi and voc are all off)")
    out = Path(out)
    result: dict[str, Any] = {"out": str(out)}
    if tau:
        result["tau"] = write_tau_demo(out / "tau", n_clips_per_class, seconds, seed, classes, verbose=verbose)
    if desed:
        result["desed"] = write_desed_demo(out / "desed", n_desed_clips_per_subset, seed, verbose=verbose)
    if sed:
        sizes = dict(SED_DEFAULT_CLIPS)
        unknown = set(sed_clips or {}) - set(sizes)
        if unknown:
            raise ValueError(f"sed_clips: unknown subset(s) {sorted(unknown)}; known: {list(sizes)}")
        sizes.update(sed_clips or {})
        result["sed"] = write_sed_demo(
            out / "sed",
            sizes["synthetic"],
            sizes["weak"],
            sizes["unlabeled"],
            sizes["validation"],
            seed,
            verbose=verbose,
        )
    if ladi:
        from avs.data.demo_ladi import write_ladi_demo

        result["ladi"] = write_ladi_demo(out / "ladi", ladi_images, ladi_shots, seed, verbose=verbose)
    if voc:
        from avs.data.demo_voc import write_voc_demo

        result["voc"] = write_voc_demo(out / "voc", seed=seed, verbose=verbose)
    return result
