"""Part writers: Ray actors that gather whole clips from the feature workers into parts of a target size.

    writer = PartWriter(out_uri, sinks, compression, first_part=3, stride=2, rows_per_part=100_000,
                        bytes_per_part=200 * 2**20)
    writer.append({"logmel": table, ...})      # whole clips, the same rows in every feature set's table
    report = writer.close()                    # writes the queue, commits the open part;
                                               # {"committed": {clip_id: part}, "failed": {...}, ...}

``append`` only queues the clips (a bounded queue: a writer that falls behind slows the feature workers
instead of filling memory) and returns, so feature workers never wait for Parquet; a thread of the writer
does the writing. The driver calls ``close`` after the last status row came back, and every status row
comes back only after its clips were queued, so ``close`` sees every clip.

A writer keeps one open part per feature set (``pq.ParquetWriter`` on a temporary name, one row group per
append) and commits it — closes every feature set's file and renames it to ``part-NNNNNNNN.parquet`` —
once it holds ``rows_per_part`` rows or ``bytes_per_part`` bytes of any feature set, whichever comes first,
and at ``close()``. So a part holds many clips, never part of one, and a reader (or a resumed run) never
sees a half-written part: a run killed mid-way leaves only temporary files (removed by the next run) and,
at worst, a part renamed for some feature sets only (an orphan, removed by the next run); the clips of
both are simply not finished and are processed again.

Writer ``i`` of ``stride`` writers numbers its parts ``first_part + i, + stride, ...``, so writers never
collide and names stay unique across runs (the next run starts after the highest part on disk). The
feature workers send a block to writer ``block % stride``, so a block Ray Data retries reaches the same
writer, which drops clips it already holds: no clip is written twice.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from avs.shards.storage import Storage
from avs.shards.writer import FeatureSink, part_name


class PartWriter:
    def __init__(
        self,
        out_uri: str,
        sinks: tuple[FeatureSink, ...],
        compression: str,
        first_part: int,
        stride: int,
        rows_per_part: int,
        bytes_per_part: int,
        queue_blocks: int = 8,
    ) -> None:
        if rows_per_part < 1 or bytes_per_part < 1:
            raise ValueError("rows_per_part and bytes_per_part must be positive")
        self.storage = Storage(out_uri)
        for sink in sinks:
            self.storage.makedirs(sink.name)
        self.sinks = sinks
        self.compression = compression
        self.next_part = first_part
        self.stride = stride
        self.rows_per_part = rows_per_part
        self.bytes_per_part = bytes_per_part
        self.seen: set[str] = set()  # clips accepted in this run (a retried block is not written twice)
        self.committed: dict[str, int] = {}  # clip_id -> part
        self.failed: dict[str, str] = {}  # clip_id -> why its part could not be written
        self.parts: list[int] = []
        self.write_s = 0.0
        self._open: dict[str, tuple[pq.ParquetWriter, str]] = {}  # feature set -> (writer, temporary name)
        self._part = -1
        self._clips: list[str] = []  # clips in the open part
        self._rows = 0
        self._bytes: dict[str, int] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_blocks)
        self._thread = threading.Thread(target=self._run, name="avs-part-writer", daemon=True)
        self._thread.start()

    def append(self, tables: dict[str, pa.Table]) -> None:
        """Queue whole clips (one table per feature set, the same rows in each) for writing."""
        self._queue.put(tables)

    def close(self) -> dict[str, Any]:
        """Write what is queued, commit the open part; -> {"committed": {clip_id: part}, "failed":
        {clip_id: reason}, "parts": [part numbers], "write_s": seconds spent writing}."""
        self._queue.put(None)
        self._thread.join()
        return {"committed": self.committed, "failed": self.failed, "parts": self.parts, "write_s": self.write_s}

    def _run(self) -> None:
        while True:
            tables = self._queue.get()
            t0 = time.perf_counter()
            if tables is None:
                if self._open:
                    try:
                        self._commit()
                    except Exception as exc:
                        self._abort(f"{type(exc).__name__}: {exc}")
                self.write_s += time.perf_counter() - t0
                return
            self._write(tables)
            self.write_s += time.perf_counter() - t0

    def _write(self, tables: dict[str, pa.Table]) -> None:
        """Append the clips of ``tables`` (rows grouped clip by clip) to the open part, committing it first
        whenever the next clip would take it past ``rows_per_part`` or ``bytes_per_part``."""
        first = tables[self.sinks[0].name]
        ids = first.column("clip_id").to_pylist()
        spans: list[tuple[str, int, int]] = []  # (clip_id, first row, rows) of the clips not seen before
        for row, cid in enumerate(ids):
            if spans and spans[-1][0] == cid:
                spans[-1] = (cid, spans[-1][1], spans[-1][2] + 1)
            elif cid not in self.seen:
                spans.append((cid, row, 1))
        self.seen.update(cid for cid, _, _ in spans)
        row_bytes = {n: t.nbytes / max(1, t.num_rows) for n, t in tables.items()}  # bytes per row

        def overflows(extra_rows: int) -> bool:  # would the open part pass a target with these rows more?
            if self._rows + extra_rows > self.rows_per_part:
                return True
            return any(self._bytes.get(n, 0) + extra_rows * b > self.bytes_per_part for n, b in row_bytes.items())

        group: list[tuple[str, int, int]] = []  # clips to write next, as one row group
        group_rows = 0
        try:
            for span in spans:
                if (self._rows or group_rows) and overflows(group_rows + span[2]):
                    if group:
                        self._append_group(tables, group)
                        group, group_rows = [], 0
                    self._commit()  # a clip larger than a whole part gets a part of its own
                group.append(span)
                group_rows += span[2]
            if group:
                self._append_group(tables, group)
            if self._open and (self._rows >= self.rows_per_part or max(self._bytes.values()) >= self.bytes_per_part):
                self._commit()
        except Exception as exc:  # the whole open part is lost; its clips are reported, the next part starts
            self._abort(f"{type(exc).__name__}: {exc}", extra=[cid for cid, _, _ in spans])

    def _append_group(self, tables: dict[str, pa.Table], group: list[tuple[str, int, int]]) -> None:
        """Write consecutive clips as one row group of every feature set's open part."""
        start, stop = group[0][1], group[-1][1] + group[-1][2]
        if not self._open:
            self._start({name: t.schema for name, t in tables.items()})
        for sink in self.sinks:
            writer, _ = self._open[sink.name]
            table = tables[sink.name].slice(start, stop - start)
            writer.write_table(table)
            self._bytes[sink.name] += table.nbytes
        self._clips += [cid for cid, _, _ in group]
        self._rows += stop - start

    def _start(self, schemas: dict[str, pa.Schema]) -> None:
        self._part = self.next_part
        self.next_part += self.stride
        self._clips, self._rows = [], 0
        self._bytes = {s.name: 0 for s in self.sinks}
        name = part_name(self._part)
        for sink in self.sinks:
            tmp = self.storage._tmp(f"{sink.name}/{name}")
            schema = schemas[sink.name]  # keys, manifest columns, the feature column; the sink's metadata
            column = sink.column or sink.name
            small = [c for c in schema.names if c != column]
            # Statistics and dictionaries only for the small columns: on megabytes of floats they cost 2-3x
            # the write time and no reader uses them.
            writer = pq.ParquetWriter(
                self.storage.path(tmp),
                schema,
                filesystem=self.storage.fs,
                compression=self.compression,
                use_dictionary=small,
                write_statistics=small,
            )
            self._open[sink.name] = (writer, tmp)

    def _commit(self) -> None:
        if not self._open:
            return
        name = part_name(self._part)
        for writer, _ in self._open.values():
            writer.close()
        for sink in self.sinks:  # a kill between these renames leaves an orphan part (removed next run)
            _, tmp = self._open[sink.name]
            self.storage.fs.move(self.storage.path(tmp), self.storage.path(f"{sink.name}/{name}"))
        self._open = {}
        self.parts.append(self._part)
        for cid in self._clips:
            self.committed[cid] = self._part
        self._clips, self._rows, self._bytes = [], 0, {}

    def _abort(self, reason: str, extra: list[str] = ()) -> None:
        for writer, tmp in self._open.values():
            try:
                writer.close()
            except Exception:
                pass
            try:
                self.storage.fs.delete_file(self.storage.path(tmp))
            except Exception:
                pass
        self._open = {}
        for cid in [c for c in dict.fromkeys([*self._clips, *extra]) if c not in self.committed]:
            self.failed[cid] = f"part {part_name(self._part)} could not be written: {reason}"[:2000]
        self._clips, self._rows, self._bytes = [], 0, {}
