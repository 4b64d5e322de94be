"""Video frames at chosen times: decord or PyAV on CPU (DALI on GPU lives in ``avs.decode.dali``).

    sampling = FrameSampling("even", n_frames=12)          # paper 000, sec. 2.2: 12 frames per 10-s clip
    info = probe_video(path)                               # header facts, no decoding
    times_s = sample_times(info.duration_s, sampling)      # (n,) seconds from the first frame
    frames, timestamps_s, indices = read_frames(path, times_s, size=(224, 224))
    # frames (n, H, W, 3) uint8 RGB; timestamps_s (n,) float64; indices (n,) int64

Which frame a time gives: the frame *shown* at that time, i.e. the last frame whose presentation timestamp
is <= t (its presentation interval [pts_k, pts_k+1) contains t). Times are seconds from the first video
frame's presentation time (the first frame is t = 0 whatever the container's start offset); a time before 0
gives frame 0 and a time past the end gives the last frame. ``timestamps_s`` are the chosen frames' own
presentation times on the same scale and ``indices`` their positions in presentation order, so a caller
can see exactly what it got (also for variable-frame-rate video, where index != t * fps).

Backends (``VIDEO_DECODERS``, a plugin module can add one):
    "pyav"    FFmpeg through PyAV. Builds an index of the stream's packets (presentation timestamps and
              key frames, demuxing only), maps times to frames exactly by pts (variable frame rate too),
              then decodes forwards, seeking to a key frame only when one lies between the current decode
              position and the next wanted frame (no frame is decoded twice, no backward seek).
    "decord"  decord.VideoReader: indices from ``get_frame_timestamp``, frames from ``get_batch``.
              decord seeks by frame index assuming a constant frame rate, so use it for CFR video only.
    "auto"    opens the file with PyAV first (cheap: gives the clear errors for empty / corrupt / audio-only
              files without letting decord touch them; decord aborts the process on some corrupt files),
              then decord; falls back to PyAV when decord fails or when its frame timestamps are not evenly
              spaced (variable frame rate).

Resize (``size=(height, width)``): after colour conversion, each RGB frame is resized with PIL's bicubic
filter (which antialiases when shrinking), the same for every backend. ``None`` keeps the decoded size.
The aspect ratio is not kept: pass the size you want, or resize later (e.g. CLIP's own preprocessing).
Rotation metadata (phone videos) is ignored by both backends.

Errors are ``avs.decode.errors`` classes: MissingFile, EmptyFile, CorruptMedia, NoVideoTrack. Decoding in
this process cannot be interrupted; ``avs.decode.video_guard.GuardedFrameReader`` decodes in a child process
so that a native crash or a hang costs one file (DecoderCrashed / DecodeTimeout).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import numpy as np

from avs.decode.errors import CorruptMedia, DecodeError, EmptyFile, MissingFile, NoVideoTrack
from avs.registry import Registry

VIDEO_DECODERS = Registry("video decoder")


# ------------------------------------------------------------------------------------------------ sampling


@dataclasses.dataclass(frozen=True)
class FrameSampling:
    """Which times of a clip to take frames at (see ``sample_times``)."""

    mode: Literal["even", "fps", "timestamps"] = "even"
    n_frames: int = 12  # "even": frames per clip; paper 000 sec. 2.2: 12 per 10-s clip (training), 5 at test
    fps: float = 10.0  # "fps": frames per second; paper 002 samples frames at 10 fps
    timestamps_s: tuple[float, ...] = ()  # "timestamps": these times, seconds from the first frame

    def __post_init__(self) -> None:
        if self.mode not in ("even", "fps", "timestamps"):
            raise ValueError(f"FrameSampling.mode must be 'even', 'fps' or 'timestamps', got {self.mode!r}")
        if self.mode == "even" and self.n_frames < 1:
            raise ValueError(f"FrameSampling.n_frames must be >= 1, got {self.n_frames}")
        if self.mode == "fps" and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"FrameSampling.fps must be > 0, got {self.fps}")
        if self.mode == "timestamps":
            if not self.timestamps_s:
                raise ValueError("FrameSampling(mode='timestamps') needs timestamps_s")
            if not all(math.isfinite(t) for t in self.timestamps_s):
                raise ValueError(f"FrameSampling.timestamps_s must be finite, got {self.timestamps_s}")
        object.__setattr__(self, "timestamps_s", tuple(float(t) for t in self.timestamps_s))


def sample_times(duration_s: float, sampling: FrameSampling) -> np.ndarray:
    """Times (seconds from the first frame) to take frames at: (n,) float64.

    "even":       the centres of ``n_frames`` equal intervals, t_i = (i + 0.5) * duration / N, i = 0..N-1
                  (no frame at the very start or end, where fades and black frames are; a 10-s clip with
                  N = 12 gives 0.417, 1.25, ..., 9.583 s). A duration <= 0 (unknown) gives N zeros.
    "fps":        t = 0, 1/fps, 2/fps, ... while t < duration; at least one frame (t = 0).
    "timestamps": ``timestamps_s`` as given (times past the end give the last frame when read).
    """
    duration_s = float(duration_s)
    if math.isnan(duration_s):
        raise ValueError("sample_times: duration_s is NaN")
    if sampling.mode == "even":
        n = sampling.n_frames
        if duration_s <= 0:
            return np.zeros(n, dtype=np.float64)
        return (np.arange(n, dtype=np.float64) + 0.5) * (duration_s / n)
    if sampling.mode == "fps":
        n = max(1, math.ceil(duration_s * sampling.fps - 1e-9)) if math.isfinite(duration_s) else 1
        return np.arange(n, dtype=np.float64) / sampling.fps
    return np.asarray(sampling.timestamps_s, dtype=np.float64)


# ------------------------------------------------------------------------------------------------ results


class FrameBatch(NamedTuple):
    frames: np.ndarray  # (n, height, width, 3) uint8 RGB
    timestamps_s: np.ndarray  # (n,) float64, presentation time of each returned frame, from the first frame
    indices: np.ndarray  # (n,) int64, position of each returned frame in presentation order


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    duration_s: float  # video stream's duration from the header (else the container's); 0.0 when unknown
    fps: float  # average frame rate from the header; 0.0 when unknown
    n_frames: int  # frame count from the header; estimated as round(duration_s * fps) when not stored
    width: int
    height: int
    has_audio: bool
    codec: str = ""


# ------------------------------------------------------------------------------------------------ helpers


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise MissingFile(f"file not found: {path}")
    if os.path.getsize(path) == 0:
        raise EmptyFile(f"file is empty (0 bytes): {path}")


def _open_pyav(path: str) -> Any:
    import av

    _check_file(path)
    try:
        return av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise CorruptMedia(f"PyAV cannot open {path}: {exc}") from exc


def _video_stream(container: Any, path: str) -> Any:
    """The first video stream that is a real video (not a cover picture); NoVideoTrack when none."""
    import av

    attached_pic = getattr(av.stream.Disposition, "attached_pic", 0)
    for stream in container.streams.video:
        if not (int(stream.disposition) & int(attached_pic)):
            return stream
    has_audio = bool(container.streams.audio)
    what = "only an audio track" if has_audio else "no video track"
    raise NoVideoTrack(f"no video track in {path} ({what})")


def resize_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (n, height, width, 3) uint8 with PIL bicubic (antialiased when shrinking)."""
    if size is None:
        return frames
    from PIL import Image

    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be (height, width) > 0, got {size}")
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC))
    return out


def _as_times(times_s: Sequence[float] | np.ndarray) -> np.ndarray:
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if not np.isfinite(times).all():
        raise ValueError(f"times_s must be finite, got {times}")
    return times


def _pick(starts_s: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the last start <= t for each t (clipped to [0, n-1]); ``starts_s`` sorted ascending."""
    # 10 us slack: decord's timestamps are float32 (0.2 s reads 0.20000000298), frames are >= ~1 ms apart
    idx = np.searchsorted(starts_s, times + 1e-5, side="right") - 1
    return np.clip(idx, 0, len(starts_s) - 1).astype(np.int64)


def _empty_batch(height: int, width: int, size: tuple[int, int] | None) -> FrameBatch:
    h, w = (int(size[0]), int(size[1])) if size is not None else (height, width)
    return FrameBatch(np.zeros((0, h, w, 3), np.uint8), np.zeros(0, np.float64), np.zeros(0, np.int64))


# ------------------------------------------------------------------------------------------------ probe


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Duration, frame rate, frame count, size and whether there is audio, from the header (PyAV)."""
    import av

    path = str(path)
    with _open_pyav(path) as container:
        stream = _video_stream(container, path)
        duration_s = 0.0
        if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None and container.duration > 0:
            duration_s = container.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        n_frames = int(stream.frames or 0)
        if n_frames <= 0 and duration_s > 0 and fps > 0:
            n_frames = int(round(duration_s * fps))
        cc = stream.codec_context
        return VideoInfo(
            duration_s=duration_s,
            fps=fps,
            n_frames=n_frames,
            width=int(cc.width or 0),
            height=int(cc.height or 0),
            has_audio=bool(container.streams.audio),
            codec=str(cc.name or ""),
        )


# ------------------------------------------------------------------------------------------------ PyAV


@dataclasses.dataclass
class StreamIndex:
    """Presentation timestamps of a video stream's frames, from its packets (no decoding)."""

    pts: np.ndarray  # (n_frames,) int64, sorted = presentation order, in time_base units
    key_pts: np.ndarray  # (n_keys,) int64, sorted, pts of key frames
    time_base: Fraction
    end_pts: int  # end of the last frame's presentation interval

    @property
    def starts_s(self) -> np.ndarray:
        """(n_frames,) float64 seconds from the first frame."""
        return (self.pts - self.pts[0]).astype(np.float64) * float(self.time_base)

    @property
    def duration_s(self) -> float:
        return float((self.end_pts - self.pts[0]) * self.time_base)


def _build_index(container: Any, stream: Any) -> StreamIndex | None:
    """Demux every packet of ``stream``; ``None`` when packets carry no pts (e.g. raw H.264 streams).

    A read error (truncated file) ends the index where the readable data ends.
    """
    import av

    pts: list[int] = []
    keys: list[int] = []
    durations: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            if packet.pts is None:
                return None
            pts.append(int(packet.pts))
            durations.append(int(packet.duration or 0))
            if packet.is_keyframe:
                keys.append(int(packet.pts))
    except (av.error.FFmpegError, OSError):
        pass
    if not pts:
        return None
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    pts_arr = np.asarray(pts, dtype=np.int64)[order]
    dur_arr = np.asarray(durations, dtype=np.int64)[order]
    if len(np.unique(pts_arr)) != len(pts_arr):  # duplicated pts: no reliable presentation order
        return None
    key_arr = np.unique(np.asarray(keys, dtype=np.int64)) if keys else pts_arr[:1]
    step = int(np.median(np.diff(pts_arr))) if len(pts_arr) > 1 else 0
    last_dur = int(dur_arr[-1]) if dur_arr[-1] > 0 else step
    return StreamIndex(pts_arr, key_arr, Fraction(stream.time_base), int(pts_arr[-1]) + max(last_dur, 0))


def _frame_rgb(frame: Any) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")  # (height, width, 3) uint8, swscale colour conversion


def _decode_packets(container: Any, stream: Any, state: dict[str, int]) -> Any:
    """Frames of ``stream`` from the current position; undecodable packets are skipped (and counted)."""
    import av

    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError):  # a damaged packet: skip it, keep decoding
                state["bad_packets"] = state.get("bad_packets", 0) + 1
                continue
            yield from frames
    except (av.error.FFmpegError, OSError):  # a read error: the end of the readable data
        state["read_error"] = 1
    # flush the decoder's delayed frames (B-frame reordering, frame threads)
    try:
        yield from stream.codec_context.decode(None)
    except (av.error.FFmpegError, ValueError):
        pass


def _read_indexed(container: Any, stream: Any, index: StreamIndex, times: np.ndarray, path: str) -> FrameBatch:
    wanted = _pick(index.starts_s, times)  # (n,) positions in presentation order
    out: dict[int, np.ndarray] = {}  # position -> RGB frame
    got_pts: dict[int, int] = {}  # position -> pts of the frame actually returned for it
    state: dict[str, int] = {}
    frames_iter = None
    cur_pts: int | None = None  # pts of the last decoded frame
    prev: tuple[int, Any] | None = None  # (pts, frame) of the last decoded frame
    for pos in np.unique(wanted):
        target = int(index.pts[pos])
        k = np.searchsorted(index.key_pts, target, side="right") - 1
        key = int(index.key_pts[k]) if k >= 0 else int(index.pts[0])
        if frames_iter is None or cur_pts is None or key > cur_pts or target < cur_pts:
            container.seek(key, stream=stream, backward=True, any_frame=False)
            frames_iter = _decode_packets(container, stream, state)
            prev = None
            cur_pts = None
        chosen = None
        if prev is not None and prev[0] == target:
            chosen = prev
        while chosen is None:
            frame = next(frames_iter, None)
            if frame is None:  # decoder ran out: the last frame it gave, if any
                chosen = prev
                break
            if frame.pts is None:
                raise _NoPts()
            fpts = int(frame.pts)
            if fpts > target and prev is not None and prev[0] < target:
                chosen = prev  # the wanted frame did not decode: the one shown just before it
                prev = (fpts, frame)
                cur_pts = fpts
                break
            prev = (fpts, frame)
            cur_pts = fpts
            if fpts >= target:
                chosen = prev
        if chosen is None:
            raise CorruptMedia(
                f"PyAV decoded no frame of {path} at or after {float((target - index.pts[0]) * index.time_base):.3f} s"
                f" (bad packets: {state.get('bad_packets', 0)})"
            )
        out[int(pos)] = _frame_rgb(chosen[1])
        got_pts[int(pos)] = chosen[0]
    frames = np.stack([out[int(p)] for p in wanted])
    actual_pts = np.array([got_pts[int(p)] for p in wanted], dtype=np.int64)
    timestamps = (actual_pts - index.pts[0]).astype(np.float64) * float(index.time_base)
    indices = np.clip(np.searchsorted(index.pts, actual_pts, side="left"), 0, len(index.pts) - 1)
    return FrameBatch(frames, timestamps, indices.astype(np.int64))


class _NoPts(Exception):
    """Decoded frames carry no pts: use the sequential path."""


def _read_sequential(container: Any, stream: Any, times: np.ndarray, path: str) -> FrameBatch:
    """Decode from the start, no index: frame k's time is its pts if known, else k / average fps."""
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 25.0
    order = np.argsort(times, kind="stable")
    frames: list[np.ndarray | None] = [None] * len(times)
    stamps = np.zeros(len(times), np.float64)
    idx = np.zeros(len(times), np.int64)
    state: dict[str, int] = {}
    t0: float | None = None
    prev: tuple[int, float, Any] | None = None  # (index, time from first, frame)
    j = 0
    for k, frame in enumerate(_decode_packets(container, stream, state)):
        t = float(frame.time) if frame.time is not None else k / fps
        t0 = t if t0 is None else t0
        t -= t0
        while j < len(order) and prev is not None and times[order[j]] < t - 1e-9:
            i = order[j]
            frames[i], stamps[i], idx[i] = _frame_rgb(prev[2]), prev[1], prev[0]
            j += 1
        if j >= len(order):
            break
        prev = (k, t, frame)
    if prev is None:
        raise CorruptMedia(f"PyAV decoded no video frame of {path} (bad packets: {state.get('bad_packets', 0)})")
    while j < len(order):  # the rest are at or past the last frame
        i = order[j]
        frames[i], stamps[i], idx[i] = _frame_rgb(prev[2]), prev[1], prev[0]
        j += 1
    return FrameBatch(np.stack(frames), stamps, idx)  # type: ignore[arg-type]


def stream_index(path: str | os.PathLike) -> StreamIndex:
    """The packet index of ``path``'s video stream (pts in presentation order, key frames)."""
    path = str(path)
    with _open_pyav(path) as container:
        stream = _video_stream(container, path)
        index = _build_index(container, stream)
    if index is None:
        raise CorruptMedia(f"the video packets of {path} carry no usable presentation timestamps")
    return index


@VIDEO_DECODERS.register("pyav")
def read_frames_pyav(
    path: str, times_s: np.ndarray, size: tuple[int, int] | None = None, threads: int = 0
) -> FrameBatch:
    import av

    times = _as_times(times_s)
    with _open_pyav(path) as container:
        stream = _video_stream(container, path)
        if len(times) == 0:
            return _empty_batch(stream.codec_context.height, stream.codec_context.width, size)
        stream.thread_type = "AUTO"  # frame + slice threads
        stream.thread_count = int(threads)
        try:
            index = _build_index(container, stream)
            if index is not None:
                try:
                    batch = _read_indexed(container, stream, index, times, path)
                    return batch._replace(frames=resize_frames(batch.frames, size))
                except _NoPts:
                    pass
            container.seek(0)
            batch = _read_sequential(container, stream, times, path)
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"PyAV cannot decode the video of {path}: {exc}") from exc
    return batch._replace(frames=resize_frames(batch.frames, size))


# ------------------------------------------------------------------------------------------------ decord


class VariableFrameRate(DecodeError):
    """decord was asked for a variable-frame-rate stream (its index-based seeking would be wrong)."""

    kind = "variable_frame_rate"


def is_evenly_spaced(starts_s: np.ndarray, rel_tol: float = 0.05, abs_tol_s: float = 0.002) -> bool:
    """Whether frame start times are evenly spaced (constant frame rate), allowing time-base rounding."""
    if len(starts_s) < 3:
        return True
    d = np.diff(starts_s)
    step = float(np.median(d))
    if step <= 0:
        return False
    return bool(np.abs(d - step).max() <= max(abs_tol_s, rel_tol * step))


def _decord_error_types() -> tuple[type[BaseException], ...]:
    try:
        from decord._ffi.base import DECORDError

        return (DECORDError, RuntimeError)
    except Exception:  # noqa: BLE001
        return (RuntimeError,)


@VIDEO_DECODERS.register("decord")
def read_frames_decord(
    path: str, times_s: np.ndarray, size: tuple[int, int] | None = None, threads: int = 0, *, allow_vfr: bool = True
) -> FrameBatch:
    import decord

    _check_file(path)
    times = _as_times(times_s)
    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=int(threads))
    except _decord_error_types() as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "cannot find video stream" in str(exc):
            raise NoVideoTrack(f"no video track in {path} (decord: {message})") from exc
        raise CorruptMedia(f"decord cannot open {path}: {message}") from exc
    try:
        n = len(vr)
        if n == 0:
            raise CorruptMedia(f"decord found no frames in {path}")
        starts = vr.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64)  # (n,) seconds
        starts = starts - starts[0]
        if not allow_vfr and not is_evenly_spaced(starts):
            raise VariableFrameRate(f"{path}: frame timestamps are not evenly spaced (variable frame rate)")
        if len(times) == 0:
            h, w = vr[0].shape[:2]
            return _empty_batch(h, w, size)
        wanted = _pick(starts, times)
        unique, inverse = np.unique(wanted, return_inverse=True)
        try:
            batch = vr.get_batch(unique.tolist()).asnumpy()  # (u, H, W, 3) uint8 RGB
        except _decord_error_types() as exc:
            raise CorruptMedia(f"decord cannot decode frames of {path}: {exc}") from exc
        frames = np.ascontiguousarray(batch[inverse.reshape(-1)])
        return FrameBatch(resize_frames(frames, size), starts[wanted], wanted)
    finally:
        del vr  # decord holds the decoder and its buffers until the reader goes


# ------------------------------------------------------------------------------------------------ auto


@VIDEO_DECODERS.register("auto")
def read_frames_auto(
    path: str, times_s: np.ndarray, size: tuple[int, int] | None = None, threads: int = 0
) -> FrameBatch:
    with _open_pyav(path) as container:  # clear errors for bad files before decord sees them
        stream = _video_stream(container, path)
        codec_ok = stream.codec_context is not None and stream.codec_context.width > 0
    if codec_ok:
        try:
            return read_frames_decord(path, times_s, size, threads, allow_vfr=False)
        except Exception:  # noqa: BLE001 - VFR, decord missing or failing: PyAV decodes exactly by pts
            pass
    return read_frames_pyav(path, times_s, size, threads)


def register_video_decoder(name: str) -> Callable:
    """Register ``fn(path, times_s, size=None, threads=0) -> FrameBatch`` under ``name``."""
    return VIDEO_DECODERS.register(name)


def read_frames(
    path: str | os.PathLike,
    times_s: Sequence[float] | np.ndarray,
    backend: str = "auto",
    size: tuple[int, int] | None = None,
    *,
    threads: int = 0,
) -> FrameBatch:
    """The frames shown at ``times_s`` (seconds from the first frame) of ``path``'s video stream.

    Returns ``(frames (n, H, W, 3) uint8 RGB, timestamps_s (n,), indices (n,))``; see the module docstring
    for which frame a time gives. ``size=(height, width)`` resizes (PIL bicubic). ``threads``: decoder
    threads (0 = FFmpeg / decord choose; use 1 in a one-CPU Ray task). Raises a ``DecodeError`` subclass.
    """
    path = str(path)
    batch = VIDEO_DECODERS.get(backend).factory(path, _as_times(times_s), size, threads)
    frames = batch.frames
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DecodeError(f"decoder {backend!r} returned frames of shape {frames.shape} {frames.dtype} for {path}")
    return batch


def sample_frames(
    path: str | os.PathLike,
    sampling: FrameSampling,
    backend: str = "auto",
    size: tuple[int, int] | None = None,
    *,
    threads: int = 0,
) -> FrameBatch:
    """``read_frames`` at ``sample_times(probe_video(path).duration_s, sampling)``."""
    info = probe_video(path)
    return read_frames(path, sample_times(info.duration_s, sampling), backend, size, threads=threads)
