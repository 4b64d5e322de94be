"""Video frames with NVIDIA DALI: the same frames as ``avs.decode.video.read_frames``, decoded on the GPU (NVDEC).

    if dali_available():
        batches = read_frames_dali(paths, times_s, size=(224, 224))   # one FrameBatch per path
    read_frames_dali(["clip.webm"], [0.5], decoder="cpu")             # DALI's CPU decoder: VP8 / VP9 / MJPEG

How it works: the CPU builds each file's packet index with PyAV (demuxing only, no decoding;
``avs.decode.video.stream_index``) and maps the requested times to frame indices exactly as the CPU
backends do (the last frame whose pts <= t, variable frame rate included); DALI's
``fn.decoders.video`` (``fn.experimental.decoders.video`` on older DALI) then decodes those frames
(``decoder="gpu"``: ``device="mixed"``, encoded bytes in host memory, frames out in GPU memory, NVDEC), resizes
them when ``size`` is given (``fn.resize``, cubic, antialiased; the size is a per-file input of the pipeline)
and hands them back as numpy arrays or as torch tensors (``output="torch"``: CUDA tensors with no copy to the
host, fed straight to the CLIP embedder). An index past DALI's own frame count of a file is an error
(``pad_mode="none"``), never a silently black frame. A file whose times are empty (a video shorter than half a
segment, or 0 s long in its header) gets an empty ``FrameBatch`` without a decode, as with PyAV.

``decoder="cpu"`` runs DALI's CPU video decoder (libavcodec inside DALI): VP8, VP9 and MJPEG only (not H.264),
no CUDA needed. avs decodes on CPU with decord / PyAV (DESIGN.md); this mode exists so that this module's own
code is tested end to end wherever DALI is installed, GPU or not.

Needs the ``gpu`` extra (NVIDIA DALI 2.x, whose video decoder takes the ``frames`` argument) and, for
``decoder="gpu"``, a CUDA device. DALI is imported only inside these functions; without it
``read_frames_dali`` raises ``DaliUnavailable`` saying what is missing.

Pipelines are cached per (max_batch_size, resize or not, decoder, device_id, num_threads): building one costs
about a second, and output sizes are inputs, not part of the key, so mixed resolutions share one pipeline; at
most ``MAX_PIPELINES`` are kept (the least recently used is dropped). Files go through a pipeline in chunks of
``max_batch_size``. A chunk that fails is retried file by file so that one bad file does not lose the others
(``on_error="return"``). Failures are told apart (``avs.decode.errors.infrastructure_reason``): a bad file is a
``CorruptMedia``; NVDEC missing, a CUDA error or GPU memory running out is an ``InfrastructureError``, never
recorded as bad data (the caller decodes those files on CPU or stops).
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from avs.decode.errors import CorruptMedia, DecodeError, InfrastructureError, infrastructure_reason
from avs.decode.video import FrameBatch, _as_times, _pick, probe_video, stream_index

INSTALL_HINT = "install the GPU profile: bash scripts/install.sh gpu (nvidia-dali-cuda130, for PyPI's cu130 torch)"
MAX_PIPELINES = 4  # cached DALI pipelines per process (each holds decoder state and GPU buffers)

Decoder = Literal["gpu", "cpu"]
Size = tuple[int, int]  # (height, width) pixels


class DaliUnavailable(InfrastructureError):
    """DALI or a CUDA device is missing (or the installed DALI is too old for frame-indexed decoding)."""

    def __init__(self, message: str) -> None:
        super().__init__("dali_unavailable", message)


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


def _require_dali(decoder: Decoder = "gpu") -> Any:
    if not _dali_installed():
        raise DaliUnavailable(f"NVIDIA DALI is not installed (module nvidia.dali not found); {INSTALL_HINT}")
    if decoder == "gpu" and not _cuda_available():
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


def define_graph(fn: Any, types: Any, resize: bool, decoder: Decoder) -> Any:
    """The pipeline's graph (call inside ``with pipe:``): inputs "encoded" (file bytes), "frame_idx" (n,) int32
    and, with ``resize``, "size" (2,) float32 (height, width); returns the frames, one (n, H, W, 3) uint8 per file.
    ``fn`` / ``types`` are ``nvidia.dali.fn`` / ``nvidia.dali.types``."""
    video_op = _video_op(fn)
    encoded = fn.external_source(name="encoded", device="cpu", dtype=types.UINT8, ndim=1)  # (n_bytes,)
    frame_idx = fn.external_source(name="frame_idx", device="cpu", dtype=types.INT32, ndim=1)  # (n,)
    try:
        # pad_mode "none": an index past DALI's own frame count raises (default "constant": a black frame)
        video = video_op(encoded, device="mixed" if decoder == "gpu" else "cpu", frames=frame_idx, pad_mode="none")
    except (TypeError, RuntimeError) as exc:
        raise DaliUnavailable(
            f"this DALI's video decoder does not take per-sample frame indices ('frames') with pad_mode 'none': "
            f"{exc}; {INSTALL_HINT} (a DALI 2.x release)"
        ) from exc
    if resize:
        size = fn.external_source(name="size", device="cpu", dtype=types.FLOAT, ndim=1)  # (2,) height, width
        video = fn.resize(video, size=size, interp_type=types.INTERP_CUBIC, antialias=True)
    return video


_PIPELINES: OrderedDict[tuple, Any] = OrderedDict()  # least recently used first


def _pipeline(max_batch_size: int, resize: bool, decoder: Decoder, device_id: int, num_threads: int) -> Any:
    """A built pipeline from the cache (or a new one); raises ``DaliUnavailable`` / ``InfrastructureError``."""
    key = (max_batch_size, resize, decoder, device_id, num_threads)
    if key in _PIPELINES:
        _PIPELINES.move_to_end(key)
        return _PIPELINES[key]
    dali = _require_dali(decoder)
    from nvidia.dali import fn, types

    try:
        pipe = dali.Pipeline(
            batch_size=max_batch_size,
            num_threads=num_threads,
            device_id=device_id if decoder == "gpu" else None,  # None: a CPU-only pipeline
            prefetch_queue_depth=1,  # fed one batch per run() with feed_input: no batches queued ahead
        )
        with pipe:
            pipe.set_outputs(define_graph(fn, types, resize, decoder))
        pipe.build()
    except InfrastructureError:
        raise
    except RuntimeError as exc:  # nothing file-specific is fed yet: the machine or DALI is at fault
        raise InfrastructureError(infrastructure_reason(exc) or "dali_unavailable", _dali_message(exc)) from exc
    while len(_PIPELINES) >= MAX_PIPELINES:
        _PIPELINES.popitem(last=False)  # dropping the last reference frees its buffers
    _PIPELINES[key] = pipe
    return pipe


class _Plan(NamedTuple):
    data: np.ndarray  # (n_bytes,) uint8, the file
    idx: np.ndarray  # (n,) int32 frame indices in presentation order
    stamps: np.ndarray  # (n,) float64 s, their presentation times from the first frame
    size: Size | None  # output (height, width); None: as decoded


def _plan(path: str, times: np.ndarray, size: Size | None) -> _Plan:
    index = stream_index(path)  # raises MissingFile / EmptyFile / CorruptMedia / NoVideoTrack
    starts = index.starts_s
    idx = _pick(starts, times)
    data = np.fromfile(path, dtype=np.uint8) if len(idx) else np.zeros(0, np.uint8)
    return _Plan(data, idx.astype(np.int32), starts[idx], size)


def _dali_message(exc: BaseException) -> str:
    """The cause in one of DALI's multi-line errors (the line after "encountered:"), else its first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines[:-1]):
        if line == "encountered:":
            return lines[i + 1]
    useful = [ln for ln in lines if not ln.startswith(("Critical error", "Current pipeline", "C++ context"))]
    return (useful or lines or [type(exc).__name__])[0]


def _classify(exc: BaseException, path: str) -> DecodeError | InfrastructureError:
    """A failed DALI run of one file: the machine's fault (``InfrastructureError``) or the file's."""
    message = _dali_message(exc)
    reason = infrastructure_reason(exc)
    if reason is not None:
        return InfrastructureError(reason, f"DALI failed ({message})", path)
    return CorruptMedia(f"DALI cannot decode {path}: {message}")


def _to_output(sample: Any, output: str, device_id: int, stream: Any) -> Any:
    """One DALI sample (n, H, W, 3) uint8 -> numpy, or a torch tensor (CUDA for GPU samples)."""
    from nvidia.dali.backend import TensorGPU

    if not isinstance(sample, TensorGPU):  # TensorCPU (decoder "cpu"): copied out of DALI's buffer
        host = np.array(sample, dtype=np.uint8, copy=True)
        if output == "numpy":
            return host
        import torch

        return torch.from_numpy(host)
    if output == "numpy":
        return np.array(sample.as_cpu(), copy=True)
    import torch
    from nvidia.dali.plugin.pytorch import feed_ndarray

    out = torch.empty(tuple(sample.shape()), dtype=torch.uint8, device=f"cuda:{device_id}")
    feed_ndarray(sample, out, cuda_stream=stream)  # on torch's stream, after DALI's work on it (run below)
    return out


def _run_chunk(pipe: Any, plans: list[_Plan], output: str, device_id: int, decoder: Decoder) -> list[Any]:
    """Decode the files of one chunk: one (n, H, W, 3) uint8 per plan."""
    stream = None
    if decoder == "gpu" and output == "torch":
        import torch

        stream = torch.cuda.current_stream(device_id)
    pipe.feed_input("encoded", [p.data for p in plans])
    pipe.feed_input("frame_idx", [p.idx for p in plans])
    if plans[0].size is not None:
        pipe.feed_input("size", [np.asarray(p.size, dtype=np.float32) for p in plans])
    # Bound to torch's stream: the outputs are ready in stream order for the copies below (else host-synchronous)
    (video,) = pipe.run(stream) if stream is not None else pipe.run()
    frames = [_to_output(video[i], output, device_id, stream) for i in range(len(plans))]
    if stream is not None:
        stream.synchronize()  # the copies are done before the next run() may reuse DALI's output buffers
    return frames


def _empty_batch(path: str, plan: _Plan, output: str, device_id: int, decoder: Decoder) -> FrameBatch:
    """No time to decode: (0, H, W, 3) frames of the output size, as PyAV's path returns."""
    if plan.size is not None:
        height, width = plan.size
    else:
        info = probe_video(path)
        height, width = info.height, info.width
    frames: Any = np.zeros((0, height, width, 3), np.uint8)
    if output == "torch":
        import torch

        frames = torch.from_numpy(frames).to(f"cuda:{device_id}" if decoder == "gpu" else "cpu")
    return FrameBatch(frames, plan.stamps, plan.idx.astype(np.int64))


def read_frames_dali(
    paths: Sequence[str | os.PathLike],
    times_s: Sequence[float] | np.ndarray | Sequence[Sequence[float]],
    size: Size | Sequence[Size] | None = None,
    *,
    decoder: Decoder = "gpu",
    device_id: int = 0,
    num_threads: int = 2,
    max_batch_size: int = 8,
    output: Literal["numpy", "torch"] = "numpy",
    on_error: Literal["raise", "return"] = "raise",
) -> list[FrameBatch | DecodeError | InfrastructureError]:
    """Frames of each file at ``times_s`` (one sequence for all files, or one per file), decoded by DALI.

    Returns one ``FrameBatch`` per path (frames (n, H, W, 3) uint8 RGB as numpy, or as a torch tensor with
    ``output="torch"``, CUDA with the GPU decoder; timestamps_s and indices as numpy). ``size``: one
    (height, width) for every file, one per file, or None (as decoded). ``decoder``: "gpu" (NVDEC) or "cpu"
    (DALI's CPU decoder: VP8 / VP9 / MJPEG, for tests). ``on_error="return"`` puts the error of a file in its
    place instead of raising: a ``DecodeError`` for a bad file, an ``InfrastructureError`` when NVDEC, CUDA
    or GPU memory failed. Raises ``DaliUnavailable`` without DALI (or without CUDA for "gpu").
    """
    if decoder not in ("gpu", "cpu"):
        raise ValueError(f"decoder must be 'gpu' or 'cpu', got {decoder!r}")
    paths = [str(p) for p in paths]
    per_file = _per_file_times(times_s, len(paths))
    sizes = _per_file_sizes(size, len(paths))
    resize = size is not None
    key = (int(max_batch_size), resize, decoder, int(device_id), int(num_threads))
    pipe = _pipeline(*key)  # before any file: DaliUnavailable / InfrastructureError for the whole call
    results: list[FrameBatch | DecodeError | InfrastructureError | None] = [None] * len(paths)
    plans: dict[int, _Plan] = {}
    for i, (path, times) in enumerate(zip(paths, per_file, strict=True)):
        try:
            plan = _plan(path, times, sizes[i])
            if len(plan.idx) == 0:
                results[i] = _empty_batch(path, plan, output, device_id, decoder)
            else:
                plans[i] = plan
        except DecodeError as exc:
            if on_error == "raise":
                raise
            results[i] = exc
    todo = sorted(plans)
    for start in range(0, len(todo), max_batch_size):
        chunk = todo[start : start + max_batch_size]
        try:
            frames, pipe = _decode_chunk(pipe, key, [(paths[i], plans[i]) for i in chunk], output, on_error)
        except InfrastructureError as failure:  # NVDEC / CUDA broken: no later file would decode either
            if on_error == "raise":
                raise
            for i in todo[start:]:
                results[i] = failure
            break
        for i, f in zip(chunk, frames, strict=True):
            if isinstance(f, (DecodeError, InfrastructureError)):
                results[i] = f
            else:
                results[i] = FrameBatch(f, plans[i].stamps, plans[i].idx.astype(np.int64))
    return results  # type: ignore[return-value]


def _fresh(pipe: Any, key: tuple) -> Any:
    """A new pipeline in place of one whose run failed (DALI: "Current pipeline object is no longer valid")."""
    for k in [k for k, p in _PIPELINES.items() if p is pipe]:
        del _PIPELINES[k]
    return _pipeline(*key)


def _decode_chunk(
    pipe: Any, key: tuple, items: list[tuple[str, _Plan]], output: str, on_error: str
) -> tuple[list[Any], Any]:
    """Frames of a chunk's files (or each bad file's error), and the pipeline to go on with. Raises
    ``InfrastructureError`` when NVDEC or CUDA failed; GPU memory running out is retried file by file."""
    _, _, decoder, device_id, _ = key
    try:
        return _run_chunk(pipe, [p for _, p in items], output, device_id, decoder), pipe
    except RuntimeError as exc:
        pipe = _fresh(pipe, key)
        reason = infrastructure_reason(exc)
        if reason is not None and reason != "gpu_out_of_memory":
            raise InfrastructureError(reason, f"DALI failed ({_dali_message(exc)})") from exc
        if len(items) == 1:  # this file's fault, or too big for the GPU memory left (an InfrastructureError)
            err = _classify(exc, items[0][0])
            if on_error == "raise":
                raise err from exc
            return [err], pipe
    out: list[Any] = []  # one bad file (or one too big for GPU memory) failed the chunk: find it, keep the others
    for item in items:
        frames, pipe = _decode_chunk(pipe, key, [item], output, on_error)
        out.extend(frames)
    return out, pipe


def _per_file_times(times_s: Any, n_files: int) -> list[np.ndarray]:
    if isinstance(times_s, np.ndarray) and times_s.ndim == 1:
        return [_as_times(times_s)] * n_files
    items = list(times_s)
    if items and all(np.ndim(t) == 0 for t in items):
        return [_as_times(items)] * n_files
    if len(items) != n_files:
        raise ValueError(f"times_s: got {len(items)} sequences of times for {n_files} files")
    return [_as_times(t) for t in items]


def _per_file_sizes(size: Any, n_files: int) -> list[Size | None]:
    """``None``, one (height, width) or one per file -> one (height, width) or None per file."""
    if size is None:
        return [None] * n_files
    items = list(size)
    if len(items) == 2 and all(np.ndim(s) == 0 for s in items):
        items = [items] * n_files
    if len(items) != n_files:
        raise ValueError(f"size: got {len(items)} sizes for {n_files} files")
    out: list[Size | None] = []
    for s in items:
        h, w = int(s[0]), int(s[1])
        if h <= 0 or w <= 0:
            raise ValueError(f"size must be (height, width) > 0, got {tuple(s)}")
        out.append((h, w))
    return out
