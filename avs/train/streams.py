"""Named input streams with their own batch sizes, combined into one batch per training step.

    specs = (StreamSpec("strong", 6), StreamSpec("weak", 6), StreamSpec("unlabeled", 12, lead=True))
    sources = {"strong": lambda bs: strong_ds.iter_batches(batch_size=bs, drop_last=True), ...}
    for parts in mixed_batches(sources, specs):          # one step: {"strong": batch, "weak": ..., ...}
        batch, rows = combine(parts, keys=("x",))         # x: (6 + 6 + 12, ...), rows["weak"] = slice(6, 12)

Ray Data has no sampler, so a batch of paper 003's 6 strong + 6 weak + 12 unlabeled clips (DCASE 2020
baseline) comes from three streams. An epoch lasts as long as the *lead* stream (the largest set, by
default the first stream marked ``lead``, else the first); the others start again from the beginning
whenever they run out: a fresh iteration of their source, never a cache of past batches (which is what
``itertools.cycle`` would keep, i.e. the whole dataset in memory). With ``drop_last`` batches in the
sources, every worker takes the same number of steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

Batch = Mapping[str, Any]
Source = Callable[[int], Iterable[Batch]]  # batch_size -> an iterable of batches (a fresh pass per call)


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    name: str
    batch_size: int  # rows this stream puts in each step's batch
    lead: bool = False  # the epoch ends when this stream runs out (one stream at most)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"stream {self.name!r}: batch_size must be >= 1")


def _lead(specs: Sequence[StreamSpec]) -> str:
    leads = [s.name for s in specs if s.lead]
    if len(leads) > 1:
        raise ValueError(f"only one stream can lead an epoch, got {leads}")
    return leads[0] if leads else specs[0].name


def mixed_batches(
    sources: Mapping[str, Source], specs: Sequence[StreamSpec], steps: int | None = None
) -> Iterator[dict[str, Batch]]:
    """One dict {stream name: batch} per step, until the lead stream runs out (or after ``steps``)."""
    if not specs:
        raise ValueError("mixed_batches needs at least one stream")
    missing = [s.name for s in specs if s.name not in sources]
    if missing:
        raise ValueError(f"no source for stream(s) {missing}")
    lead = _lead(specs)
    iters = {s.name: iter(sources[s.name](s.batch_size)) for s in specs}
    try:
        step = 0
        while steps is None or step < steps:
            parts: dict[str, Batch] = {}
            for s in specs:
                try:
                    parts[s.name] = next(iters[s.name])
                except StopIteration:
                    if s.name == lead and steps is None:
                        return
                    iters[s.name] = iter(sources[s.name](s.batch_size))  # start this stream again
                    try:
                        parts[s.name] = next(iters[s.name])
                    except StopIteration:
                        raise ValueError(
                            f"stream {s.name!r} has no batch of {s.batch_size} rows (too few rows, or drop_last)"
                        ) from None
            yield parts
            step += 1
    finally:  # streams left mid-way (the lead ended first) release their reads now
        for it in iters.values():
            close = getattr(it, "close", None)
            if close is not None:
                close()


def combine(parts: Mapping[str, Batch], keys: Sequence[str]) -> tuple[dict[str, Any], dict[str, slice]]:
    """Concatenate the ``keys`` of each stream's batch along the first axis, in stream order; -> (batch,
    {stream name: its rows}) so that a task can pick the strong rows for one loss and all rows for another.
    Works on numpy arrays and torch tensors alike."""
    out: dict[str, Any] = {}
    rows: dict[str, slice] = {}
    start = 0
    for name, batch in parts.items():
        n = len(batch[keys[0]])
        rows[name] = slice(start, start + n)
        start += n
    for key in keys:
        values = [parts[name][key] for name in parts]
        first = values[0]
        if hasattr(first, "new_tensor"):  # torch
            import torch

            out[key] = torch.cat(list(values))
        else:
            out[key] = np.concatenate([np.asarray(v) for v in values])
    return out, rows
