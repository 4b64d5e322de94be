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

import importlib
import os
import pickle
import select
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np

from avs.decode.errors import (
    CorruptMedia,
    DecodeError,
    DecoderCrashed,
    DecodeTimeout,
    EmptyFile,
    MissingFile,
    NoVideoTrack,
    error_kind,
)
from avs.decode.video import FrameBatch, VariableFrameRate, read_frames

_HEADER = struct.Struct("<Q")  # payload length in bytes
_ERROR_CLASSES = {
    cls.kind: cls
    for cls in (
        DecodeError,
        EmptyFile,
        MissingFile,
        NoVideoTrack,
        CorruptMedia,
        DecoderCrashed,
        DecodeTimeout,
        VariableFrameRate,
    )
}


def _write_frame(fh: BinaryIO, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=5)
    fh.write(_HEADER.pack(len(payload)) + payload)
    fh.flush()


def _read_exact_blocking(fh: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = fh.read(left)
        if not chunk:
            raise EOFError("closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_exact_deadline(fd: int, n: int, deadline: float) -> bytes:
    """``n`` bytes from ``fd``, or TimeoutError at ``deadline`` (time.monotonic), or EOFError."""
    chunks, left = [], n
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("decoder process closed its output")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


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


def _child_main(plugins: list[str]) -> None:
    """Read (path, times, backend, size, threads); reply ("ok", frames, timestamps, indices) or an error."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from decoders must not corrupt the reply stream
    for name in plugins:
        importlib.import_module(name)
    while True:
        try:
            (n,) = _HEADER.unpack(_read_exact_blocking(stdin, _HEADER.size))
            request = pickle.loads(_read_exact_blocking(stdin, n))
        except EOFError:
            return
        if request is None:
            return
        path, times, backend, size, threads = request
        try:
            times, size = _resolve_request(path, times, size)
            batch = read_frames(path, times, backend, size, threads=threads)
            reply: tuple = ("ok", batch.frames, batch.timestamps_s, batch.indices)
        except Exception as exc:  # reported to the parent, which records it as an error row
            reply = ("error", error_kind(exc), str(exc) or repr(exc))
        _write_frame(stdout, reply)


def _is_rule(times: Any) -> bool:
    from avs.decode.segments import SegmentCentres
    from avs.decode.video import FrameSampling

    return isinstance(times, (FrameSampling, SegmentCentres))


class GuardedFrameReader:
    def __init__(
        self,
        timeout_s: float = 120.0,
        plugins: tuple[str, ...] = (),
        backend: str = "auto",
        size: tuple[int, int] | None = None,
        threads: int = 1,
    ) -> None:
        self.timeout_s = float(timeout_s)
        self.plugins = tuple(plugins)
        self.backend = backend
        # (height, width), or an int: the shorter side in pixels (aspect kept)
        self.size = None if size is None else int(size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.threads = int(threads)  # decoder threads in the child (1: one CPU per Ray task)
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "avs.decode.video_guard", *self.plugins],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for fh in (proc.stdin, proc.stdout):
            try:
                if fh is not None:
                    fh.close()
            except OSError:
                pass

    def read_frames(self, path: str | os.PathLike, times_s: Sequence[float] | np.ndarray) -> FrameBatch:
        path = str(path)
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        times = times_s if _is_rule(times_s) else np.asarray(times_s, dtype=np.float64).reshape(-1)
        deadline = time.monotonic() + self.timeout_s
        try:
            _write_frame(proc.stdin, (path, times, self.backend, self.size, self.threads))
            fd = proc.stdout.fileno()
            (n,) = _HEADER.unpack(_read_exact_deadline(fd, _HEADER.size, deadline))
            reply = pickle.loads(_read_exact_deadline(fd, n, deadline + 30.0))  # the reply has started
        except TimeoutError:
            self._kill()
            raise DecodeTimeout(f"video decoder did not finish {path} within {self.timeout_s:g} s (killed)") from None
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError, pickle.UnpicklingError, struct.error):
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._kill()
            raise DecoderCrashed(f"video decoder process died on {path} (exit code {code})") from None
        if reply[0] == "ok":
            return FrameBatch(reply[1], reply[2], reply[3])
        cls = _ERROR_CLASSES.get(reply[1])
        if cls is not None:
            raise cls(reply[2])
        exc = DecodeError(reply[2])
        exc.kind = reply[1]  # the child's kind, kept for the errors table
        raise exc

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                _write_frame(proc.stdin, None)
                proc.wait(timeout=2)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> GuardedFrameReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    _child_main(sys.argv[1:])
