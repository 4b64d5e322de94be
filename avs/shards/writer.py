"""Worker-side Parquet part writer.

Each feature batch holds whole clips (the decode stage emits every segment of a clip in one block), so
the feature worker that computed them writes them itself: one ``part-NNNNN.parquet`` per feature set,
all with the same rows, each written to a temporary name and renamed. The driver never touches feature
bytes; it only counts what the workers report. Part numbers are fixed by the input block, so a retried
task rewrites the same part instead of adding a second copy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from avs.data.manifest import CARRIED_COLUMNS
from avs.shards.storage import Storage

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


def part_name(part: int) -> str:
    return f"part-{part:05d}.parquet"


def feature_column(values: np.ndarray, shape: tuple[int, ...]) -> pa.FixedSizeListArray:
    """(rows, *shape) float32 -> fixed_size_list<float32>[prod(shape)] without copying the values."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), int(np.prod(shape)))


def write_part(
    storage: Storage,
    part: int,
    sinks: tuple[FeatureSink, ...],
    keys: dict[str, np.ndarray],
    features: dict[str, np.ndarray | list[bytes]],
    carried: pa.Table,
    compression: str = "lz4",
) -> str:
    """Write rows (``keys``: clip_id, segment, start_s, end_s; ``features``: name -> (rows, *shape)) plus
    the manifest columns ``carried`` (one row per feature row) as part ``part`` of every feature set."""
    base = {k: pa.array(v.astype(str) if k == "clip_id" else v, KEY_TYPES[k]) for k, v in keys.items()}
    for col in CARRIED_COLUMNS:
        base[col] = carried.column(col)
    name = part_name(part)
    for sink in sinks:
        column = sink.column or sink.name
        if sink.dtype == "binary":
            values = pa.array(features[sink.name], pa.binary())
        else:
            values = feature_column(features[sink.name], sink.shape)
        table = pa.table({**base, column: values})
        table = table.replace_schema_metadata(sink.metadata)
        # Statistics and dictionaries only for the small columns: on megabytes of floats they cost 2-3x
        # the write time and no reader uses them.
        small = [c for c in table.column_names if c != column]
        storage.write_table(
            f"{sink.name}/{name}", table, compression=compression, use_dictionary=small, write_statistics=small
        )
    return name
