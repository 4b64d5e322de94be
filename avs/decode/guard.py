"""Audio decoding in a child process (``avs.decode.child``): a decoder that crashes or hangs on one file
costs that file only.

    with GuardedDecoder(timeout_s=60) as dec:
        audio, rate = dec.decode("clip.wav")   # raises DecoderCrashed / DecodeTimeout / a DecodeError

Decoded samples come back through shared memory (/dev/shm) rather than the pipe: the parent keeps one
buffer file for its child, mapped on both sides and grown when a clip does not fit, so a clip costs one copy
in the child and one in the parent, with no file made or removed per clip. ``channels`` ("mono" / "stereo")
converts channels in the child, so a stereo file crosses as one channel. ``plugins`` are modules the child
imports first (to register decoders).
"""

from __future__ import annotations

import mmap
import os
import sys
import tempfile
from typing import Any

import numpy as np

from avs.decode.child import ChildProcess, serve


def _shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _to_shared(audio: np.ndarray) -> tuple[str, tuple[int, ...], str]:
    fd, name = tempfile.mkstemp(prefix="avs-decode-", suffix=".raw", dir=_shm_dir())
    with os.fdopen(fd, "wb") as fh:
        fh.write(memoryview(np.ascontiguousarray(audio)).cast("B"))
    return name, audio.shape, audio.dtype.str


def _from_shared(ref: tuple[str, tuple[int, ...], str]) -> np.ndarray:
    name, shape, dtype = ref
    try:
        return np.fromfile(name, dtype=np.dtype(dtype)).reshape(shape)
    finally:
        os.unlink(name)


class SharedBuffer:
    """A file in /dev/shm mapped into memory; ``size`` bytes (0 = no file yet)."""

    def __init__(self, name: str | None = None, size: int = 0) -> None:
        self.name, self.size, self.map = name, size, None
        if name is not None and size:
            with open(name, "r+b") as fh:
                self.map = mmap.mmap(fh.fileno(), size)

    @classmethod
    def create(cls, size: int) -> SharedBuffer:
        fd, name = tempfile.mkstemp(prefix="avs-decode-buf-", suffix=".raw", dir=_shm_dir())
        os.ftruncate(fd, size)
        os.close(fd)
        return cls(name, size)

    def unlink(self) -> None:
        """Remove the name (the mapping stays); a later child that cannot open it falls back to a file."""
        if self.name and not getattr(self, "_unlinked", False):
            try:
                os.unlink(self.name)
            except FileNotFoundError:
                pass
            self._unlinked = True

    def close(self, unlink: bool = False) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if unlink:
            self.unlink()


_child_buffer = SharedBuffer()  # the child's view of its parent's buffer


def _handle(request: tuple) -> tuple:
    """Child: decode -> (("buffer", shape, dtype) or a temp-file reference, rate)."""
    global _child_buffer
    from avs.decode.audio import read_audio
    from avs.decode.segments import to_channels

    path, backend, channels, buf_name, buf_size = request
    audio, rate = read_audio(path, backend)  # (channels, samples) float32
    if channels:
        audio = np.ascontiguousarray(to_channels(audio, channels))
    if buf_name and audio.nbytes <= buf_size:
        if (_child_buffer.name, _child_buffer.size) != (buf_name, buf_size):
            _child_buffer.close()
            try:
                _child_buffer = SharedBuffer(buf_name, buf_size)
            except FileNotFoundError:  # a buffer made for an earlier child (already unlinked): use a file
                _child_buffer = SharedBuffer()
                return _to_shared(audio), rate
        view = np.frombuffer(_child_buffer.map, dtype=audio.dtype, count=audio.size)
        view[:] = audio.reshape(-1)
        return ("buffer", audio.shape, audio.dtype.str), rate
    return _to_shared(audio), rate


class GuardedDecoder(ChildProcess):
    what = "audio decoder"

    def __init__(
        self,
        timeout_s: float = 120.0,
        plugins: tuple[str, ...] = (),
        backend: str = "auto",
        channels: str | None = None,
    ) -> None:
        super().__init__("avs.decode.guard", timeout_s, plugins)
        self.backend = backend
        self.channels = channels  # None: as decoded; "mono" / "stereo": converted in the child
        self.buffer = SharedBuffer()

    def decode(self, path: str) -> tuple[np.ndarray, int]:
        """(channels, samples) float32 and the sample rate of ``path``."""
        ref, rate = self.call((path, self.backend, self.channels, self.buffer.name, self.buffer.size), path)
        if ref[0] == "buffer":
            _, shape, dtype = ref
            count = int(np.prod(shape))
            audio = np.frombuffer(self.buffer.map, dtype=np.dtype(dtype), count=count).reshape(shape).copy()
            self.buffer.unlink()  # both sides have it mapped: nothing is left in /dev/shm if we are killed
            return audio, rate
        audio = _from_shared(ref)
        # A clip that did not fit, or a new child that could not map the old buffer: a new buffer next time.
        self.buffer.close(unlink=True)
        self.buffer = SharedBuffer.create(max(audio.nbytes * 5 // 4, self.buffer.size, 1 << 20))
        return audio, rate

    def close(self) -> None:
        super().close()
        self.buffer.close(unlink=True)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> GuardedDecoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


if __name__ == "__main__":
    serve(_handle, sys.argv[1:], preload=("avs.decode.audio", "avs.decode.segments", "soundfile", "av"))
