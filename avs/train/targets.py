"""Target encoders: what a clip's labels become for a loss. Pure numpy functions, one per kind of label.

    class_index([["park"], ["bus"]], classes)                 -> (2,) int64, -1 where unlabelled
    multi_hot([["dog", "speech"], []], classes)              -> (2, n_classes) float32
    soft_scores([["flood", "flood", "smoke"]], classes)      -> (1, n_classes) float32, max-normalised votes
    strong_frames(events, classes, n_frames, frame_hop_s)    -> (n_frames, n_classes) float32
    weak_from_events(events, classes)                        -> (n_classes,) float32
    cluster_id(assignments_cluster, k)                       -> (rows,) int64

Each raises ``ValueError`` on a label outside ``classes`` unless told to ignore it (``unknown="ignore"``), so
a typo in a dataset never silently becomes "no event".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

Unknown = Literal["error", "ignore"]


def _index(classes: Sequence[str]) -> dict[str, int]:
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise ValueError(f"class names must be unique, got {list(classes)}")
    return index


def _lookup(index: Mapping[str, int], label: str, unknown: Unknown) -> int | None:
    i = index.get(label)
    if i is None and unknown == "error":
        raise ValueError(f"label {label!r} is not one of the classes {list(index)}")
    return i


def class_index(
    labels: Sequence[Sequence[str] | None], classes: Sequence[str], unknown: Unknown = "error"
) -> np.ndarray:
    """Single-label targets: each row's first label -> its class index; rows with no label -> -1
    (paper 000: one acoustic scene per clip)."""
    index = _index(classes)
    out = np.full(len(labels), -1, dtype=np.int64)
    for r, row in enumerate(labels):
        if row:
            i = _lookup(index, row[0], unknown)
            out[r] = -1 if i is None else i
    return out


def _label_counts(labels: Sequence[Sequence[str] | None], classes: Sequence[str], unknown: Unknown) -> np.ndarray:
    """(rows, n_classes) float32: how often each class appears in each row's labels."""
    index = _index(classes)
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for r, row in enumerate(labels):
        for label in row or ():
            i = _lookup(index, label, unknown)
            if i is not None:
                out[r, i] += 1.0
    return out


def multi_hot(labels: Sequence[Sequence[str] | None], classes: Sequence[str], unknown: Unknown = "error") -> np.ndarray:
    """Multi-label targets: (rows, n_classes) with 1 for every label a row has."""
    return (_label_counts(labels, classes, unknown) > 0).astype(np.float32)


def soft_scores(
    answers: Sequence[Sequence[str] | None], classes: Sequence[str], unknown: Unknown = "error"
) -> np.ndarray:
    """Soft multi-label targets from several annotators (paper 002 §2.1): count each class over all the
    answers given for an image, then divide by the largest count. ``answers[r]`` lists every label every
    annotator gave image r (Fig. 1: 4 x flood, 1 x smoke, 1 x none -> flood 1.0, smoke 0.25, none 0.25)."""
    counts = _label_counts(answers, classes, unknown)
    top = counts.max(axis=1, keepdims=True)
    return np.divide(counts, top, out=np.zeros_like(counts), where=top > 0)


def _event(e: Mapping[str, Any] | Sequence[Any]) -> tuple[float, float, str]:
    if isinstance(e, Mapping):
        return float(e["onset_s"]), float(e["offset_s"]), str(e["label"])
    onset, offset, label = e
    return float(onset), float(offset), str(label)


def strong_frames(
    events: Iterable[Mapping[str, Any] | Sequence[Any]],
    classes: Sequence[str],
    n_frames: int,
    frame_hop_s: float,
    unknown: Unknown = "error",
) -> np.ndarray:
    """Frame targets (n_frames, n_classes) at the model's output hop from strong labels (onset_s,
    offset_s, label). Frame i covers [i * hop, (i + 1) * hop); a class is on in every frame its event
    touches: frames floor(onset / hop) .. ceil(offset / hop) - 1, clipped to the clip, as the DCASE
    SED baselines encode them (DESED_task ``Encoder.encode_strong_df``). For paper 003's CRNN:
    hop = 255 samples x 4 (time pooling) / 16 kHz = 63.75 ms, 157 frames per 10 s."""
    if frame_hop_s <= 0 or n_frames < 0:
        raise ValueError("strong_frames needs frame_hop_s > 0 and n_frames >= 0")
    index = _index(classes)
    out = np.zeros((n_frames, len(classes)), dtype=np.float32)
    for e in events:
        onset, offset, label = _event(e)
        if offset < onset:
            raise ValueError(f"event {label!r} ends ({offset} s) before it starts ({onset} s)")
        i = _lookup(index, label, unknown)
        if i is None:
            continue
        first = min(n_frames, max(0, math.floor(onset / frame_hop_s)))
        stop = min(n_frames, max(0, math.ceil(offset / frame_hop_s)))
        out[first:stop, i] = 1.0
    return out


def weak_from_events(
    events: Iterable[Mapping[str, Any] | Sequence[Any]], classes: Sequence[str], unknown: Unknown = "error"
) -> np.ndarray:
    """Clip targets (n_classes,) from strong labels: 1 for every class with at least one event (how a
    strongly labelled clip also feeds the weak, clip-level loss)."""
    return multi_hot([[_event(e)[2] for e in events]], classes, unknown)[0]


def cluster_id(clusters: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Pseudo-label targets from ``avs cluster`` assignments (paper 001: a frame's class is its sound's
    cluster); -1 (no assignment) stays -1; anything outside [0, k) is a ValueError."""
    out = np.asarray(clusters, dtype=np.int64).reshape(-1)
    bad = (out < -1) | (out >= k)
    if bad.any():
        raise ValueError(f"cluster ids must lie in [0, {k}) (or -1 for none), got {sorted(set(out[bad].tolist()))}")
    return out
