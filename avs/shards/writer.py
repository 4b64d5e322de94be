"""Rows of feature shards: key columns, feature columns, part names.

Each feature batch holds whole clips (the decode stage emits every segment of a clip in one block); the
feature worker turns them into one Arrow table per feature set (``clip_tables``) and hands them to a part
writer (``avs/shards/part_writer.py``), which gathers many clips into each ``part-NNNNNNNN.parquet``. The
driver never touches feature bytes; it only counts what the workers report.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from avs.data.manifest import CARRIED_COLUMNS

KEY_TYPES = {
    "clip_id": pa.string(),
    "segment": pa.int32(),
    "start_s": pa.float64(),
    "end_s": pa.float64(),
    "frame_index": pa.int32(),  # video rows: index of the frame in the stream
    "timestamp_s": pa.float64(),  # video rows: presentation time of the frame (seconds)
}


@dataclasses.dataclass(frozen=True)
class FeatureSink:
    name: str  # feature set: folder OUT/<name>/ and column <name>
    shape: tuple[int, ...]  # one row's feature shape
    metadata: dict[bytes, bytes]  # Parquet schema metadata (config, hash, shape, version)
    dtype: str = "float32"  # "float32": fixed_size_list<float32>; "binary": one encoded value per row (JPEG)
    column: str | None = None  # column name; None = the feature set's name


PART_DIGITS = 8  # part-00000000.parquet ... : names sort in part order up to 10**8 parts


def part_name(part: int) -> str:
    return f"part-{part:0{PART_DIGITS}d}.parquet"


def feature_column(values: np.ndarray, shape: tuple[int, ...]) -> pa.FixedSizeListArray:
    """(rows, *shape) float32 -> fixed_size_list<float32>[prod(shape)] without copying the values."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), int(np.prod(shape)))


def clip_tables(
    sinks: tuple[FeatureSink, ...],
    keys: dict[str, np.ndarray],
    features: dict[str, np.ndarray | list[bytes]],
    carried: pa.Table,
) -> dict[str, pa.Table]:
    """Rows (``keys``: clip_id, segment, start_s, end_s, ...; ``features``: name -> (rows, *shape)) plus
    the manifest columns ``carried`` (one row per feature row) -> one table per feature set, with the
    feature set's schema metadata; what a part writer appends."""
    base = {k: pa.array(v.astype(str) if k == "clip_id" else v, KEY_TYPES[k]) for k, v in keys.items()}
    for col in CARRIED_COLUMNS:
        base[col] = carried.column(col)
    out = {}
    for sink in sinks:
        if sink.dtype == "binary":
            values = pa.array(features[sink.name], pa.binary())
        else:
            values = feature_column(features[sink.name], sink.shape)
        out[sink.name] = pa.table({**base, sink.column or sink.name: values}).replace_schema_metadata(sink.metadata)
    return out
