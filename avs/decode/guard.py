"""Audio decoding in a child process (``avs.decode.child``): a decoder that crashes or hangs on one file
costs that file only.

    with GuardedDecoder(timeout_s=60) as dec:
        audio, rate = dec.decode("clip.wav")   # raises DecoderCrashed / DecodeTimeout / a DecodeError

Decoded samples come back through a file in shared memory (/dev/shm) rather than the pipe: one copy each
side instead of pickling megabytes. ``plugins`` are modules the child imports first (to register decoders).
"""

from __future__ import annotations

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


def _handle(request: tuple[str, str]) -> tuple:
    from avs.decode.audio import read_audio

    path, backend = request
    audio, rate = read_audio(path, backend)  # (channels, samples) float32
    return _to_shared(audio), rate


class GuardedDecoder(ChildProcess):
    what = "audio decoder"

    def __init__(self, timeout_s: float = 120.0, plugins: tuple[str, ...] = (), backend: str = "auto") -> None:
        super().__init__("avs.decode.guard", timeout_s, plugins)
        self.backend = backend

    def decode(self, path: str) -> tuple[np.ndarray, int]:
        """(channels, samples) float32 and the sample rate of ``path``."""
        ref, rate = self.call((path, self.backend), path)
        return _from_shared(ref), rate

    def __enter__(self) -> GuardedDecoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


if __name__ == "__main__":
    serve(_handle, sys.argv[1:])
