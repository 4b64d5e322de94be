"""Sound-texture statistics: avs's batched torch extractor vs a per-clip numpy / scipy loop, same windows.

    python benchmarks/bench_texture.py                   # 256 windows of 3.75 s at 20 kHz
    python benchmarks/bench_texture.py --device cuda     # on a GPU machine

Prints windows/s of both and their ratio (compute only, both warmed up), and checks they agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from avs.features.texture import TextureConfig, TextureExtractor
from avs.testing import signals
from avs.testing.texture_reference import texture_reference


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=256, help="number of 3.75-s windows (default 256)")
    ap.add_argument("--batch", type=int, default=32, help="avs batch size (default 32)")
    ap.add_argument("--reference-windows", type=int, default=32, help="windows timed for the reference (default 32)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--results", default=None, help="markdown file to append the result to")
    args = ap.parse_args(argv)

    sr, seconds = 20_000, 3.75
    x = np.stack([signals.scene_audio(i % 10, seconds, sr, channels=1, seed=i)[0] for i in range(args.windows)])
    ext = TextureExtractor(TextureConfig(), sample_rate_hz=sr).to(args.device)
    xt = torch.from_numpy(x.astype(np.float32))[:, None].to(args.device)  # (windows, 1, samples)
    ext(xt[: args.batch])  # warm-up: filterbanks built for this length
    if args.device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    outs = [ext(xt[i : i + args.batch]) for i in range(0, len(xt), args.batch)]
    if args.device == "cuda":
        torch.cuda.synchronize()
    avs_s = time.perf_counter() - t0
    ours = torch.cat(outs).cpu().numpy()

    n_ref = min(args.reference_windows, args.windows)
    texture_reference(x[0], sr)  # warm-up
    t0 = time.perf_counter()
    ref = np.stack([texture_reference(x[i], sr) for i in range(n_ref)])
    ref_s = time.perf_counter() - t0
    max_rel = float(np.max(np.abs(ours[:n_ref] - ref) / (np.abs(ref) + 1e-3)))

    result = {
        "windows": args.windows,
        "window_seconds": seconds,
        "sample_rate_hz": sr,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "avs_windows_per_s": round(args.windows / avs_s, 1),
        "reference_windows_per_s": round(n_ref / ref_s, 1),
        "ratio": round((args.windows / avs_s) / (n_ref / ref_s), 2),
        "audio_hours_per_s": round(args.windows * seconds / 3600 / avs_s, 4),
        "max_relative_difference": round(max_rel, 5),
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "none",
    }
    print(json.dumps(result, indent=2))
    if args.results:
        with open(args.results, "a") as fh:
            fh.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} — texture statistics, {args.device}\n\n")
            fh.write("```json\n" + json.dumps(result, indent=2) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
