"""Output storage through pyarrow filesystems (local folders or object storage URIs).

Every file is written to a temporary name and then moved into place, so a reader (or a resumed run)
never sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class Storage:
    def __init__(self, uri: str) -> None:
        if "://" not in uri:
            uri = os.path.abspath(uri)
        self.fs, self.root = pafs.FileSystem.from_uri(uri)
        self.uri = uri

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def makedirs(self, rel: str = "") -> None:
        self.fs.create_dir(self.path(rel) if rel else self.root, recursive=True)

    def list(self, rel: str, prefix: str = "", suffix: str = "") -> list[str]:
        """Names (not paths) of the files directly inside ``rel`` matching prefix / suffix, sorted."""
        info = self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        names = [i.base_name for i in info if i.type == pafs.FileType.File]
        return sorted(n for n in names if n.startswith(prefix) and n.endswith(suffix))

    def _tmp(self, rel: str) -> str:
        head, _, name = rel.rpartition("/")
        tmp = f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        return f"{head}/{tmp}" if head else tmp

    def write_bytes(self, rel: str, data: bytes) -> None:
        tmp = self._tmp(rel)
        with self.fs.open_output_stream(self.path(tmp)) as fh:
            fh.write(data)
        self.fs.move(self.path(tmp), self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as fh:
            return fh.read()

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_table(self, rel: str, table: pa.Table, compression: str = "zstd", **options: Any) -> None:
        """Parquet write to a temporary name, then rename; ``options`` go to ``pq.write_table``."""
        tmp = self._tmp(rel)
        pq.write_table(table, self.path(tmp), filesystem=self.fs, compression=compression, **options)
        self.fs.move(self.path(tmp), self.path(rel))

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path(rel), filesystem=self.fs, columns=columns)

    def remove_stale_tmp(self, rel: str = "") -> int:
        """Delete temporary files left by a run that was killed mid-write; returns how many."""
        stale = [n for n in self.list(rel, prefix=".", suffix=".tmp")]
        for name in stale:
            self.fs.delete_file(self.path(f"{rel}/{name}" if rel else name))
        return len(stale)
