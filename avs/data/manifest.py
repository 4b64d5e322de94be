"""The manifest: one row per clip, the table every later stage reads.

Columns (``MANIFEST_SCHEMA``):
    clip_id     string, unique and stable (derived from the file's path relative to the dataset root)
    path        string, absolute path of the audio source (WAV/FLAC/... or a video container with audio)
    video_path  string | null, absolute path of the clip's video (TAU: video/*.mp4; a plain video file: = path)
    duration_s  float64 | null, seconds, from the file header (null when the header could not be read)
    labels      list<string>, clip-level labels (scene label, weak event labels); empty when unlabeled
    events      list<struct<onset_s, offset_s, label>>, strong labels in seconds; empty when none
    split       string | null, e.g. "train" / "evaluate" / "test" (TAU fold1), "train/weak" (DESED)
    fold        int32 | null, cross-validation fold where the dataset defines one
    location    string | null, recording-location id (TAU ``identifier``), for location-disjoint splits
    dataset     string, which reader made the row ("tau-av-2021", "desed", "folder", "manifest")
    label_kind  string | null, what the labels are: "strong" (events with times: a strong clip with no
                events has none, it is not unlabeled), "weak" (clip labels only), "unlabeled" (no labels
                by design), "class" (one class per clip, e.g. a TAU scene); null when the source does not say
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

EVENT_TYPE = pa.struct([("onset_s", pa.float64()), ("offset_s", pa.float64()), ("label", pa.string())])

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("video_path", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("events", pa.list_(EVENT_TYPE)),
        pa.field("split", pa.string()),
        pa.field("fold", pa.int32()),
        pa.field("location", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("label_kind", pa.string()),
    ]
)
LABEL_KINDS = ("strong", "weak", "unlabeled", "class")

# Columns copied from the manifest onto every feature row.
CARRIED_COLUMNS = ("labels", "events", "split", "fold", "location", "label_kind")


def manifest_from_records(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a validated manifest table from dicts; missing optional columns become null / empty."""
    rows = []
    for rec in records:
        row = {name: rec.get(name) for name in MANIFEST_SCHEMA.names}
        row["labels"] = list(row["labels"] or [])
        row["events"] = [dict(e) for e in (row["events"] or [])]
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    validate_manifest(table)
    return table


def validate_manifest(table: pa.Table) -> None:
    """Raise ``ValueError`` with a clear message when the manifest breaks the contract above."""
    missing = [n for n in ("clip_id", "path") if n not in table.column_names]
    if missing:
        raise ValueError(f"manifest is missing required column(s) {missing}")
    if table.num_rows == 0:
        raise ValueError("manifest has no rows: no input files were found")
    ids = table.column("clip_id").to_pylist()
    if any(i is None or i == "" for i in ids):
        raise ValueError("manifest has empty clip_id values")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dups = sorted({i for i in ids if i in seen or seen.add(i)})
        raise ValueError(f"manifest clip_id values must be unique; duplicated: {dups[:5]}")
    if "label_kind" in table.column_names:
        kinds = set(table.column("label_kind").to_pylist()) - {None, *LABEL_KINDS}
        if kinds:
            raise ValueError(f"manifest label_kind must be one of {LABEL_KINDS} (or empty), got {sorted(kinds)}")
