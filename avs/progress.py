"""Progress lines for long work: done / total, rate, ETA; printed every few seconds to stderr (plain lines
rather than a redrawn bar, so they read well in ``ray job logs`` and CI logs too)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(
        self, total: int, what: str = "items", label: str = "avs", interval_s: float = 5.0, stream: TextIO | None = None
    ) -> None:
        self.total, self.what, self.label, self.interval_s = total, what, label, interval_s
        self.stream = stream or sys.stderr
        self.done = 0
        self.extra: dict[str, object] = {}
        self.start = time.perf_counter()
        self._last = self.start

    def update(self, n: int = 1, **extra: object) -> None:
        self.done += n
        self.extra.update(extra)
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            self.print()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = _fmt_seconds(left) if left == left else "?"
        extra = "".join(f", {k} {v}" for k, v in self.extra.items())
        return (
            f"[{self.label}] {self.done}/{self.total} {self.what} ({pct:.0f}%), {rate:.1f} {self.what}/s, "
            f"elapsed {_fmt_seconds(elapsed)}, ETA {eta}{extra}"
        )

    def print(self) -> None:
        print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        self.print()
