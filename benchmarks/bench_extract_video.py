"""avs extract (12 frames per clip + CLIP ViT-B-32 embeddings) vs the plain way (ffmpeg -> JPEG files ->
per-image open_clip loop), same clips, one run.

    python benchmarks/bench_extract_video.py                          # 100 ten-second 1280x720 H.264 clips
    python benchmarks/bench_extract_video.py --clips 10 --seconds 4   # smaller
    python benchmarks/bench_extract_video.py --set pipeline.decoders=1 --set video.backend=pyav   # avs options
    python benchmarks/bench_extract_video.py --reference-threads 1  # reference loop on one torch thread
    python benchmarks/bench_extract_video.py --device cuda --encoders all --height 1080 --skip-reference --dali \
        --results benchmarks/results/extract_video_gpu.md      # GPU machine: RN50x4 + RN101 + ViT-B-32

Clips: camera-like 25-fps H.264 (libx264, yuv420p, crf 23, a key frame every 2 s): a camera pans slowly
over a textured scene (smooth colour blobs + fine detail), a bright object moves across it, and every frame
carries sensor noise, so the encoder works as on real video (about 2.8 Mbit/s at 720p). No audio track.
They are made once with PyAV into ``--work``/clips-<N>x<S>s-<H>p (kept; later runs reuse them).

Both sides run as separate processes, timed by wall clock from process start (Python imports, model
construction and, for avs, Ray start-up included) to the last output written.

The reference does what paper 000 (sec. 2.2 / 2.3) did per video: ``ffprobe`` for the frame rate and
duration, then one ``ffmpeg`` call that writes the 12 frames to JPEG files (``-q:v 2``) with a ``select``
filter on the frame numbers of the interval centres t_i = (i + 0.5) * duration / 12 (frame n_i = floor(t_i *
fps), the last frame shown at t_i: the same frames avs reads), then a loop over the JPEG files: PIL open ->
open_clip's preprocess -> ``model.encode_image`` on a batch of one -> L2 normalise (torch.no_grad), and one
``np.save`` of the clip's (12, 512) embeddings. ViT-B-32 with random weights
(``open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)``): the same cost as the real ones.

avs: ``avs extract CLIPS --dataset folder --config cfg.yaml --clip-random-weights`` with
``video: {sampling: even, n_frames: 12, short_side: 224}`` (288 with RN50x4, its input size) and one
``clip`` feature set per encoder (the video branch only; the clips have no audio). run.json must count
every clip written; its ``branches.video.first_result_s`` and ``worker_seconds`` (decode / feature / write
seconds summed over workers) say where the time went.

GPU (``--device cuda``): avs runs with its CUDA feature workers (CLIP in fp16, frames decoded on the CPU by
decord / PyAV inside ``avs extract``); ``--dali`` adds an in-process measurement of DALI (NVDEC) decoding +
``ClipImageEmbedder`` on the GPU, the throughput DALI + GPU CLIP can reach (``avs extract`` does not use DALI
yet). ``--encoders all`` = the three encoders of dcase2021-t1b (RN50x4, RN101, ViT-B-32).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENCODERS = {
    "vitb32": [("clip_vitb32", "ViT-B-32")],
    # paper 000 Table 1 / the dcase2021-t1b preset: RN50x4 (640-d), RN101 (512-d), ViT-B-32 (512-d)
    "all": [("clip_rn50x4", "RN50x4"), ("clip_rn101", "RN101"), ("clip_vitb32", "ViT-B-32")],
}
N_FRAMES = 12

from common import machine  # noqa: E402 (benchmarks/ is on sys.path when run as a script)

REFERENCE = r"""
import json, subprocess, sys, tempfile, pathlib
import numpy as np
import torch, open_clip
from PIL import Image

src, dst, device = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
models = sys.argv[4].split(",")
n_frames = int(sys.argv[5])
dst.mkdir(parents=True, exist_ok=True)
encoders = []
for name in models:
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None, device=device)
    encoders.append((name, model.eval(), preprocess))

def probe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate,duration",
         "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    num, den = s["r_frame_rate"].split("/")
    return float(num) / float(den), float(s["duration"])

for path in sorted(src.glob("*.mp4")):
    fps, duration = probe(path)
    # frames at the centres of 12 equal intervals: the frame shown at t_i = (i + 0.5) * duration / 12
    picks = [int((i + 0.5) * duration / n_frames * fps) for i in range(n_frames)]
    expr = "+".join(f"eq(n\\,{n})" for n in picks)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vf", f"select='{expr}'", "-vsync", "vfr",
             "-q:v", "2", f"{tmp}/frame_%02d.jpg"], check=True)
        jpgs = sorted(pathlib.Path(tmp).glob("frame_*.jpg"))
        assert len(jpgs) == n_frames, (path, len(jpgs))
        for name, model, preprocess in encoders:
            embs = []
            with torch.no_grad():
                for jpg in jpgs:
                    x = preprocess(Image.open(jpg).convert("RGB")).unsqueeze(0).to(device)
                    e = model.encode_image(x)
                    embs.append((e / e.norm(dim=-1, keepdim=True)).cpu().numpy()[0])
            np.save(dst / f"{path.stem}.{name}.npy", np.stack(embs).astype(np.float32))
"""


# ------------------------------------------------------------------------------------------------- clips
def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Low-frequency random texture: a coarse random grid upsampled bilinearly -> (height, width) float32."""
    gh, gw = height // cell + 2, width // cell + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.linspace(0, gh - 1.001, height, dtype=np.float32)
    xs = np.linspace(0, gw - 1.001, width, dtype=np.float32)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    b = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return a * (1 - fy) + b * fy


def write_camera_clip(
    path: Path, seconds: float, seed: int, fps: int = 25, width: int = 1280, height: int = 720, preset: str = "veryfast"
) -> Path:
    """A camera-like H.264 clip (no audio): slow pan over a textured scene, a moving object, sensor noise."""
    import av

    rng = np.random.default_rng([seed, 2021])
    n = int(round(seconds * fps))
    pan_x, pan_y = int(rng.integers(80, 240)), int(rng.integers(40, 120))  # pixels panned over the clip
    sh, sw = height + pan_y, width + pan_x
    colours = rng.integers(20, 236, size=(4, 3)).astype(np.float32)
    scene = np.zeros((sh, sw, 3), np.float32)
    weights = [_smooth_noise(rng, sh, sw, cell) for cell in (320, 160, 40)]
    for k in range(3):
        scene += weights[k][..., None] * (colours[k + 1] - colours[0]) * (0.9 / (k + 1))
    scene += colours[0]
    scene += (rng.random((sh, sw, 1), dtype=np.float32) - 0.5) * 40  # fine detail (leaves, gravel, ...)
    scene = np.clip(scene, 0, 255).astype(np.int16)
    noise = [rng.integers(-10, 11, size=(height, width, 3), dtype=np.int16) for _ in range(7)]  # sensor noise
    side = height // 5
    obj = rng.integers(0, 256, size=3).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": "23", "x264-params": f"keyint={2 * fps}:min-keyint={2 * fps}"}
        for i in range(n):
            f = i / max(1, n - 1)
            y0, x0 = int(f * pan_y), int(f * pan_x)
            img = scene[y0 : y0 + height, x0 : x0 + width] + noise[(i * 3) % len(noise)]
            ox, oy = int(f * (width - side)), int((0.2 + 0.5 * f) * (height - side))
            img[oy : oy + side, ox : ox + side] = obj
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    tmp.rename(path)
    return path


def make_clips(folder: Path, n: int, seconds: float, height: int, preset: str) -> None:
    """Write the clips that are missing (one process per core)."""
    from concurrent.futures import ProcessPoolExecutor

    width = height * 16 // 9
    folder.mkdir(parents=True, exist_ok=True)
    want = {f"clip-{i:05d}.mp4" for i in range(n)}
    for p in folder.glob("*.mp4"):
        if p.name not in want:
            p.unlink()
    todo = [i for i in range(n) if not (folder / f"clip-{i:05d}.mp4").exists()]
    if not todo:
        return
    print(f"making {len(todo)} clips of {seconds:g} s {width}x{height} in {folder} ...", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [
            pool.submit(write_camera_clip, folder / f"clip-{i:05d}.mp4", seconds, i, 25, width, height, preset)
            for i in todo
        ]
        for k, job in enumerate(jobs):
            job.result()
            if (k + 1) % 10 == 0:
                print(f"  {k + 1}/{len(todo)} clips ({time.perf_counter() - t0:.0f} s)", flush=True)


# ------------------------------------------------------------------------------------------------ timing
def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, list[float]]:
    """Run ``cmd``; (wall seconds, the 1-min load average sampled every 5 s while it ran)."""
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        while True:
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                loads.append(os.getloadavg()[0])
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            log.seek(0)
            sys.stderr.write(log.read()[-8000:])
            raise SystemExit(f"command failed ({proc.returncode}): {shlex.join(cmd)}")
    return seconds, loads


def load_summary(loads: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(loads)), 2), "max": round(float(np.max(loads)), 2)}


def clip_info(folder: Path) -> dict[str, float]:
    import av

    paths = sorted(folder.glob("*.mp4"))
    with av.open(str(paths[0])) as c:
        s = c.streams.video[0]
        info = {"width": s.codec_context.width, "height": s.codec_context.height, "fps": float(s.average_rate)}
        duration = c.duration / 1e6
    sizes = [p.stat().st_size for p in paths]
    info["mean_mbit_per_s"] = round(8 * float(np.mean(sizes)) / 1e6 / duration, 2)
    return info


def short_side(encoders: list[tuple[str, str]]) -> int:
    """Decode-time short side: the largest encoder input (RN50x4: 288 px; RN101, ViT-B-32: 224 px)."""
    return 288 if any(m == "RN50x4" for _, m in encoders) else 224


def dali_throughput(
    folder: Path, encoders: list[tuple[str, str]], seconds: float, batch_files: int, passes: int = 1
) -> dict:
    """In-process: DALI (NVDEC) frames -> ClipImageEmbedder (fp16) on the GPU; clips/s after warm-up."""
    import torch

    from avs.decode.dali import read_frames_dali
    from avs.decode.video import FrameSampling, sample_times
    from avs.features.clip_image import ClipEncoderConfig, ClipImageEmbedder

    paths = sorted(folder.glob("*.mp4"))
    info = clip_info(folder)
    short = short_side(encoders)  # aspect kept, as avs extract's video.short_side
    size = (short, int(round(short * info["width"] / info["height"])))
    times = sample_times(seconds, FrameSampling("even", n_frames=N_FRAMES))
    embedders = [
        ClipImageEmbedder(ClipEncoderConfig(model, random_weights=True, precision="fp16"), device="cuda")
        for _, model in encoders
    ]

    def run(chunk: list[Path]) -> None:
        batches = read_frames_dali(chunk, times, size=size, output="torch", max_batch_size=batch_files)
        frames = torch.cat([b.frames for b in batches])  # (files * 12, 224, 224, 3) uint8 on the GPU
        for e in embedders:
            e(frames).cpu()

    run(paths[:batch_files])  # warm-up: pipeline build, cuDNN autotune
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(passes):
        for start in range(0, len(paths), batch_files):
            run(paths[start : start + batch_files])
    torch.cuda.synchronize()
    s = time.perf_counter() - t0
    return {
        "dali_files_per_batch": batch_files,
        "dali_passes": passes,
        "dali_gpu_clip_s": round(s, 2),
        "dali_gpu_clip_clips_per_s": round(passes * len(paths) / s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=100, help="number of clips (default 100)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    ap.add_argument("--height", type=int, default=720, help="clip height, 16:9 (default 720: 1280x720)")
    ap.add_argument("--x264-preset", default="veryfast", help="libx264 preset for making the clips (default veryfast)")
    ap.add_argument(
        "--work",
        default="/tmp/avs-bench-video",
        help="folder for clips (kept) and outputs (default /tmp/avs-bench-video)",
    )
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="avs and reference device")
    ap.add_argument(
        "--encoders", choices=sorted(ENCODERS), default="vitb32", help="vitb32 | all (RN50x4, RN101, ViT-B-32)"
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to avs extract --set")
    ap.add_argument("--skip-reference", action="store_true", help="time avs only")
    ap.add_argument("--skip-avs", action="store_true", help="time the reference only")
    ap.add_argument("--dali", action="store_true", help="also time DALI + GPU CLIP in-process (needs CUDA + DALI)")
    ap.add_argument("--dali-batch", type=int, default=8, help="--dali: files per DALI batch (default 8)")
    ap.add_argument("--dali-passes", type=int, default=3, help="--dali: passes over the clips timed (default 3)")
    ap.add_argument(
        "--reference-threads",
        type=int,
        default=None,
        help="torch / OpenMP threads of the reference (default: torch's default, one per core, as the paper's loop)",
    )
    ap.add_argument("--label", default="", help="a note for the results (e.g. the machine's load)")
    ap.add_argument("--results", default=None, help="markdown file to append the result to")
    args = ap.parse_args(argv)

    if not args.skip_reference and (shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None):
        raise SystemExit(
            "the reference needs the ffmpeg command-line tools (ffmpeg, ffprobe) on PATH: "
            "apt-get install -y ffmpeg (or pass --skip-reference)"
        )
    work = Path(args.work)
    clips = work / f"clips-{args.clips}x{args.seconds:g}s-{args.height}p"
    make_clips(clips, args.clips, args.seconds, args.height, args.x264_preset)
    encoders = ENCODERS[args.encoders]
    bindir = Path(sys.executable).parent
    load_start = os.getloadavg()

    result: dict = {
        "clips": args.clips,
        "seconds_per_clip": args.seconds,
        "video": clip_info(clips),
        "frames_per_clip": N_FRAMES,
        "encoders": [m for _, m in encoders],
        "device": args.device,
    }
    ref_s = None
    if not args.skip_reference:
        shutil.rmtree(work / "ref-out", ignore_errors=True)
        ref_device = "cuda" if args.device == "cuda" else "cpu"
        env = None
        if args.reference_threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(args.reference_threads))
            result["reference_threads"] = args.reference_threads
        ref_s, ref_loads = timed(
            [
                sys.executable,
                "-c",
                REFERENCE,
                str(clips),
                str(work / "ref-out"),
                ref_device,
                ",".join(m for _, m in encoders),
                str(N_FRAMES),
            ],
            env=env,
        )
        saved = len(list((work / "ref-out").glob("*.npy")))
        assert saved == args.clips * len(encoders), saved
        result.update(
            {
                "reference_wall_s": round(ref_s, 2),
                "reference_clips_per_s": round(args.clips / ref_s, 3),
                "reference_load_avg_1min": load_summary(ref_loads),
            }
        )
        print(f"reference: {ref_s:.1f} s, {args.clips / ref_s:.3f} clips/s", flush=True)

    if not args.skip_avs:
        cfg = {
            "video": {"sampling": "even", "n_frames": N_FRAMES, "short_side": short_side(encoders)},
            "features": [{"name": n, "extractor": "clip", "params": {"model": m}} for n, m in encoders],
        }
        work.mkdir(parents=True, exist_ok=True)
        cfg_path = work / "bench-video.yaml"
        cfg_path.write_text(json.dumps(cfg, indent=2))  # JSON is YAML
        shutil.rmtree(work / "avs-out", ignore_errors=True)
        cmd = [
            str(bindir / "avs"),
            "extract",
            str(clips),
            "--dataset",
            "folder",
            "--out",
            str(work / "avs-out"),
            "--config",
            str(cfg_path),
            "--clip-random-weights",
            "--device",
            args.device,
        ]
        for item in args.set:
            cmd += ["--set", item]
        avs_s, avs_loads = timed(cmd)
        run = json.loads((work / "avs-out" / "run.json").read_text())
        video = run["branches"]["video"]
        assert run["counts"]["clips_written"] == args.clips, run["counts"]
        assert video["counts"]["rows_written"] == args.clips * N_FRAMES, video["counts"]
        result.update(
            {
                "avs_command": shlex.join(["avs", *cmd[1:]]),
                "avs_wall_s": round(avs_s, 2),
                "avs_load_avg_1min": load_summary(avs_loads),
                "avs_clips_per_s": round(args.clips / avs_s, 3),
                "avs_in_pipeline_s": run["seconds"],
                "avs_first_result_s": video["first_result_s"],
                "avs_worker_seconds": video["worker_seconds"],
                "avs_resources": video["resources"],
            }
        )
        print(f"avs: {avs_s:.1f} s, {args.clips / avs_s:.3f} clips/s", flush=True)
        if ref_s is not None:
            result["ratio"] = round(ref_s / avs_s, 2)

    if args.dali:
        from avs.decode.dali import INSTALL_HINT, dali_available

        if not dali_available():
            raise SystemExit(f"--dali needs NVIDIA DALI and a CUDA GPU: {INSTALL_HINT}")
        result.update(dali_throughput(clips, encoders, args.seconds, args.dali_batch, args.dali_passes))

    result["load_avg_start"] = [round(x, 2) for x in load_start]
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine()
    if args.label:
        result["note"] = args.label
    print(json.dumps(result, indent=2))
    if args.results:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        v = result["video"]
        with open(args.results, "a") as fh:
            fh.write(
                f"\n## {time.strftime('%Y-%m-%d %H:%M')} — {args.clips} x {args.seconds:g}-s "
                f"{v['width']}x{v['height']} H.264, {N_FRAMES} frames + {', '.join(result['encoders'])} "
                f"({args.device})\n\n"
            )
            given = argv if argv is not None else sys.argv[1:]
            line = f"`{shlex.join(['python', 'benchmarks/bench_extract_video.py', *given])}`"
            fh.write(line + "\n\n")
            parts = []
            if "avs_clips_per_s" in result:
                parts.append(
                    f"avs **{result['avs_clips_per_s']} clips/s** (load {result['avs_load_avg_1min']['mean']})"
                )
            if "reference_clips_per_s" in result:
                parts.append(
                    f"reference {result['reference_clips_per_s']} clips/s "
                    f"(load {result['reference_load_avg_1min']['mean']})"
                )
            if "ratio" in result:
                parts.append(f"ratio **{result['ratio']}x**")
            if "dali_gpu_clip_clips_per_s" in result:
                parts.append(f"DALI + GPU CLIP **{result['dali_gpu_clip_clips_per_s']} clips/s**")
            fh.write("; ".join(parts) + " (load: mean 1-min load average while that side ran)\n\n")
            fh.write("```json\n" + json.dumps(result, indent=2) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
