"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = ""
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    except Exception:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{mem:.0f}",
        "gpu": gpu or "none",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# ------------------------------------------------- training benchmarks (bench_sed.py, bench_multilabel.py)
def avs(*args: str) -> None:
    exe = Path(sys.executable).with_name("avs")
    cmd = [str(exe) if exe.exists() else "avs", *args]
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def parse_system(text: str) -> tuple[str, str, list[str]]:
    head, *sets = text.split(";")
    name, _, preset = head.partition("=")
    if not name or not preset:
        raise SystemExit(f"--systems: NAME=PRESET[;key=value...] expected, got {text!r}")
    return name, preset, sets


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
