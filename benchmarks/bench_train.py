"""Training throughput (samples/s) of each paper-000 model family: one SGD step = forward, focal loss,
backward, optimizer step, with the paper's batch sizes and input sizes (random init, synthetic inputs).

    python benchmarks/bench_train.py                      # CPU, one model per family
    python benchmarks/bench_train.py --device cuda        # on a GPU machine, with AMP (bf16/fp16 autocast)
    python benchmarks/bench_train.py --models clip-late-fusion logmel-resnest50d --steps 5

Reference: the same step in plain fp32 eager PyTorch is what avs runs on CPU; on CUDA the script also times
fp32 next to AMP, so the ratio shows what mixed precision buys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from avs.models import create_model
from avs.train.config import PAPER000_OPTIMIZER
from avs.train.optim import build_optimizer
from avs.train.presets import train_preset
from avs.train.tasks.scene import SceneConfig, loss_function

# model -> (family, input maker); shapes as the extraction writes them (paper 000 §2-3)
FAMILIES = {
    "logmel-regnetx-064": "logmel",
    "logmel-resnest50d": "logmel",
    "logmel-tf-efficientnet-b1-ns": "logmel",
    "frame-regnetx-064": "frame",
    "frame-resnest50d": "frame",
    "frame-hrnet-w18": "frame",
    "clip-late-fusion": "clip",
}


def make_batch(family: str, batch: int, device: str) -> object:
    if family == "logmel":
        return torch.randn(batch, 3, 256, 94, device=device)  # log-mel + deltas of 1-s segments
    if family == "frame":
        return torch.rand(batch, 3, 448, 448, device=device)  # 448 x 448 frames
    return {
        "RN50x4": torch.randn(batch, 640, device=device),
        "RN101": torch.randn(batch, 512, device=device),
        "ViT-B-32": torch.randn(batch, 512, device=device),
    }


def time_steps(name: str, device: str, steps: int, amp: bool) -> float:
    family = FAMILIES[name]
    batch = train_preset(f"dcase2021-t1b-{family}")["batch_size"]  # paper 000 §3
    kwargs = {} if family == "clip" else {"random_init": True}
    model = create_model(name, **kwargs).to(device).train()
    opt, loss_fn = build_optimizer(model.parameters(), PAPER000_OPTIMIZER), loss_function(SceneConfig())
    x = make_batch(family, batch, device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", enabled=amp and device == "cuda"):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models",
        nargs="*",
        default=["logmel-resnest50d", "frame-resnest50d", "clip-late-fusion"],
        help=f"models to time (default: one per family); any of {', '.join(FAMILIES)}",
    )
    ap.add_argument("--steps", type=int, default=3, help="timed steps per model (default 3)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--results", default=None, help="markdown file to append the results to")
    args = ap.parse_args(argv)
    rows = []
    for name in args.models:
        row = {
            "model": name,
            "family": FAMILIES[name],
            "batch": train_preset(f"dcase2021-t1b-{FAMILIES[name]}")["batch_size"],
            "fp32_samples_per_s": round(time_steps(name, args.device, args.steps, amp=False), 2),
        }
        if args.device == "cuda":
            row["amp_samples_per_s"] = round(time_steps(name, args.device, args.steps, amp=True), 2)
            row["amp_speedup"] = round(row["amp_samples_per_s"] / row["fp32_samples_per_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.results:
        machine = {
            "device": args.device,
            "threads": torch.get_num_threads(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "none",
            "load_avg": [round(v, 2) for v in os.getloadavg()],
        }
        with open(args.results, "a") as fh:
            fh.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} — training step throughput ({args.device})\n\n")
            fh.write("```json\n" + json.dumps({"machine": machine, "models": rows}, indent=2) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
