"""GPU video frames with NVIDIA DALI (NVDEC): the same frames as ``avs.decode.video.read_frames``.

    if dali_available():
        batches = read_frames_dali(paths, times_s, size=(224, 224))   # one FrameBatch per path

How it works: the CPU builds each file's packet index with PyAV (demuxing only, no decoding;
``avs.decode.video.stream_index``) and maps the requested times to frame indices exactly as the CPU
backends do (the last frame whose pts <= t, variable frame rate included); DALI's
``fn.decoders.video`` (``fn.experimental.decoders.video`` on older DALI) then decodes those frames on the GPU
(``device="mixed"``: encoded bytes in host memory, frames out in GPU memory, NVDEC), resizes them on the
GPU when ``size`` is given (``fn.resize``, cubic, antialiased) and hands them back as numpy arrays or as
CUDA torch tensors (``output="torch"``, no copy to the host: feed them straight to the CLIP embedder).

Needs a CUDA GPU and the ``gpu`` extra (``pip install 'avs[gpu]'``, i.e. nvidia-dali-cuda120) with a DALI
whose video decoder takes the ``frames`` argument (DALI 2.x; ``decoders.video`` documents it). DALI is
imported only inside these functions; without it ``read_frames_dali`` raises ``DaliUnavailable`` saying
what is missing. DALI's CPU video decoder is not used: on CPU, decode with decord / PyAV (DESIGN.md).

One pipeline is built per (max_batch_size, size, device_id, num_threads) and reused (building one costs
about a second); files go through it in chunks of ``max_batch_size``. A chunk that DALI fails on is retried
file by file so that one bad file does not lose the others (with ``on_error="return"``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from avs.decode.errors import CorruptMedia, DecodeError
from avs.decode.video import FrameBatch, _as_times, _pick, stream_index

INSTALL_HINT = "install the gpu extra: pip install 'avs[gpu]' (nvidia-dali-cuda120) on a CUDA 12 machine"


class DaliUnavailable(RuntimeError):
    """DALI or a CUDA device is missing (or the installed DALI is too old for frame-indexed decoding)."""


def _dali_installed() -> bool:
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except (ImportError, ValueError):  # the "nvidia" namespace package may exist without dali
        return False


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def dali_available() -> bool:
    """Whether DALI is installed and a CUDA device is visible (the GPU video path can run)."""
    return _dali_installed() and _cuda_available()


def _require_dali() -> Any:
    if not _dali_installed():
        raise DaliUnavailable(f"NVIDIA DALI is not installed (module nvidia.dali not found); {INSTALL_HINT}")
    if not _cuda_available():
        raise DaliUnavailable(
            "NVIDIA DALI is installed but no CUDA device is visible; decode on CPU instead "
            "(avs.decode.video.read_frames with backend 'auto', 'decord' or 'pyav')"
        )
    import nvidia.dali as dali

    return dali


def _video_op(fn: Any) -> Any:
    decoders = getattr(fn, "decoders", None)
    op = getattr(decoders, "video", None) if decoders is not None else None
    if op is None:
        experimental = getattr(getattr(fn, "experimental", None), "decoders", None)
        op = getattr(experimental, "video", None)
    if op is None:
        raise DaliUnavailable(f"this DALI has no decoders.video operator; {INSTALL_HINT} (a DALI 2.x release)")
    return op


_PIPELINES: dict[tuple, Any] = {}


def _pipeline(max_batch_size: int, size: tuple[int, int] | None, device_id: int, num_threads: int) -> Any:
    key = (max_batch_size, size, device_id, num_threads)
    if key in _PIPELINES:
        return _PIPELINES[key]
    dali = _require_dali()
    from nvidia.dali import fn, types

    video_op = _video_op(fn)
    pipe = dali.Pipeline(
        batch_size=max_batch_size,
        num_threads=num_threads,
        device_id=device_id,
        prefetch_queue_depth=1,  # fed one batch per run() with feed_input: no batches queued ahead
    )
    with pipe:
        encoded = fn.external_source(name="encoded", device="cpu", dtype=types.UINT8, ndim=1)  # file bytes
        frame_idx = fn.external_source(name="frame_idx", device="cpu", dtype=types.INT32, ndim=1)  # (n,)
        try:
            video = video_op(encoded, device="mixed", frames=frame_idx)  # (F, H, W, 3) uint8 on the GPU
        except (TypeError, RuntimeError) as exc:
            raise DaliUnavailable(
                f"this DALI's video decoder does not take per-sample frame indices ('frames'): {exc}; "
                f"{INSTALL_HINT} (a DALI 2.x release)"
            ) from exc
        if size is not None:
            video = fn.resize(
                video, resize_x=int(size[1]), resize_y=int(size[0]), interp_type=types.INTERP_CUBIC, antialias=True
            )
        pipe.set_outputs(video)
    pipe.build()
    _PIPELINES[key] = pipe
    return pipe


def _plan(path: str, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(file bytes (n_bytes,) uint8, frame indices (n,) int32, their timestamps (n,) s) for one file."""
    index = stream_index(path)  # raises MissingFile / EmptyFile / CorruptMedia / NoVideoTrack
    starts = index.starts_s
    idx = _pick(starts, times)
    data = np.fromfile(path, dtype=np.uint8)
    return data, idx.astype(np.int32), starts[idx]


def _to_output(sample: Any, output: str, device_id: int) -> Any:
    if output == "numpy":
        return np.asarray(sample.as_cpu())
    import torch
    from nvidia.dali.plugin.pytorch import feed_ndarray

    out = torch.empty(tuple(sample.shape()), dtype=torch.uint8, device=f"cuda:{device_id}")
    feed_ndarray(sample, out, cuda_stream=torch.cuda.current_stream(device_id))
    return out


def _run_chunk(pipe: Any, plans: list[tuple], output: str, device_id: int) -> list[Any]:
    pipe.feed_input("encoded", [p[0] for p in plans])
    pipe.feed_input("frame_idx", [p[1] for p in plans])
    (video,) = pipe.run()  # TensorListGPU, one (F, H, W, 3) sample per file
    return [_to_output(video[i], output, device_id) for i in range(len(plans))]


def read_frames_dali(
    paths: Sequence[str | os.PathLike],
    times_s: Sequence[float] | np.ndarray | Sequence[Sequence[float]],
    size: tuple[int, int] | None = None,
    *,
    device_id: int = 0,
    num_threads: int = 2,
    max_batch_size: int = 8,
    output: Literal["numpy", "torch"] = "numpy",
    on_error: Literal["raise", "return"] = "raise",
) -> list[FrameBatch | DecodeError]:
    """Frames of each file at ``times_s`` (one sequence for all files, or one per file), decoded on the GPU.

    Returns one ``FrameBatch`` per path (frames (n, H, W, 3) uint8 RGB as numpy, or as a CUDA torch tensor
    with ``output="torch"``; timestamps_s and indices as numpy). ``on_error="return"`` puts the
    ``DecodeError`` of a bad file in its place instead of raising. Raises ``DaliUnavailable`` without DALI
    or CUDA.
    """
    _require_dali()
    paths = [str(p) for p in paths]
    per_file = _per_file_times(times_s, len(paths))
    results: list[FrameBatch | DecodeError | None] = [None] * len(paths)
    plans: dict[int, tuple] = {}
    for i, (path, times) in enumerate(zip(paths, per_file, strict=True)):
        try:
            plans[i] = _plan(path, times)
        except DecodeError as exc:
            if on_error == "raise":
                raise
            results[i] = exc
    pipe = _pipeline(
        int(max_batch_size), None if size is None else (int(size[0]), int(size[1])), device_id, int(num_threads)
    )
    todo = sorted(plans)
    for start in range(0, len(todo), max_batch_size):
        chunk = todo[start : start + max_batch_size]
        try:
            frames = _run_chunk(pipe, [plans[i] for i in chunk], output, device_id)
        except RuntimeError as exc:
            if len(chunk) == 1:
                err = CorruptMedia(f"DALI cannot decode {paths[chunk[0]]}: {str(exc).splitlines()[0]}")
                if on_error == "raise":
                    raise err from exc
                results[chunk[0]] = err
                continue
            frames = []
            for i in chunk:  # one bad file failed the chunk: find it, keep the others
                try:
                    frames.append(_run_chunk(pipe, [plans[i]], output, device_id)[0])
                except RuntimeError as exc_one:
                    err = CorruptMedia(f"DALI cannot decode {paths[i]}: {str(exc_one).splitlines()[0]}")
                    if on_error == "raise":
                        raise err from exc_one
                    frames.append(err)
        for i, f in zip(chunk, frames, strict=True):
            if isinstance(f, DecodeError):
                results[i] = f
            else:
                _, idx, stamps = plans[i]
                results[i] = FrameBatch(f, stamps, idx.astype(np.int64))
    return results  # type: ignore[return-value]


def _per_file_times(times_s: Any, n_files: int) -> list[np.ndarray]:
    if isinstance(times_s, np.ndarray) and times_s.ndim == 1:
        return [_as_times(times_s)] * n_files
    items = list(times_s)
    if items and all(np.ndim(t) == 0 for t in items):
        return [_as_times(items)] * n_files
    if len(items) != n_files:
        raise ValueError(f"times_s: got {len(items)} sequences of times for {n_files} files")
    return [_as_times(t) for t in items]
