"""The predictions format every stage after training shares (predict writes it; ensemble and evaluate
read it), kept here so that none of those packages imports another.

A predictions table has key columns (``clip_id``, ``segment``, ...) and one float column per class; the
class order is in the schema metadata ``avs.classes`` (older files: every float column that is not a key).
"""

from __future__ import annotations

import json

import pyarrow as pa

from avs.shards.storage import Storage

PREDICTIONS_FILE = "predictions.parquet"
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
