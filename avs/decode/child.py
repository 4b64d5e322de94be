"""A decoder child process: decode in ``python -m MODULE``, so that a decoder that crashes (segfault,
abort: decord does on some corrupt files) or hangs costs one file only.

Parent side, ``ChildProcess.call(request)``: send a request, wait at most ``timeout_s`` for the reply; a
child that died raises ``DecoderCrashed``, one that is late is killed and raises ``DecodeTimeout``; the
next call starts a fresh child. A new child first says it is ready (its imports done, within
``STARTUP_TIMEOUT_S``): starting one is not counted in a file's ``timeout_s``, and a child that cannot start
raises ``InfrastructureError("decoder_unavailable")``, the machine's failure, never a file's error row.
Child side, ``serve(handle)``: answer requests until stdin closes.
Messages are length-prefixed pickles over the child's stdin / stdout, so nothing depends on the parent's
``__main__`` (Ray workers, notebooks and scripts all work). A handler's exception travels back as
("error", kind, message) and is raised in the parent as the same ``DecodeError`` class.
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
from collections.abc import Callable
from typing import Any, BinaryIO

from avs.decode.errors import DecodeError, DecoderCrashed, DecodeTimeout, InfrastructureError, error_kind

_HEADER = struct.Struct("<Q")  # payload length in bytes
READY = ("ready",)  # the child's first message, once its imports are done
# Seconds a new child may take to import its modules (Python, numpy, the decoder libraries, plugins) before its
# first reply: not part of any file's ``timeout_s``, or the file after a crash would time out on a busy machine.
STARTUP_TIMEOUT_S = 120.0
_BROKEN = (EOFError, BrokenPipeError, ConnectionResetError, OSError, pickle.UnpicklingError, struct.error)


def _write_message(fh: BinaryIO, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=5)
    fh.write(_HEADER.pack(len(payload)) + payload)
    fh.flush()


def _read_blocking(fh: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = fh.read(left)
        if not chunk:
            raise EOFError("closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_until(fd: int, n: int, deadline: float) -> bytes:
    """``n`` bytes from ``fd``, or TimeoutError at ``deadline`` (time.monotonic), or EOFError."""
    chunks, left = [], n
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("child closed its output")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _error_classes() -> dict[str, type[DecodeError]]:
    out: dict[str, type[DecodeError]] = {}
    todo = [DecodeError]
    while todo:
        cls = todo.pop()
        out.setdefault(cls.kind, cls)
        todo.extend(cls.__subclasses__())
    return out


def raise_remote(kind: str, message: str) -> None:
    """Raise the child's error in the parent: its own class when avs knows it, else a DecodeError of that kind."""
    cls = _error_classes().get(kind)
    if cls is not None:
        raise cls(message)
    exc = DecodeError(message)
    exc.kind = kind
    raise exc


def serve(handle: Callable[[Any], tuple], plugins: list[str], preload: tuple[str, ...] = ()) -> None:
    """Child loop: ``handle(request)`` -> reply tuple; exceptions become ("error", kind, message). ``preload``:
    the decoder libraries ``handle`` imports lazily, imported before READY (an optional one may be missing)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from decoders must not corrupt the reply stream
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional decoder (decord) not installed: its own calls say so
            pass
    for name in plugins:
        importlib.import_module(name)
    _write_message(stdout, READY)  # imports done: the parent's per-file deadline starts after this
    while True:
        try:
            (n,) = _HEADER.unpack(_read_blocking(stdin, _HEADER.size))
            request = pickle.loads(_read_blocking(stdin, n))
        except EOFError:
            return
        if request is None:
            return
        try:
            reply = ("ok", *handle(request))
        except Exception as exc:  # reported to the parent, which records it as an error row
            reply = ("error", error_kind(exc), str(exc) or repr(exc))
        _write_message(stdout, reply)


class ChildProcess:
    """The parent's handle on one child ``python -m module *plugins`` (started on first use)."""

    what = "decoder"

    def __init__(self, module: str, timeout_s: float = 120.0, plugins: tuple[str, ...] = ()) -> None:
        self.module = module
        self.timeout_s = float(timeout_s)
        self.plugins = tuple(plugins)
        self._proc: subprocess.Popen | None = None
        self._ready = False  # the running child's READY message has been read

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.plugins],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        self._ready = False
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

    def start(self) -> None:
        """Start the child now (it is otherwise started by the first ``call``)."""
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()

    def call(self, request: Any, path: str) -> tuple:
        """Send ``request`` (about file ``path``, for messages) and return the reply's payload tuple."""
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        if not self._ready:
            self._wait_ready(proc, fd)
        deadline = time.monotonic() + self.timeout_s
        try:
            _write_message(proc.stdin, request)
            (n,) = _HEADER.unpack(_read_until(fd, _HEADER.size, deadline))
            reply = pickle.loads(_read_until(fd, n, deadline + 30.0))  # the reply has started: let it finish
        except TimeoutError:
            self._kill()
            raise DecodeTimeout(f"{self.what} did not finish {path} within {self.timeout_s:g} s (killed)") from None
        except _BROKEN:
            code = self._reap(proc)
            raise DecoderCrashed(f"{self.what} process died on {path} (exit code {code})") from None
        if reply[0] != "ok":
            raise_remote(reply[1], reply[2])
        return reply[1:]

    def _reap(self, proc: subprocess.Popen) -> int | None:
        """A child whose pipe broke: its exit code (None if it has not exited within 5 s), then it is gone."""
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self._kill()
        return code

    def _wait_ready(self, proc: subprocess.Popen, fd: int) -> None:
        """Read the new child's READY message (its imports may take seconds on a loaded machine)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        try:
            (n,) = _HEADER.unpack(_read_until(fd, _HEADER.size, deadline))
            first = pickle.loads(_read_until(fd, n, deadline))
        except TimeoutError:
            self._kill()
            raise InfrastructureError(
                "decoder_unavailable",
                f"the {self.what} process did not start within {STARTUP_TIMEOUT_S:g} s (machine overloaded?)",
            ) from None
        except _BROKEN:
            code = self._reap(proc)
            raise InfrastructureError(
                "decoder_unavailable",
                f"the {self.what} process died while starting (exit code {code}; a decoder plugin that cannot be "
                f"imported on this worker? plugins: {list(self.plugins)})",
            ) from None
        if first != READY:
            self._kill()
            raise InfrastructureError("decoder_unavailable", f"the {self.what} process sent {first!r} first")
        self._ready = True

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                _write_message(proc.stdin, None)
                proc.wait(timeout=2)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:
            pass
