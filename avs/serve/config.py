"""``ServeConfig``: what ``avs serve`` serves and how (one flag per field, avs.flags)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from avs.flags import opt

ARROW = "application/vnd.apache.arrow.stream"
NPZ = "application/x-npz"
JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    preset: str | None = opt(
        None, "extraction preset whose feature sets POST /features returns (avs.presets; none: only /predict)"
    )
    features: tuple[str, ...] = opt((), "only these feature sets of the preset, comma-separated (default: all)")
    runs: tuple[str, ...] = opt(
        (),
        "trained runs served at POST /predict/<name>: NAME=RUN (a run folder of avs train or a checkpoint) or RUN "
        "(named after its folder); one per token",
        flag="--run",
        nargs="+",
    )
    host: str = opt("127.0.0.1", "address to bind; loopback unless told otherwise (see README: behind authentication)")
    port: int = opt(8000, "HTTP port")
    clip_random_weights: bool = opt(
        False, "CLIP feature sets use seeded RANDOM weights (demos / tests without downloaded weights)"
    )
    device: Literal["auto", "cpu", "cuda"] = opt("auto", "model and feature device of each replica")
    num_replicas: int = opt(1, "replicas of the service")
    num_cpus: float = opt(1.0, "CPUs each replica reserves")
    num_gpus: float = opt(0.0, "GPUs each replica reserves (fractions share a GPU); > 0 puts replicas on GPU nodes")
    gpu_wait_s: float | None = opt(
        600.0, "with --num-gpus: seconds to wait for Ray to place the replicas before stopping with the missing GPU"
    )
    max_upload_mb: float = opt(100.0, "largest request body (MB); larger uploads get 413")
    decode_timeout_s: float = opt(30.0, "seconds a decoder may spend on one upload before it is killed (then 422)")
    audio_backend: str | None = opt(
        None, "audio decoder (auto | soundfile | pyav | a plugin's; default: the preset's or the run's, auto)"
    )
    video_backend: str | None = opt(None, "video decoder (auto | decord | pyav | a plugin's; default: auto)")
    plugins: tuple[str, ...] = opt(
        (), "modules the decoder processes import first, to register decoders (as avs extract's pipeline.plugins)"
    )
    max_batch_size: int = opt(8, "requests a model call may gather (Ray Serve batching of /predict)")
    batch_wait_timeout_s: float = opt(0.01, "seconds a model call waits for more requests to batch")
    max_ongoing_requests: int = opt(16, "requests one replica works on at once (more wait in Serve's queue)")
    json_max_values: int = opt(
        2_000_000, "largest number of feature values answered as JSON; beyond it ask for Arrow IPC or .npz (406)"
    )

    def __post_init__(self) -> None:
        if self.preset is None and not self.runs:
            raise ValueError("ServeConfig: give --preset (features) and / or --run (predictions)")
        if self.max_upload_mb <= 0 or self.decode_timeout_s <= 0:
            raise ValueError("ServeConfig: max_upload_mb and decode_timeout_s must be > 0")
        if self.num_replicas < 1 or self.max_batch_size < 1 or self.max_ongoing_requests < 1:
            raise ValueError("ServeConfig: num_replicas, max_batch_size and max_ongoing_requests must be >= 1")
        if not 0 < self.port < 65536:
            raise ValueError(f"ServeConfig: port {self.port} out of range")


def run_names(runs: tuple[str, ...]) -> dict[str, str]:
    """``("a01=runs/a01", "runs/sed")`` -> ``{"a01": "runs/a01", "sed": "runs/sed"}``; names are unique URL parts."""
    import os
    import re

    out: dict[str, str] = {}
    for item in runs:
        name, sep, path = item.partition("=")
        if not sep:
            path = item
            name = os.path.basename(os.path.normpath(item))
            name = name.rsplit(".", 1)[0] if os.path.isfile(item) else name
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (it is a URL part)")
        if name in out:
            raise ValueError(f"two runs named {name!r}: name them NAME=RUN")
        out[name] = path
    return out
