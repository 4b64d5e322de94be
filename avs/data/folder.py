"""Generic inputs: a folder of media files, or a manifest file (CSV / TSV / Parquet) listing them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from avs.data._tables import clip_id_for, read_delimited
from avs.data.manifest import manifest_from_records
from avs.data.probe import MEDIA_EXTENSIONS, is_video_container, probe_duration_s

LABEL_FROM = ("none", "parent")
MANIFEST_FILE_EXTENSIONS = (".csv", ".tsv", ".parquet")


def _media_files(root: Path) -> Iterator[Path]:
    """Media files under ``root`` (recursive, hidden files and folders skipped), in sorted order."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                yield Path(dirpath) / name


def read_folder(root: str | os.PathLike, label_from: str = "none", *, probe_durations: bool = True) -> pa.Table:
    """Manifest of every media file under ``root`` (recursive).

    clip_id = path relative to ``root`` without extension; video containers (mp4 mkv avi mov webm) get
    video_path = path. ``label_from="parent"`` labels each file with its parent folder's name (files
    directly in ``root`` get no label); "none" leaves labels empty.
    """
    if label_from not in LABEL_FROM:
        raise ValueError(f"label_from must be one of {LABEL_FROM}, got {label_from!r}")
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    records, owner = [], {}
    for p in _media_files(root):
        clip_id = clip_id_for(p, root)
        if clip_id in owner:
            raise ValueError(
                f"{root}: {owner[clip_id].name} and {p.name} would share clip_id {clip_id!r}; "
                "keep one file per name (without extension) per folder"
            )
        owner[clip_id] = p
        labels = [p.parent.name] if label_from == "parent" and p.parent != root else []
        records.append(
            {
                "clip_id": clip_id,
                "path": str(p),
                "video_path": str(p) if is_video_container(p) else None,
                "duration_s": probe_duration_s(p) if probe_durations else None,
                "labels": labels,
                "dataset": "folder",
            }
        )
    if not records:
        raise ValueError(f"{root}: no media files ({' '.join(e.lstrip('.') for e in MEDIA_EXTENSIONS)})")
    return manifest_from_records(records)


# ----------------------------------------------------------------------------------------------- manifests


def _is_url(path: str) -> bool:
    return "://" in path


def _split_labels(value: Any, where: str) -> list[str]:
    """``labels`` cell: a list, or a string separated by ';' (preferred) or ','; empty -> []."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a JSON list written into a CSV cell
            try:
                return _split_labels(json.loads(text), where)
            except json.JSONDecodeError:
                raise ValueError(f"{where}: labels {text!r} is not a valid JSON list") from None
        sep = ";" if ";" in text else ","
        return [s.strip() for s in text.split(sep) if s.strip()]
    raise ValueError(f"{where}: labels must be a list or a string, got {type(value).__name__}")


def _parse_events(value: Any, where: str) -> list[dict[str, Any]]:
    """``events`` cell: a list of {onset_s, offset_s, label} (Parquet) or that list as JSON text (CSV)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: events {value!r} is not a JSON list of {{onset_s, offset_s, label}}") from None
    if not isinstance(value, list):
        raise ValueError(f"{where}: events must be a list of {{onset_s, offset_s, label}}")
    events = []
    for e in value:
        try:
            onset_s, offset_s, label = float(e["onset_s"]), float(e["offset_s"]), str(e["label"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: event {e!r} needs onset_s, offset_s (seconds) and label") from None
        if offset_s < onset_s:
            raise ValueError(f"{where}: event {e!r} ends before it starts")
        events.append({"onset_s": onset_s, "offset_s": offset_s, "label": label})
    return events


def _optional(value: Any) -> Any:
    """Empty CSV cells and NaN are null."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def _manifest_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location for messages, row) for each row of a CSV / TSV / Parquet manifest file."""
    ext = path.suffix.lower()
    if ext == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - surface as a clear ValueError
            raise ValueError(f"{path}: cannot read Parquet file: {exc}") from exc
        if "path" not in table.column_names:
            raise ValueError(f"{path}: missing column 'path'; found {table.column_names}")
        for i, row in enumerate(table.to_pylist()):
            yield f"{path}: row {i}", row
        return
    first = path.read_text(encoding="utf-8-sig").split("\n", 1)[0]
    delimiter = "\t" if ext == ".tsv" or "\t" in first else ","
    _, rows = read_delimited(path, delimiter, ("path",))
    for lineno, row in rows:
        yield f"{path}:{lineno}", row


def read_manifest_file(path: str | os.PathLike, *, probe_durations: bool = True) -> pa.Table:
    """Manifest from a CSV / TSV / Parquet file with at least a ``path`` column.

    Relative paths (``path``, ``video_path``) are resolved against the file's folder; URLs
    ("s3://...") are kept as they are. ``clip_id`` is used when present, else derived from the path
    (relative to the file's folder, without extension). Other columns of ``MANIFEST_SCHEMA`` are kept:
    ``labels`` as a list or a ';' / ','-separated string, ``events`` as a list or JSON text,
    ``duration_s`` probed from the header when absent, ``dataset`` defaults to "manifest". Local files
    that do not exist raise ``ValueError`` naming file and line.
    """
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise ValueError(f"{path}: manifest file not found")
    if path.suffix.lower() not in MANIFEST_FILE_EXTENSIONS:
        raise ValueError(f"{path}: a manifest file is {' / '.join(MANIFEST_FILE_EXTENSIONS)}")
    base = path.parent
    records = []
    for where, row in _manifest_rows(path):
        media = _optional(row.get("path"))
        if media is None:
            raise ValueError(f"{where}: empty path")
        media = str(media)
        if not _is_url(media):
            media = os.path.abspath(base / media)
            if not os.path.isfile(media):
                raise ValueError(f"{where}: file {row['path']!r} does not exist ({media})")
        video = _optional(row.get("video_path"))
        if video is not None and not _is_url(str(video)):
            video = os.path.abspath(base / str(video))
            if not os.path.isfile(video):
                raise ValueError(f"{where}: video file {row['video_path']!r} does not exist ({video})")
        clip_id = _optional(row.get("clip_id"))
        if clip_id is None:
            if _is_url(media):
                clip_id = str(PurePosixPath(media.split("://", 1)[1]).with_suffix(""))
            else:
                clip_id = clip_id_for(media, base)
        duration = _optional(row.get("duration_s"))
        if duration is None and probe_durations and not _is_url(media):
            duration = probe_duration_s(media)
        fold = _optional(row.get("fold"))
        try:
            duration = None if duration is None else float(duration)
            fold = None if fold is None else int(fold)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: duration_s must be a number and fold an integer") from None
        rec = {
            "clip_id": str(clip_id),
            "path": media,
            "video_path": None if video is None else str(video),
            "duration_s": duration,
            "labels": _split_labels(_optional(row.get("labels")), where),
            "events": _parse_events(_optional(row.get("events")), where),
            "fold": fold,
            "dataset": str(_optional(row.get("dataset")) or "manifest"),
        }
        for name in ("split", "location", "label_kind"):
            value = _optional(row.get(name))
            rec[name] = None if value is None else str(value)
        records.append(rec)
    if not records:
        raise ValueError(f"{path}: no rows")
    try:
        return manifest_from_records(records)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
