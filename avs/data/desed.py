"""DESED (DCASE Task 4: Domestic Environment Sound Event Detection).

Layout under ``root``: audio in subset folders, labels in tab-separated files named after them::

    audio/train/weak/*.wav                 metadata/train/weak.tsv          filename  event_labels
    audio/train/synthetic20/soundscapes/   metadata/train/synthetic20/soundscapes.tsv
                                                                            filename  onset  offset  event_label
    audio/train/unlabel_in_domain/         (no tsv: unlabeled)
    audio/validation/                      metadata/validation.tsv  or  metadata/validation/validation.tsv

A subset is any folder under ``audio/`` that directly holds audio files; its tsv is
``metadata/<subset>.tsv`` or ``metadata/<subset>/<last part of subset>.tsv``. A strong tsv
(``filename onset offset event_label``, seconds) gives events; a row with an empty label lists a clip with
no event; labels = the sorted unique event labels. A weak tsv (``filename event_labels``) gives
comma-separated clip labels. split = the subset path ("train/weak"); clip_id = "<subset>/<file stem>".
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from avs.data._tables import read_delimited
from avs.data.manifest import manifest_from_records
from avs.data.probe import AUDIO_EXTENSIONS, probe_duration_s

DATASET_NAME = "desed"
STRONG_COLUMNS = ("filename", "onset", "offset", "event_label")
WEAK_COLUMNS = ("filename", "event_labels")
ON_MISMATCH = ("error", "skip")


def _audio_files(folder: Path) -> list[Path]:
    """Audio files directly in ``folder``, sorted by name."""
    found = (p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return sorted(p for p in found if p.suffix.lower() in AUDIO_EXTENSIONS)


def _parse_seconds(value: str, where: str, name: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{where}: {name} {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"{where}: {name} {seconds} is negative")
    return seconds


def _read_labels(tsv: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """("strong" | "weak", filename -> {"labels": [...], "events": [...], "lineno": first line}) of a tsv."""
    header, _ = read_delimited(tsv, "\t", ("filename",))
    if all(c in header for c in STRONG_COLUMNS):
        strong = True
    elif all(c in header for c in WEAK_COLUMNS):
        strong = False
    else:
        raise ValueError(
            f"{tsv}:1: unknown DESED tsv header {header}; expected {list(STRONG_COLUMNS)} (strong labels) "
            f"or {list(WEAK_COLUMNS)} (weak labels), tab-separated"
        )
    _, rows = read_delimited(tsv, "\t", STRONG_COLUMNS if strong else WEAK_COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    for lineno, row in rows:
        where = f"{tsv}:{lineno}"
        name = row["filename"]
        if not name:
            raise ValueError(f"{where}: empty filename")
        entry = out.setdefault(name, {"labels": set(), "events": [], "lineno": lineno})
        if strong:
            label = row["event_label"]
            if not label:  # a listed clip with no event
                continue
            onset_s = _parse_seconds(row["onset"], where, "onset")
            offset_s = _parse_seconds(row["offset"], where, "offset")
            if offset_s < onset_s:
                raise ValueError(f"{where}: offset {offset_s} is before onset {onset_s}")
            entry["events"].append({"onset_s": onset_s, "offset_s": offset_s, "label": label})
            entry["labels"].add(label)
        else:
            entry["labels"].update(lab.strip() for lab in row["event_labels"].split(",") if lab.strip())
    for entry in out.values():
        entry["labels"] = sorted(entry["labels"])
        entry["events"].sort(key=lambda e: (e["onset_s"], e["offset_s"], e["label"]))
    return ("strong" if strong else "weak"), out


def _subset_records(
    audio_dir: Path, tsv: Path | None, split: str | None, on_mismatch: str, probe_durations: bool
) -> list[dict[str, Any]]:
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, got {on_mismatch!r}")
    files = _audio_files(audio_dir)
    kind, labels = _read_labels(tsv) if tsv is not None else ("unlabeled", None)

    if labels is not None:
        on_disk = {p.name for p in files}
        for name, entry in labels.items():
            if name not in on_disk and on_mismatch == "error":
                raise ValueError(
                    f"{tsv}:{entry['lineno']}: audio file {name!r} does not exist in {audio_dir} "
                    f"(on_mismatch='skip' leaves such rows out)"
                )
        unlisted = [p.name for p in files if p.name not in labels]
        if unlisted and on_mismatch == "error":
            raise ValueError(
                f"{tsv}: {len(unlisted)} audio file(s) in {audio_dir} are not listed, e.g. {unlisted[:3]} "
                f"(on_mismatch='skip' leaves them out)"
            )
        files = [p for p in files if p.name in labels]

    records = []
    for p in files:
        entry = labels[p.name] if labels is not None else {"labels": [], "events": []}
        stem = p.stem
        records.append(
            {
                "clip_id": f"{split}/{stem}" if split else stem,
                "path": str(p),
                "video_path": None,
                "duration_s": probe_duration_s(p) if probe_durations else None,
                "labels": entry["labels"],
                "events": entry["events"],
                "split": split or None,
                "dataset": DATASET_NAME,
                "label_kind": kind,
            }
        )
    return records


def find_subset_tsv(metadata_root: Path, subset: str) -> Path | None:
    """``metadata/<subset>.tsv`` or ``metadata/<subset>/<last part>.tsv``, whichever exists (else None)."""
    sub = PurePosixPath(subset)
    for candidate in (metadata_root / f"{sub}.tsv", metadata_root / sub / f"{sub.name}.tsv"):
        if candidate.is_file():
            return candidate
    return None


def read_desed_subset(
    audio_dir: str | os.PathLike,
    tsv: str | os.PathLike | None = None,
    split: str | None = None,
    *,
    on_mismatch: str = "error",
    probe_durations: bool = True,
) -> pa.Table:
    """Manifest of one DESED folder of audio (not recursive), labelled by ``tsv`` (strong or weak) or not.

    ``split`` defaults to the folder's name and prefixes the clip ids ("<split>/<stem>"). With
    ``on_mismatch="error"`` (default) a tsv row whose file is missing, or an audio file the tsv does not
    list, raises ``ValueError``; "skip" leaves both out.
    """
    audio_dir = Path(os.path.abspath(audio_dir))
    if not audio_dir.is_dir():
        raise ValueError(f"{audio_dir}: not a folder")
    tsv_path = Path(os.path.abspath(tsv)) if tsv is not None else None
    if tsv_path is not None and not tsv_path.is_file():
        raise ValueError(f"{tsv_path}: not found")
    split = audio_dir.name if split is None else split
    records = _subset_records(audio_dir, tsv_path, split, on_mismatch, probe_durations)
    if not records:
        raise ValueError(f"{audio_dir}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return manifest_from_records(records)


def read_desed(root: str | os.PathLike, *, on_mismatch: str = "error", probe_durations: bool = True) -> pa.Table:
    """Manifest of a DESED folder (``audio/`` + ``metadata/``): every subset folder under ``audio/``."""
    root = Path(os.path.abspath(root))
    audio_root, metadata_root = root / "audio", root / "metadata"
    if not audio_root.is_dir():
        raise ValueError(f"{audio_root}: not found; a DESED folder holds audio/<subset>/ and metadata/<subset>.tsv")
    records: list[dict[str, Any]] = []
    for dirpath, dirnames, _ in os.walk(audio_root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        if not _audio_files(folder):
            continue
        subset = PurePosixPath(*folder.relative_to(audio_root).parts).as_posix()
        subset = "" if subset == "." else subset
        tsv = find_subset_tsv(metadata_root, subset) if subset else None
        records += _subset_records(folder, tsv, subset or None, on_mismatch, probe_durations)
    if not records:
        raise ValueError(f"{audio_root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in any subset folder")
    return manifest_from_records(records)
