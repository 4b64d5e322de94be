"""Decode in a child process, so that a decoder that crashes (segfault, abort) or hangs on one file
costs that file only.

    with GuardedDecoder(timeout_s=60) as dec:
        audio, rate = dec.decode("clip.wav")   # raises DecoderCrashed / DecodeTimeout / a DecodeError

The child is started once and reused; after a crash or a time-out it is replaced on the next call.
``plugins`` are modules the child imports first (to register extra decoders).
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import traceback
from typing import Any

from avs.decode.errors import DecodeError, DecoderCrashed, DecodeTimeout


def _child_main(conn: Any, plugins: tuple[str, ...]) -> None:
    for name in plugins:
        importlib.import_module(name)
    from avs.decode.audio import read_audio
    from avs.decode.errors import error_kind

    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        path, backend = request
        try:
            audio, rate = read_audio(path, backend)
            conn.send(("ok", audio, rate))
        except Exception as exc:  # reported to the parent, which records it as an error row
            message = str(exc) or traceback.format_exc(limit=1)
            conn.send(("error", error_kind(exc), message))


class RemoteDecodeError(DecodeError):
    """A decode error raised in the child, re-raised in the parent with the child's kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_ERROR_CLASSES = {cls.kind: cls for cls in DecodeError.__subclasses__()}


class GuardedDecoder:
    def __init__(self, timeout_s: float = 120.0, plugins: tuple[str, ...] = (), backend: str = "auto") -> None:
        self.timeout_s = float(timeout_s)
        self.plugins = tuple(plugins)
        self.backend = backend
        self._ctx = mp.get_context("spawn")  # no fork: the parent may hold torch / Ray threads
        self._proc: Any = None
        self._conn: Any = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_child_main, args=(child, self.plugins), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def decode(self, path: str) -> tuple[Any, int]:
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            self._start()
        try:
            self._conn.send((path, self.backend))
            if not self._conn.poll(self.timeout_s):
                self._kill()
                raise DecodeTimeout(f"decoder did not finish {path} within {self.timeout_s:g} s (killed)")
            reply = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            raise DecoderCrashed(f"decoder process died on {path} (exit code {code})") from None
        if reply[0] == "ok":
            return reply[1], reply[2]
        known = _ERROR_CLASSES.get(reply[1])
        raise known(reply[2]) if known else RemoteDecodeError(reply[1], reply[2])

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(timeout=2)
            except (BrokenPipeError, OSError):
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
