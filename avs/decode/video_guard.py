"""``read_frames`` in a child process, so that a decoder that crashes (segfault, abort: decord does on some
corrupt files) or hangs costs that file only.

    with GuardedFrameReader(timeout_s=60, size=(224, 224)) as reader:
        frames, timestamps_s, indices = reader.read_frames("clip.mp4", times_s)
        # raises the child's DecodeError class, DecoderCrashed or DecodeTimeout

The child (``python -m avs.decode.video_guard``) is started once and reused; after a crash or a time-out it
is replaced on the next call. Requests and replies are length-prefixed pickles over its stdin / stdout
(nothing depends on the parent's ``__main__``: Ray workers, notebooks and scripts all work). Frames come back
through the pipe: 12 frames of 224 x 224 are 1.8 MB, 12 full 1280 x 720 frames 33 MB.
``plugins`` are modules the child imports first (to register extra video decoders).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from avs.decode.child import ChildProcess, serve
from avs.decode.image import is_image_path, read_image
from avs.decode.video import FrameBatch, read_frames


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the shorter side is ``short_side`` pixels (aspect kept, rounded)."""
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resolve_request(path: str, times: Any, size: Any) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Times given as a sampling rule (``FrameSampling`` / ``SegmentCentres``) and a size given as the
    shorter side (int) need the video's header: resolved here, in the child, where a bad file is safe."""
    from avs.decode.segments import SegmentCentres
    from avs.decode.video import FrameSampling, probe_video, sample_times

    if not isinstance(times, (FrameSampling, SegmentCentres)) and not isinstance(size, int):
        return times, size
    info = probe_video(path)
    if isinstance(times, FrameSampling):
        times = sample_times(info.duration_s, times)
    elif isinstance(times, SegmentCentres):
        times = times.times(info.duration_s)
    if isinstance(size, int):
        size = short_side_size(info.height, info.width, size)
    return times, size


def _handle(request: tuple) -> tuple:
    path, times, backend, size, threads = request
    if is_image_path(path):  # a still image: one frame whatever the sampling rule (paper 002's LADI photos)
        batch = read_image(path, size)
        return batch.frames, batch.timestamps_s, batch.indices
    times, size = _resolve_request(path, times, size)
    batch = read_frames(path, times, backend, size, threads=threads)
    return batch.frames, batch.timestamps_s, batch.indices


def _is_rule(times: Any) -> bool:
    from avs.decode.segments import SegmentCentres
    from avs.decode.video import FrameSampling

    return isinstance(times, (FrameSampling, SegmentCentres))


class GuardedFrameReader(ChildProcess):
    what = "video decoder"

    def __init__(
        self,
        timeout_s: float = 120.0,
        plugins: tuple[str, ...] = (),
        backend: str = "auto",
        size: tuple[int, int] | int | None = None,
        threads: int = 1,
    ) -> None:
        super().__init__("avs.decode.video_guard", timeout_s, plugins)
        self.backend = backend
        # (height, width), or an int: the shorter side in pixels (aspect kept)
        self.size = None if size is None else int(size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.threads = int(threads)  # decoder threads in the child (1: one CPU per Ray task)

    def read_frames(self, path: str | os.PathLike, times_s: Sequence[float] | np.ndarray | Any) -> FrameBatch:
        """Frames of ``path`` at ``times_s`` (seconds, or a ``FrameSampling`` / ``SegmentCentres`` rule)."""
        path = str(path)
        times = times_s if _is_rule(times_s) else np.asarray(times_s, dtype=np.float64).reshape(-1)
        frames, timestamps, indices = self.call((path, times, self.backend, self.size, self.threads), path)
        return FrameBatch(frames, timestamps, indices)

    def __enter__(self) -> GuardedFrameReader:
        return self


if __name__ == "__main__":
    serve(_handle, sys.argv[1:], preload=("av", "decord", "PIL.Image"))
