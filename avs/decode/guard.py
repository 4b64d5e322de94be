"""Decode in a child process, so that a decoder that crashes (segfault, abort) or hangs on one file
costs that file only.

    with GuardedDecoder(timeout_s=60) as dec:
        audio, rate = dec.decode("clip.wav")   # raises DecoderCrashed / DecodeTimeout / a DecodeError

The child (``python -m avs.decode.guard``) is started once and reused; after a crash or a time-out it is
replaced on the next call. Requests and replies are length-prefixed pickles over its stdin / stdout, so
nothing depends on the parent's ``__main__`` (Ray workers, notebooks, scripts all work).
``plugins`` are modules the child imports first (to register extra decoders).
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
from typing import Any, BinaryIO

import numpy as np

from avs.decode.errors import DecodeError, DecoderCrashed, DecodeTimeout

_HEADER = struct.Struct("<Q")  # payload length in bytes


def _write_frame(fh: BinaryIO, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=5)
    fh.write(_HEADER.pack(len(payload)))
    fh.write(payload)
    fh.flush()


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = fh.read(left)
        if not chunk:
            raise EOFError("decoder process closed its output")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(fh: BinaryIO) -> Any:
    (n,) = _HEADER.unpack(_read_exact(fh, _HEADER.size))
    return pickle.loads(_read_exact(fh, n))


def _shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _to_shared(audio: np.ndarray) -> tuple[str, tuple[int, ...], str]:
    """Hand a decoded array to the parent through a file in shared memory (one copy each side, instead
    of pickling megabytes through the pipe)."""
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


def _child_main(plugins: list[str]) -> None:
    """The child's loop: read (path, backend), reply ("ok", audio, rate) or ("error", kind, message)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from decoders must not corrupt the reply stream
    for name in plugins:
        importlib.import_module(name)
    from avs.decode.audio import read_audio
    from avs.decode.errors import error_kind

    while True:
        try:
            request = _read_frame(stdin)
        except EOFError:
            return
        if request is None:
            return
        path, backend = request
        try:
            audio, rate = read_audio(path, backend)
            reply: tuple = ("ok", _to_shared(audio), rate)
        except Exception as exc:  # reported to the parent, which records it as an error row
            reply = ("error", error_kind(exc), str(exc) or repr(exc))
        _write_frame(stdout, reply)


class RemoteDecodeError(DecodeError):
    """A decode error raised in the child whose kind the parent does not know as a class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_ERROR_CLASSES = {cls.kind: cls for cls in DecodeError.__subclasses__()}


class GuardedDecoder:
    def __init__(self, timeout_s: float = 120.0, plugins: tuple[str, ...] = (), backend: str = "auto") -> None:
        self.timeout_s = float(timeout_s)
        self.plugins = tuple(plugins)
        self.backend = backend
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "avs.decode.guard", *self.plugins],
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
        proc.wait(timeout=10)
        for fh in (proc.stdin, proc.stdout):
            if fh is not None:
                fh.close()

    def decode(self, path: str) -> tuple[Any, int]:
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        proc = self._proc
        try:
            _write_frame(proc.stdin, (path, self.backend))
            ready, _, _ = select.select([proc.stdout], [], [], self.timeout_s)
            if not ready:
                self._kill()
                raise DecodeTimeout(f"decoder did not finish {path} within {self.timeout_s:g} s (killed)")
            reply = _read_frame(proc.stdout)
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError, pickle.UnpicklingError, struct.error):
            code = proc.poll() if proc.poll() is not None else proc.wait(timeout=5) if proc else None
            self._kill()
            raise DecoderCrashed(f"decoder process died on {path} (exit code {code})") from None
        if reply[0] == "ok":
            return _from_shared(reply[1]), reply[2]
        known = _ERROR_CLASSES.get(reply[1])
        raise known(reply[2]) if known else RemoteDecodeError(reply[1], reply[2])

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                _write_frame(proc.stdin, None)
                proc.wait(timeout=2)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> GuardedDecoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:
            pass


if __name__ == "__main__":
    _child_main(sys.argv[1:])
