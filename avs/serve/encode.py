"""Answers of the service as JSON, Arrow IPC or ``.npz``, chosen by the request's ``Accept`` header.

Features (``POST /features``):
  - JSON: ``{"feature_sets": {name: {"hash", "shape", "rows", "keys": {segment, start_s, end_s, ...}, "values"}}}``,
    values nested lists ``(rows, *shape)`` (binary sets such as JPEG frames: base64 strings); only up to
    ``json_max_values`` numbers (else 406: ask for Arrow or npz);
  - Arrow IPC stream: one table, one row per (feature set, row): ``feature_set``, ``segment``, ``start_s``,
    ``end_s``, ``frame_index``, ``timestamp_s``, ``values`` (large_list<float32>, the row's features flattened in
    C order) or ``data`` (binary); the schema metadata ``avs.response`` holds the JSON answer without values
    (shapes, hashes);
  - npz: ``<set>`` ``(rows, *shape)`` float32 (binary sets: npz holds no object arrays, so their bytes are
    left out and listed under ``skipped``), ``<set>.segment`` / ``.start_s`` / ``.end_s``, and ``response.json``
    (the JSON answer without values, as uint8 bytes).
Predictions (``POST /predict/<run>``) use the same three: JSON (per-row scores, the clip answer or SED events), an
Arrow table of the rows, or npz (``scores`` ``(rows, classes)`` + keys + ``response.json``).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from avs.serve.config import ARROW, JSON, NPZ

KEY_NAMES = ("segment", "start_s", "end_s", "frame_index", "timestamp_s")


class NotAcceptable(ValueError):
    """The Accept header names no format the service gives, or JSON would be too large (406)."""


def choose_format(accept: str | None) -> str:
    """``Accept`` -> JSON, ARROW or NPZ (first acceptable in the header's order; none or ``*/*`` -> JSON)."""
    if not accept:
        return JSON
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (JSON, "*/*", "application/*"):
            return JSON
        if media == ARROW:  # (the stream format; an Arrow *file* is not offered)
            return ARROW
        if media in (NPZ, "application/npz", "application/octet-stream"):
            return NPZ
    raise NotAcceptable(f"Accept {accept!r}: this service answers {JSON}, {ARROW} or {NPZ}")


def feature_arrays(table: pa.Table, shape: tuple[int, ...], column: str) -> np.ndarray | list[bytes]:
    """A feature table's feature column -> ``(rows, *shape)`` float32, or the list of bytes of a binary set."""
    col = table.column(column)
    if pa.types.is_binary(col.type):
        return col.to_pylist()
    flat = np.asarray(col.combine_chunks().flatten(), dtype=np.float32)
    return flat.reshape(table.num_rows, *shape)


def _keys(table: pa.Table) -> dict[str, list]:
    return {k: table.column(k).to_pylist() for k in KEY_NAMES if k in table.column_names}


def features_answer(
    tables: Mapping[str, pa.Table], shapes: Mapping[str, tuple[int, ...]], columns: Mapping[str, str], head: dict
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the answer without values, {set: values}) of computed feature tables; ``head``: what the answer starts with
    (file, hashes, seconds, skipped...)."""
    sets, values = {}, {}
    for name, table in tables.items():
        values[name] = feature_arrays(table, shapes[name], columns[name])
        binary = isinstance(values[name], list)
        sets[name] = {
            **head["feature_sets"].get(name, {}),
            "shape": list(shapes[name]),
            "dtype": "jpeg" if binary else "float32",
            "rows": table.num_rows,
            "keys": _keys(table),
        }
    return {**head, "feature_sets": sets}, values


def encode_features(answer: dict[str, Any], values: Mapping[str, Any], fmt: str, json_max_values: int) -> bytes:
    if fmt == JSON:
        n = sum(len(v) if isinstance(v, list) else v.size for v in values.values())
        if n > json_max_values:
            raise NotAcceptable(
                f"{n} feature values are too many for JSON (limit {json_max_values}): send Accept: {ARROW} or {NPZ}"
            )
        out = json.loads(json.dumps(answer))
        for name, v in values.items():
            out["feature_sets"][name]["values"] = (
                [base64.b64encode(b).decode() for b in v] if isinstance(v, list) else v.tolist()
            )
        return json.dumps(out).encode()
    if fmt == ARROW:
        parts = []
        for name, v in values.items():
            keys = answer["feature_sets"][name]["keys"]
            n = answer["feature_sets"][name]["rows"]
            cols: dict[str, Any] = {"feature_set": pa.array([name] * n, pa.string())}
            for k in KEY_NAMES:
                typ = pa.int32() if k in ("segment", "frame_index") else pa.float64()
                cols[k] = pa.array(keys.get(k, [None] * n), typ)
            if isinstance(v, list):
                cols["values"] = pa.nulls(n, pa.large_list(pa.float32()))
                cols["data"] = pa.array(v, pa.binary())
            else:
                flat = v.reshape(n, -1)
                offsets = np.arange(n + 1, dtype=np.int64) * flat.shape[1]  # row i: values [i d, (i + 1) d)
                cols["values"] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat.reshape(-1)))
                cols["data"] = pa.nulls(n, pa.binary())
            parts.append(pa.table(cols))
        table = pa.concat_tables(parts) if parts else pa.table({})
        return _ipc(table.replace_schema_metadata({b"avs.response": json.dumps(answer).encode()}))
    arrays: dict[str, np.ndarray] = {}
    answer = json.loads(json.dumps(answer))
    for name, v in values.items():
        if isinstance(v, list):
            answer.setdefault("skipped", {})[name] = "binary set (JPEG): not in .npz; ask for JSON or Arrow"
            continue
        arrays[name] = v
        for k, col in answer["feature_sets"][name]["keys"].items():
            arrays[f"{name}.{k}"] = np.asarray(col)
    return _npz(arrays, answer)


def encode_prediction(answer: dict[str, Any], classes: tuple[str, ...], fmt: str) -> bytes:
    """A /predict answer (``rows``: the predictions-table columns of avs predict) in ``fmt``."""
    rows = answer["rows"]
    head = {k: v for k, v in answer.items() if k != "rows"}
    if fmt == JSON:
        n = len(rows["clip_id"])
        out_rows = []
        for i in range(n):
            row = {k: _py(rows[k][i]) for k in ("segment", "start_s", "end_s") if k in rows}
            row["scores"] = {c: float(rows[c][i]) for c in classes}
            out_rows.append(row)
        return json.dumps({**head, "rows": out_rows}).encode()
    scores = np.stack([np.asarray(rows[c], np.float64) for c in classes], axis=1)
    if fmt == ARROW:
        cols = {k: pa.array(np.asarray(rows[k])) for k in ("segment", "start_s", "end_s") if k in rows}
        for j, c in enumerate(classes):
            cols[c] = pa.array(scores[:, j])
        meta = {b"avs.response": json.dumps(head).encode(), b"avs.classes": json.dumps(list(classes)).encode()}
        return _ipc(pa.table(cols).replace_schema_metadata(meta))
    arrays = {"scores": scores, **{k: np.asarray(rows[k]) for k in ("segment", "start_s", "end_s") if k in rows}}
    return _npz(arrays, {**head, "classes": list(classes)})


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _npz(arrays: dict[str, np.ndarray], answer: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    meta = np.frombuffer(json.dumps(answer).encode(), dtype=np.uint8)
    np.savez(buf, **arrays, **{"response.json": meta})
    return buf.getvalue()
