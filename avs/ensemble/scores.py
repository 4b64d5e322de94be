"""Score tables: class confidences per clip (or per segment / frame), in numpy and pyarrow.

A ``Scores`` holds ``clip_ids`` ``(n,)``, ``probs`` ``(n, n_classes)`` float64 (softmax confidences) and the
class names. As a pyarrow table (Parquet / CSV, the DCASE output layout) it is one row per clip or segment:
a ``clip_id`` string column, optionally ``segment``, then one float column per class named after the class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from avs.predictions import class_columns

ID_COLUMN = "clip_id"


@dataclasses.dataclass(frozen=True, eq=False)
class Scores:
    clip_ids: np.ndarray  # (n,) clip (file) ids; repeated for per-segment rows
    probs: np.ndarray  # (n, n_classes) confidences
    classes: tuple[str, ...]  # column order of probs

    def __post_init__(self) -> None:
        ids = np.asarray(self.clip_ids).astype(str)
        probs = np.asarray(self.probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != ids.shape[0] or probs.shape[1] != len(self.classes):
            raise ValueError(
                f"Scores: probs {probs.shape} must be (len(clip_ids)={ids.shape[0]}, len(classes)={len(self.classes)})"
            )
        object.__setattr__(self, "clip_ids", ids)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    @property
    def predicted(self) -> np.ndarray:
        """(n,) predicted class names (arg max)."""
        return np.asarray(self.classes)[self.probs.argmax(axis=1)]

    def class_index(self, names: Sequence[str]) -> np.ndarray:
        missing = [c for c in names if c not in self.classes]
        if missing:
            raise KeyError(f"unknown classes {missing}; classes are {list(self.classes)}")
        return np.asarray([self.classes.index(c) for c in names], dtype=np.int64)

    def reorder(self, clip_ids: Sequence[str]) -> Scores:
        """Rows in the order of ``clip_ids`` (one row per clip id; the clip ids must be unique here)."""
        index = {cid: i for i, cid in enumerate(self.clip_ids)}
        if len(index) != len(self.clip_ids):
            raise ValueError("reorder needs one row per clip; average segments first (average_segments)")
        missing = [c for c in clip_ids if c not in index]
        if missing:
            raise KeyError(f"{len(missing)} clip ids not in these scores, e.g. {missing[:3]}")
        rows = np.asarray([index[c] for c in clip_ids], dtype=np.int64)
        return Scores(self.clip_ids[rows], self.probs[rows], self.classes)

    def with_probs(self, probs: np.ndarray) -> Scores:
        return Scores(self.clip_ids, probs, self.classes)

    def to_arrow(self, with_prediction: bool = True) -> pa.Table:
        cols: dict[str, pa.Array] = {ID_COLUMN: pa.array(self.clip_ids, pa.string())}
        if with_prediction:
            cols["scene_label"] = pa.array(self.predicted, pa.string())
        for j, name in enumerate(self.classes):
            cols[name] = pa.array(self.probs[:, j], pa.float64())
        return pa.table(cols)

    @classmethod
    def from_arrow(cls, table: pa.Table, classes: Sequence[str] | None = None, id_column: str = ID_COLUMN) -> Scores:
        """Read per-class float columns (``classes``, default: every floating column that is not metadata)."""
        if id_column not in table.column_names:
            raise KeyError(f"score table has no {id_column!r} column; columns: {table.column_names}")
        if classes is None:
            classes = list(class_columns(table))
        if not classes:
            raise ValueError("score table has no class columns")
        probs = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in classes], axis=1)
        return cls(np.asarray(table.column(id_column).to_pylist(), dtype=str), probs, tuple(classes))


def as_scores(x: Scores | pa.Table, classes: Sequence[str] | None = None) -> Scores:
    return x if isinstance(x, Scores) else Scores.from_arrow(x, classes)
