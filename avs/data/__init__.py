"""Dataset readers: every input becomes a manifest table (``avs.data.manifest.MANIFEST_SCHEMA``).

Examples::

    load_manifest("data/TAU-urban-audio-visual-scenes-2021-development")   # auto-detected: tau
    load_manifest("data/DESED", dataset="desed")
    load_manifest("clips.csv")                                              # a manifest file
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from avs.data.desed import read_desed, read_desed_subset
from avs.data.folder import MANIFEST_FILE_EXTENSIONS, read_folder, read_manifest_file
from avs.data.ladi import ANSWER_FILES, read_ladi
from avs.data.manifest import MANIFEST_SCHEMA, manifest_from_records, validate_manifest
from avs.data.probe import probe_duration_s
from avs.data.tau import read_tau_av
from avs.data.voc import is_voc_root, read_voc

DATASETS = ("auto", "tau", "desed", "ladi", "voc", "folder", "manifest")

__all__ = [
    "DATASETS",
    "MANIFEST_SCHEMA",
    "detect_dataset",
    "load_manifest",
    "manifest_from_records",
    "probe_duration_s",
    "read_desed",
    "read_desed_subset",
    "read_ladi",
    "read_folder",
    "read_manifest_file",
    "read_tau_av",
    "read_voc",
    "validate_manifest",
]


def detect_dataset(source: str | os.PathLike) -> str:
    """Which reader fits ``source``: "manifest", "tau", "desed" or "folder" (see ``load_manifest``)."""
    p = Path(source)
    if p.is_file():
        if p.suffix.lower() in MANIFEST_FILE_EXTENSIONS:
            return "manifest"
        raise ValueError(f"{p}: a file source must be a manifest ({' / '.join(MANIFEST_FILE_EXTENSIONS)})")
    if not p.is_dir():
        raise ValueError(f"{p}: no such file or folder")
    if (p / "meta.csv").is_file() and (p / "audio").is_dir():
        return "tau"
    if (p / "audio").is_dir() and (p / "metadata").is_dir():
        return "desed"
    if (p / "images").is_dir() and any((p / n).is_file() for n in ANSWER_FILES):
        return "ladi"
    if is_voc_root(p):
        return "voc"
    return "folder"


def load_manifest(source: str | os.PathLike, dataset: str = "auto", **options) -> pa.Table:
    """Manifest of ``source`` read by the ``dataset`` reader.

    ``dataset``: "tau" (``read_tau_av``), "desed" (``read_desed``), "ladi" (``read_ladi``), "voc" (``read_voc``),
    "folder" (``read_folder``), "manifest" (``read_manifest_file``) or "auto": a .csv / .tsv / .parquet file ->
    manifest; a folder with meta.csv and audio/ -> tau; a folder with audio/ and metadata/ -> desed; a folder
    with images/ and annotations.csv -> ladi; a folder with JPEGImages/ and ImageSets/Main/ -> voc (Pascal VOC
    2007); any other folder -> folder. ``options`` go to the reader (e.g. ``label_from="parent"`` for folders).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    kind = detect_dataset(source) if dataset == "auto" else dataset
    readers = {
        "tau": read_tau_av,
        "desed": read_desed,
        "ladi": read_ladi,
        "voc": read_voc,
        "folder": read_folder,
        "manifest": read_manifest_file,
    }
    return readers[kind](source, **options)
