"""Driver-side shard writer: groups segment rows into whole clips and writes Parquet parts.

A clip is written only when all of its segments have arrived and none failed; then its rows go to
``OUT/<feature_set>/part-NNNNN.parquet`` (one part per feature set with the same rows). A clip with any
failed row becomes one error row instead. Parts end on clip boundaries, so a resumed run can skip
clips by id without ever writing half a clip twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from avs.data.manifest import CARRIED_COLUMNS
from avs.shards.storage import Storage


@dataclasses.dataclass
class _Pending:
    expected: int
    rows: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FeatureSink:
    name: str
    shape: tuple[int, ...]
    metadata: dict[bytes, bytes]


class ShardWriter:
    def __init__(
        self,
        storage: Storage,
        sinks: list[FeatureSink],
        manifest: pa.Table,
        rows_per_shard: int,
        next_part: int,
        skip: dict[str, set[str]] | None = None,
        compression: str = "lz4",
    ) -> None:
        self.storage = storage
        self.sinks = sinks
        self.manifest = manifest
        self.row_of = {cid: i for i, cid in enumerate(manifest.column("clip_id").to_pylist())}
        self.path_of = manifest.column("path").to_pylist()
        self.rows_per_shard = rows_per_shard
        self.compression = compression
        self.next_part = next_part
        self.skip = skip or {}  # feature set -> clip_ids it already holds (partial earlier runs)
        self._pending: dict[str, _Pending] = {}
        self._ready: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = []
        self.clips_written = 0
        self.rows_written = 0
        self.parts_written: list[str] = []
        self.errors: list[dict[str, Any]] = []

    # -- intake ---------------------------------------------------------------------------------------
    def add(self, batch: dict[str, np.ndarray]) -> tuple[int, int]:
        """Take one batch of rows; returns (clips completed, clips failed) by this batch."""
        done = failed = 0
        names = [s.name for s in self.sinks]
        for i in range(len(batch["clip_id"])):
            meta = {
                k: batch[k][i]
                for k in (
                    "clip_id",
                    "segment",
                    "start_s",
                    "end_s",
                    "n_segments",
                    "error_stage",
                    "error_type",
                    "error_message",
                )
            }
            feats = {n: batch[n][i] for n in names}
            cid = str(meta["clip_id"])
            pending = self._pending.setdefault(cid, _Pending(int(meta["n_segments"])))
            pending.rows.append((meta, feats))
            if len(pending.rows) < pending.expected:
                continue
            del self._pending[cid]
            errs = [m for m, _ in pending.rows if m["error_type"]]
            if errs:
                e = errs[0]
                self.errors.append(
                    self.error_record(cid, str(e["error_stage"]), str(e["error_type"]), str(e["error_message"]))
                )
                failed += 1
            else:
                pending.rows.sort(key=lambda r: int(r[0]["segment"]))
                self._ready.extend(pending.rows)
                done += 1
        if len(self._ready) >= self.rows_per_shard:
            self.flush()
        return done, failed

    def error_record(self, clip_id: str, stage: str, kind: str, message: str) -> dict[str, Any]:
        row = self.row_of.get(clip_id)
        path = self.path_of[row] if row is not None else ""
        return {"clip_id": clip_id, "path": path, "stage": stage, "error_type": kind, "message": message}

    @property
    def incomplete(self) -> list[str]:
        return sorted(self._pending)

    # -- output ---------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every ready clip as one part per feature set."""
        if not self._ready:
            return
        rows, self._ready = self._ready, []
        ids = [str(m["clip_id"]) for m, _ in rows]
        base = {
            "clip_id": pa.array(ids, pa.string()),
            "segment": pa.array([int(m["segment"]) for m, _ in rows], pa.int32()),
            "start_s": pa.array([float(m["start_s"]) for m, _ in rows], pa.float64()),
            "end_s": pa.array([float(m["end_s"]) for m, _ in rows], pa.float64()),
        }
        carried = self.manifest.select(list(CARRIED_COLUMNS)).take(pa.array([self.row_of[c] for c in ids]))
        for col in CARRIED_COLUMNS:
            base[col] = carried.column(col)
        part = f"part-{self.next_part:05d}.parquet"
        for sink in self.sinks:
            keep = np.array([c not in self.skip.get(sink.name, ()) for c in ids])
            if not keep.any():
                continue
            values = np.stack([f[sink.name] for _, f in rows]).astype(np.float32, copy=False)
            flat = pa.array(values.reshape(-1), pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(sink.shape)))
            table = pa.table({**base, sink.name: column})
            if not keep.all():
                table = table.filter(pa.array(keep))
            table = table.replace_schema_metadata(sink.metadata)
            self.storage.write_table(f"{sink.name}/{part}", table, compression=self.compression)
        self.parts_written.append(part)
        self.next_part += 1
        self.clips_written += len(set(ids))
        self.rows_written += len(rows)
