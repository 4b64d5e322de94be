"""Frame decoding (avs.decode.video) and CLIP image embeddings (avs.features.clip_image) vs plain references.

    python benchmarks/bench_frames_clip.py                  # 10-s 1280x720 H.264 clips, 12 frames each
    python benchmarks/bench_frames_clip.py --device cuda    # CLIP on a GPU (fp32 and fp16)

Decoding: 12 frames at the interval centres of a 10-s 25-fps 1280x720 clip (paper 000 sec. 2.2), per
backend (decord, pyav, auto) and thread setting, against the plain way: decode every frame with PyAV
(``container.decode``), convert the chosen ones to RGB. Two clips: the test pattern as ``write_video`` makes
it (one key frame for the whole clip) and a noisier one with a key frame every 2 s (closer to camera video).
CLIP: ViT-B-32 with random weights (same cost as the real weights) on 720p frames: ``ClipImageEmbedder``
(batched torch preprocessing) against open_clip's own PIL preprocess per image + ``encode_image``.
Best of ``--repeats`` runs, in-process; results go to benchmarks/results/frames_clip_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def write_noisy_clip(path: Path, seconds: float = 10.0, fps: int = 25, width: int = 1280, height: int = 720) -> Path:
    import av

    from avs.testing.media import pattern_frame

    rng = np.random.default_rng(0)
    base = [pattern_frame(i, width, height, color_seed=i // 50) for i in range(0, int(seconds * fps), 25)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "x264-params": f"keyint={2 * fps}:min-keyint={2 * fps}"}
        for i in range(int(seconds * fps)):
            img = base[i // 25].astype(np.int16) + rng.normal(0, 6, size=(height, width, 3)).astype(np.int16)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def reference_decode(path: Path, times_s: np.ndarray) -> np.ndarray:
    """Decode every frame with PyAV; keep the RGB of the last frame with pts <= t for each t."""
    import av

    out: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    starts = np.array([float(f.time) for f in frames])
    idx = np.clip(np.searchsorted(starts - starts[0], times_s, side="right") - 1, 0, len(frames) - 1)
    for i in np.unique(idx):
        out[int(i)] = frames[i].to_ndarray(format="rgb24")
    return np.stack([out[int(i)] for i in idx])


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/avs-bench-frames", help="where the test clips are written")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best is kept")
    parser.add_argument("--device", default="cpu", help="CLIP device: cpu or cuda")
    parser.add_argument("--clip-batch", type=int, default=48, help="frames per CLIP measurement")
    args = parser.parse_args(argv)

    import torch

    from avs.decode.video import FrameSampling, probe_video, read_frames, sample_times
    from avs.features.clip_image import ClipEncoderConfig, ClipImageEmbedder
    from avs.testing.media import write_video

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    clips = {"pattern_gop250": work / "pattern.mp4", "noisy_gop50": work / "noisy.mp4"}
    if not clips["pattern_gop250"].exists():
        write_video(clips["pattern_gop250"], 10.0, fps=25, width=1280, height=720)
    if not clips["noisy_gop50"].exists():
        write_noisy_clip(clips["noisy_gop50"])

    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "decode": {},
        "clip": {},
    }
    for name, path in clips.items():
        info = probe_video(path)
        times = sample_times(info.duration_s, FrameSampling("even", n_frames=12))
        row = {"bytes": path.stat().st_size}
        ref_s = best_of(lambda p=path, t=times: reference_decode(p, t), args.repeats)
        row["reference_pyav_decode_all_frames_per_s"] = 12 / ref_s
        for backend in ("decord", "pyav", "auto"):
            for threads in (0, 1):
                s = best_of(
                    lambda b=backend, th=threads, p=path, t=times: read_frames(p, t, b, threads=th), args.repeats
                )
                row[f"{backend}_threads{threads}_frames_per_s"] = 12 / s
        results["decode"][name] = row
        print(name, json.dumps({k: round(v, 1) for k, v in row.items()}))

    torch.set_num_threads(os.cpu_count() or 1)
    frames = read_frames(clips["noisy_gop50"], np.linspace(0.2, 9.8, args.clip_batch), "pyav").frames
    precisions = ["fp32"] + (["fp16"] if args.device.startswith("cuda") else [])
    for precision in precisions:
        torch.manual_seed(0)
        cfg = ClipEncoderConfig("ViT-B-32", random_weights=True, precision=precision, batch_size=args.clip_batch)
        embedder = ClipImageEmbedder(cfg, device=args.device)
        embedder(frames[:2])  # warm-up
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        ours = best_of(lambda e=embedder, s=sync: (e(frames), s()), args.repeats)
        row = {"avs_images_per_s": len(frames) / ours}
        if precision == "fp32":
            from PIL import Image

            def reference(e=embedder):
                with torch.inference_mode():
                    x = torch.stack([e.pil_preprocess(Image.fromarray(f)) for f in frames]).to(args.device)
                    torch.nn.functional.normalize(e.model.encode_image(x), dim=-1).cpu()

            row["reference_pil_preprocess_images_per_s"] = len(frames) / best_of(reference, args.repeats)
            row["ratio"] = row["avs_images_per_s"] / row["reference_pil_preprocess_images_per_s"]
        results["clip"][f"ViT-B-32_{precision}_{args.device}"] = row
        print(precision, json.dumps({k: round(v, 2) for k, v in row.items()}))

    out = Path(__file__).parent / "results" / f"frames_clip_{args.device.split(':')[0]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    lines = [
        f"# frames + CLIP ({args.device}; {results['machine']['cpus']} CPUs; load {results['machine']['load_avg']})",
        "",
        "| clip | measurement | frames/s |",
        "|---|---|---|",
    ]
    for name, row in results["decode"].items():
        lines += [f"| {name} | {k} | {v:.1f} |" for k, v in row.items() if k != "bytes"]
    lines += ["", "| encoder | measurement | images/s |", "|---|---|---|"]
    for name, row in results["clip"].items():
        lines += [f"| {name} | {k} | {v:.2f} |" for k, v in row.items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return results


if __name__ == "__main__":
    main()
