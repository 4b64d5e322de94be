"""avs extract (dcase2021-t1b log-mel + deltas) vs librosa (a per-file loop, and a pool over all cores),
same clips, one run.

    python benchmarks/bench_extract_audio.py                 # 200 ten-second 48 kHz stereo WAV clips
    python benchmarks/bench_extract_audio.py --clips 1000    # the issue's 1,000-clip run
    python benchmarks/bench_extract_audio.py --device cuda   # on a GPU machine (records hours of audio / s)

Every side is timed as a separate process, wall clock from process start (imports and Ray start-up
included) to the last feature written. The reference does what paper 000 §2.1 did per file: librosa.load
(mono, 48 kHz), ten 1-s segments, melspectrogram(n_fft 4096, hop 512, n_mels 256, reflect padding as
librosa < 0.10), power_to_db, delta and delta-delta, and saves each clip's features (np.save) so both sides
write their output. "librosa pool" runs the same function over a multiprocessing pool of all cores: what a
user would write instead of avs.

Ratios: ``ratio`` (end to end, start-up included) and ``ratio_after_startup`` (avs's rate after its first
result against the librosa loop's rate), each against the loop and against the pool.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine  # noqa: E402 (benchmarks/ is on sys.path when run as a script)

REFERENCE = r"""
import os, sys, pathlib
import numpy as np
import librosa

def one(args):
    path, dst = args
    y, sr = librosa.load(path, sr=48000, mono=True)
    feats = []
    for i in range(len(y) // sr):
        seg = y[i * sr:(i + 1) * sr]
        mel = librosa.feature.melspectrogram(y=seg, sr=sr, n_fft=4096, hop_length=512, n_mels=256, pad_mode="reflect")
        S = librosa.power_to_db(mel)
        feats.append(np.stack([S, librosa.feature.delta(S), librosa.feature.delta(S, order=2)]))
    np.save(dst / (path.stem + ".npy"), np.stack(feats).astype(np.float32))

if __name__ == "__main__":
    src, dst, mode = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    dst.mkdir(parents=True, exist_ok=True)
    jobs = [(p, dst) for p in sorted(src.glob("*.wav"))]
    if mode == "loop":
        for job in jobs:
            one(job)
    else:  # a pool over every core, a file per task
        import multiprocessing as mp
        with mp.get_context("fork").Pool(os.cpu_count()) as pool:
            pool.map(one, jobs, chunksize=4)
"""


def make_clips(folder: Path, n: int, seconds: float, seed: int = 0) -> None:
    import soundfile as sf

    from avs.testing.signals import scene_audio

    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(folder.glob("*.wav"))
    if len(have) == n:
        return
    for p in have:
        p.unlink()
    for i in range(n):
        audio = scene_audio(i % 10, seconds, 48_000, channels=2, seed=seed + i)  # (2, samples)
        sf.write(folder / f"clip-{i:05d}.wav", audio.T, 48_000, subtype="PCM_16")


WARM_IMPORTS = "import numpy, scipy, torch, torchaudio, pyarrow.parquet, ray, ray.data, librosa, soundfile"


def warm(folder: Path) -> None:
    """Read every input once and import both sides' libraries once, so each side starts from the same
    (cached) files: this machine's kernel reclaims idle page cache, so a side run after a long other one
    would otherwise pay the disk for its clips and its libraries."""
    for p in sorted(folder.glob("*.wav")):
        p.read_bytes()
    subprocess.run([sys.executable, "-c", WARM_IMPORTS], check=True, capture_output=True)


def timed(cmd: list[str], env: dict[str, str] | None = None, inputs: Path | None = None) -> float:
    if inputs is not None:
        warm(inputs)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200, help="number of clips (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    ap.add_argument("--work", default=None, help="folder for clips and outputs (default: a temp folder)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="avs device (default auto)")
    ap.add_argument("--skip-reference", action="store_true", help="time avs only (e.g. on a GPU machine)")
    ap.add_argument("--results", default=None, help="markdown file to append the result to")
    args = ap.parse_args(argv)

    work = Path(args.work or tempfile.mkdtemp(prefix="avs-bench-"))
    clips = work / f"clips-{args.clips}x{args.seconds:g}s"
    make_clips(clips, args.clips, args.seconds)
    audio_hours = args.clips * args.seconds / 3600
    bindir = Path(sys.executable).parent

    ref: dict[str, float] = {}
    if not args.skip_reference:
        script = work / "librosa_reference.py"
        script.write_text(REFERENCE)
        for mode in ("loop", "pool"):
            shutil.rmtree(work / "ref-out", ignore_errors=True)
            ref[mode] = timed([sys.executable, str(script), str(clips), str(work / "ref-out"), mode], inputs=clips)
    shutil.rmtree(work / "avs-out", ignore_errors=True)
    avs_s = timed(
        [
            str(bindir / "avs"),
            "extract",
            str(clips),
            "--dataset",
            "folder",
            "--preset",
            "dcase2021-t1b",
            "--out",
            str(work / "avs-out"),
            "--device",
            args.device,
            "--features",
            "logmel",  # the preset's audio feature set only (this benchmark is about audio)
        ],
        inputs=clips,
    )
    run = json.loads((work / "avs-out" / "run.json").read_text())
    assert run["counts"]["clips_written"] == args.clips, run["counts"]

    audio_branch = run["branches"]["audio"]
    first = audio_branch["first_result_s"] or 0.0
    result = {
        "clips": args.clips,
        "seconds_per_clip": args.seconds,
        "audio_hours": round(audio_hours, 4),
        "avs_wall_s": round(avs_s, 2),
        "avs_clips_per_s": round(args.clips / avs_s, 2),
        "avs_audio_hours_per_s": round(audio_hours / avs_s, 5),
        "avs_in_pipeline_s": run["seconds"],
        # start-up: process start (imports, manifest, Ray start, actors) to the first clips written
        "avs_startup_s": round(avs_s - run["seconds"] + first, 2),
        # after start-up: the rate the pipeline sustains (what a long run converges to)
        "avs_steady_clips_per_s": round(args.clips / max(1e-9, run["seconds"] - first), 2),
        "avs_worker_seconds": audio_branch["worker_seconds"],
        "avs_device": "cuda" if audio_branch["resources"].get("use_gpu") else "cpu",
        "machine": machine(),
    }
    for mode, ref_s in ref.items():
        name = "librosa" if mode == "loop" else "librosa_pool"
        result.update(
            {
                f"{name}_wall_s": round(ref_s, 2),
                f"{name}_clips_per_s": round(args.clips / ref_s, 2),
                f"ratio_vs_{name}": round(ref_s / avs_s, 2),
                f"ratio_after_startup_vs_{name}": round(result["avs_steady_clips_per_s"] / (args.clips / ref_s), 2),
            }
        )
    print(json.dumps(result, indent=2))
    if args.results:
        with open(args.results, "a") as fh:
            fh.write(
                f"\n## {time.strftime('%Y-%m-%d %H:%M')} — {args.clips} x {args.seconds:g}-s 48 kHz stereo WAV\n\n"
            )
            fh.write("```json\n" + json.dumps(result, indent=2) + "\n```\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
