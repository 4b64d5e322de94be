"""Small helpers shared by the dataset readers: delimited text files with line numbers, clip ids."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath


def clip_id_for(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """Stable clip id: ``path`` relative to ``root``, without its extension, with POSIX separators."""
    rel = Path(os.path.relpath(Path(path), Path(root)))
    return str(PurePosixPath(*rel.parts).with_suffix(""))


def read_delimited(
    path: Path, delimiter: str, required: Sequence[str]
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Read a delimited text file with a header line.

    Returns the header and an iterator of ``(line_number, row)`` (1-based line numbers as an editor shows
    them; the header is line 1). Blank lines are skipped. Raises ``ValueError`` naming the file when a
    ``required`` column is missing and naming file and line when a row has more fields than the header.
    """
    text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}:1: empty file, expected a header line with columns {list(required)}")
    header = [h.strip() for h in next(csv.reader([lines[0]], delimiter=delimiter))]
    missing = [c for c in required if c not in header]
    if missing:
        sep = "tab" if delimiter == "\t" else repr(delimiter)
        raise ValueError(f"{path}:1: missing column(s) {missing}; found {header} ({sep}-separated header expected)")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for lineno, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            fields = next(csv.reader([line], delimiter=delimiter))
            if len(fields) > len(header):
                raise ValueError(f"{path}:{lineno}: {len(fields)} fields but the header has {len(header)}")
            fields += [""] * (len(header) - len(fields))
            yield lineno, {h: f.strip() for h, f in zip(header, fields, strict=True)}

    return header, rows()
