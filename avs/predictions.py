"""The predictions format every stage after training shares (predict writes it; ensemble and evaluate
read it), kept here so that none of those packages imports another.

A predictions table has key columns (``clip_id``, ``segment``, ...) and one float column per class; the
class order is in the schema metadata ``avs.classes`` (older files: every float column that is not a key), the
kind of scores in ``avs.kind`` (older files: ``clip_probs``):

    clip_probs     one row per clip / segment / frame, class probabilities that sum to 1 (softmax heads)
    clip_scores    one row per clip / segment, independent class scores in [0, 1] (sigmoid, multi-label)
    frame_scores   one row per output frame of a clip, class scores in [0, 1]; ``avs.hop_s``: the frame hop (s)
"""

from __future__ import annotations

import json

import pyarrow as pa

from avs.shards.storage import Storage

PREDICTIONS_FILE = "predictions.parquet"
KINDS = ("clip_probs", "clip_scores", "frame_scores")
# Columns of a predictions table that are never classes (keys and carried labels).
NON_CLASS_COLUMNS = frozenset({"clip_id", "segment", "start_s", "end_s", "scene_label", "label", "filename", "fold"})


def class_columns(table: pa.Table) -> tuple[str, ...]:
    """The class columns of a table without ``avs.classes`` metadata: floats that are not keys."""
    return tuple(f.name for f in table.schema if f.name not in NON_CLASS_COLUMNS and pa.types.is_floating(f.type))


def read_predictions(path: str) -> tuple[pa.Table, tuple[str, ...]]:
    """A predictions folder or file -> ``(table, classes)``."""
    storage = Storage(path)
    if storage.exists(PREDICTIONS_FILE):
        table = storage.read_table(PREDICTIONS_FILE)
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(storage.root, filesystem=storage.fs)
    meta = table.schema.metadata or {}
    if b"avs.classes" in meta:
        return table, tuple(json.loads(meta[b"avs.classes"]))
    return table, class_columns(table)


def prediction_kind(table: pa.Table) -> str:
    """The kind of scores in a predictions table (``avs.kind``; files without it hold ``clip_probs``)."""
    kind = (table.schema.metadata or {}).get(b"avs.kind", b"clip_probs").decode()
    if kind not in KINDS:
        raise ValueError(f"unknown prediction kind {kind!r} in the avs.kind metadata; known: {list(KINDS)}")
    return kind
