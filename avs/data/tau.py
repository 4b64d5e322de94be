"""TAU Audio-Visual Urban Scenes 2021, development set (DCASE2021 Task 1B).

Layout under ``root``::

    audio/airport-lisbon-1000-40000.wav      48 kHz stereo, 10 s
    video/airport-lisbon-1000-40000.mp4
    meta.csv                                 tab-separated:
        filename_audio  filename_video  scene_label  identifier
        audio/airport-lisbon-1000-40000.wav  video/airport-lisbon-1000-40000.mp4  airport  lisbon-1000
    evaluation_setup/fold1_train.csv         filename_audio  filename_video  scene_label
    evaluation_setup/fold1_evaluate.csv      filename_audio  filename_video  scene_label
    evaluation_setup/fold1_test.csv          filename_audio  filename_video

In the released data ``fold1_test.csv`` lists the same clips as ``fold1_evaluate.csv`` without labels, so
a clip's split is the first list that has it, in the order train, evaluate, test; clips in no list get a
null split and fold. ``identifier`` is the recording location (``location``), used for
location-disjoint splits.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from avs.data._tables import clip_id_for, read_delimited
from avs.data.manifest import manifest_from_records
from avs.data.probe import probe_duration_s

DATASET_NAME = "tau-av-2021"
META_COLUMNS = ("filename_audio", "filename_video", "scene_label", "identifier")
SPLITS = ("train", "evaluate", "test")  # precedence when a clip is in several lists
_SPLIT_COLUMNS = {
    "train": ("filename_audio", "filename_video", "scene_label"),
    "evaluate": ("filename_audio", "filename_video", "scene_label"),
    "test": ("filename_audio",),
}


def _resolve_listed(root: Path, rel: str, where: str, what: str) -> Path:
    """Absolute path of a file named in a metadata file; ``ValueError`` naming ``where`` when missing."""
    if not rel:
        raise ValueError(f"{where}: empty {what}")
    p = Path(os.path.abspath(root / rel))  # absolute and normalised; symlinks (e.g. audio/ -> disk) kept
    if not p.is_file():
        raise ValueError(f"{where}: {what} {rel!r} does not exist ({p})")
    return p


def _read_split_lists(root: Path, fold: int) -> dict[str, str]:
    """audio filename (as written in meta.csv) -> split, from ``evaluation_setup/fold{fold}_*.csv``."""
    setup = root / "evaluation_setup"
    split_of: dict[str, str] = {}
    for split in SPLITS:
        path = setup / f"fold{fold}_{split}.csv"
        if not path.is_file():
            continue
        _, rows = read_delimited(path, "\t", _SPLIT_COLUMNS[split])
        for lineno, row in rows:
            name = row["filename_audio"]
            _resolve_listed(root, name, f"{path}:{lineno}", "audio file")
            if name not in split_of:
                split_of[name] = split
            elif split_of[name] != "evaluate" or split != "test":  # evaluate+test is the released layout
                raise ValueError(
                    f"{path}:{lineno}: {name!r} is also listed in fold{fold}_{split_of[name]}.csv; "
                    f"a clip can be in only one of fold{fold}_train / fold{fold}_evaluate"
                )
    return split_of


def read_tau_av(root: str | os.PathLike, fold: int = 1, probe_durations: bool = True) -> pa.Table:
    """Manifest of a TAU Audio-Visual Urban Scenes 2021 development set at ``root``.

    One row per line of ``meta.csv``: clip_id = audio file path relative to ``audio/`` without extension
    (e.g. "airport-lisbon-1000-40000"), path / video_path absolute, labels = [scene_label],
    location = identifier, split / fold from ``evaluation_setup/fold{fold}_*.csv``, duration_s from the
    WAV header (skipped when ``probe_durations`` is False). Raises ``ValueError`` naming file and line for
    a missing ``meta.csv``, missing columns, or a listed file that does not exist.
    """
    root = Path(os.path.abspath(root))
    meta = root / "meta.csv"
    if not meta.is_file():
        raise ValueError(f"{meta}: not found; a TAU-AV dataset folder holds meta.csv, audio/ and video/")
    split_of = _read_split_lists(root, fold)
    audio_root = root / "audio"

    _, rows = read_delimited(meta, "\t", META_COLUMNS)
    records, seen, meta_names = [], set(), set()
    for lineno, row in rows:
        where = f"{meta}:{lineno}"
        audio_path = _resolve_listed(root, row["filename_audio"], where, "audio file")
        video_path = (
            _resolve_listed(root, row["filename_video"], where, "video file") if row["filename_video"] else None
        )
        if not row["scene_label"]:
            raise ValueError(f"{where}: empty scene_label")
        clip_id = clip_id_for(audio_path, audio_root if audio_path.is_relative_to(audio_root) else root)
        if clip_id in seen:
            raise ValueError(f"{where}: clip {clip_id!r} is listed twice")
        seen.add(clip_id)
        meta_names.add(row["filename_audio"])
        split = split_of.get(row["filename_audio"])
        records.append(
            {
                "clip_id": clip_id,
                "path": str(audio_path),
                "video_path": None if video_path is None else str(video_path),
                "duration_s": probe_duration_s(audio_path) if probe_durations else None,
                "labels": [row["scene_label"]],
                "split": split,
                "fold": fold if split is not None else None,
                "location": row["identifier"] or None,
                "dataset": DATASET_NAME,
                "label_kind": "class",  # one acoustic scene per clip
            }
        )
    listed_elsewhere = sorted(set(split_of) - meta_names)
    if listed_elsewhere:
        raise ValueError(
            f"{root / 'evaluation_setup'}: {len(listed_elsewhere)} file(s) in fold{fold} lists are not in "
            f"{meta}, e.g. {listed_elsewhere[:3]}"
        )
    if not records:
        raise ValueError(f"{meta}: no clips listed")
    return manifest_from_records(records)
