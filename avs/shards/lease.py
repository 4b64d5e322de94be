"""One run per output folder: an exclusive lease on OUT, held by the run's driver.

    with OutputLease(storage, run_id):        # raises LeaseHeldError when another live run holds OUT
        ...                                    # a thread renews the heartbeat every ``heartbeat_s``

The lease is ``OUT/_lease.json``: {owner, host, pid, ray_job_id, run_id, acquired, heartbeat}. On a local
folder it is created with O_CREAT | O_EXCL, so of two runs started together exactly one gets it; on object
storage (no exclusive create) it is written, read back and compared, which catches all but a race within
one round trip. A lease is stale when its heartbeat is older than ``stale_s`` (its driver died or hangs),
or when it was taken on this host by a process that no longer exists; a stale lease is taken over, with
a message. The lease is removed when the run ends, however it ends.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from typing import Any

from avs.shards.storage import Storage

LEASE_FILE = "_lease.json"


class LeaseHeldError(RuntimeError):
    """Another run holds the output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ray_job_id() -> str | None:
    return os.environ.get("RAY_JOB_ID") or os.environ.get("RAY_JOB_SUBMISSION_ID") or None


def is_stale(lease: dict[str, Any], now: float, stale_s: float, host: str) -> str | None:
    """Why ``lease`` no longer holds (a message), or None when it is live."""
    age = now - float(lease.get("heartbeat", 0))
    if age > stale_s:
        return f"its last heartbeat was {age:.0f} s ago (> {stale_s:.0f} s)"
    if lease.get("host") == host and lease.get("pid") and not _pid_alive(int(lease["pid"])):
        return f"its process {lease['pid']} on {host} has exited"
    return None


class OutputLease:
    def __init__(self, storage: Storage, run_id: str, stale_s: float = 60.0, heartbeat_s: float = 10.0) -> None:
        self.storage = storage
        self.run_id = run_id
        self.stale_s = stale_s
        self.heartbeat_s = heartbeat_s
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken_over: dict[str, Any] | None = None
        self._acquired = time.time()

    def record(self) -> dict[str, Any]:
        now = time.time()
        try:
            owner = getpass.getuser()
        except Exception:
            owner = str(os.getuid())
        return {
            "owner": owner,
            "host": self.host,
            "pid": os.getpid(),
            "ray_job_id": _ray_job_id(),
            "run_id": self.run_id,
            "acquired": self._acquired,
            "heartbeat": now,
        }

    def _local_path(self) -> str | None:
        return self.storage.path(LEASE_FILE) if "://" not in self.storage.uri else None

    def _create(self, lease: dict[str, Any]) -> bool:
        """Create the lease file if there is none; True when this run created it."""
        data = (json.dumps(lease, indent=2) + "\n").encode()
        local = self._local_path()
        if local is not None:
            try:
                fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return True
        if self.storage.exists(LEASE_FILE):
            return False
        self.storage.write_bytes(LEASE_FILE, data)
        return self.storage.read_json(LEASE_FILE).get("run_id") == self.run_id

    def _read(self) -> dict[str, Any] | None:
        try:
            return self.storage.read_json(LEASE_FILE)
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):  # being written this instant (object storage) or damaged
            return {"heartbeat": 0, "run_id": "?"}

    def acquire(self) -> OutputLease:
        self.storage.makedirs()
        self._acquired = time.time()
        for _ in range(3):
            if self._create(self.record()):
                break
            held = self._read()
            if held is None:  # released between our two looks
                continue
            why = is_stale(held, time.time(), self.stale_s, self.host)
            if why is None:
                raise LeaseHeldError(
                    f"{self.storage.uri} is in use by run {held.get('run_id')} "
                    f"(owner {held.get('owner')}, host {held.get('host')}, pid {held.get('pid')}, "
                    f"ray job {held.get('ray_job_id')}); its heartbeat is "
                    f"{time.time() - float(held.get('heartbeat', 0)):.0f} s old. Wait for it to finish, or write "
                    f"to another --out folder. A lease with no heartbeat for {self.stale_s:.0f} s is taken over."
                )
            print(
                f"[avs extract] taking over the lease on {self.storage.uri} from run {held.get('run_id')} "
                f"(host {held.get('host')}, pid {held.get('pid')}): {why}",
                flush=True,
            )
            self.taken_over = held
            try:
                self.storage.fs.delete_file(self.storage.path(LEASE_FILE))
            except FileNotFoundError:
                pass
        else:
            raise LeaseHeldError(f"could not take the lease on {self.storage.uri}: other runs keep taking it")
        self._thread = threading.Thread(target=self._beat, name="avs-lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                held = self._read()
                if held is not None and held.get("run_id") == self.run_id:
                    self.storage.write_json(LEASE_FILE, self.record())
            except Exception:  # a missed heartbeat is retried at the next beat
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        held = self._read()
        if held is not None and held.get("run_id") == self.run_id:
            try:
                self.storage.fs.delete_file(self.storage.path(LEASE_FILE))
            except FileNotFoundError:
                pass

    def __enter__(self) -> OutputLease:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
