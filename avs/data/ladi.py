"""LADI-style multi-annotator image labels (paper 002, TRECVID DSDI 2020) -> soft multi-label targets (§2.1).

    answers = read_answers("ladi_aggregated_responses_url.tsv")    # {image: [[labels of one answer], ...]}
    y = soft_labels(answers["img1.jpg"], LADI_CLASSES)            # (37,) count per class / the largest count

Two layouts are read (CSV or TSV by the extension, or sniffed):
  - LADI's published human annotations: one row per annotator answer, with the image in ``url`` / ``img_url``
    / ``image_uuid`` / ``image``, the annotator in ``WorkerId`` and the labels in ``Answer``
    (``damage:flood/water``; several labels of one answer separated by ``|``, ``;`` or ``,``);
  - a plain table ``image, annotator, labels`` (labels separated the same way).

Labels are matched to the class names by a normalised key (lower case, letters and digits only), with or
without a ``category:`` prefix (``damage:``, ``environment:``, ``infrastructure:``, ``vehicles:``, ``water:``),
plus LADI's short forms (``flood/water`` -> "flooding / water damage", ...; ``aliases`` adds more). A label that
matches no class is an error naming it (``unknown="ignore"`` drops it instead, and counts it).

Soft labels (§2.1, Fig. 1): count each class over all of the image's answers and divide by the largest count:
6 answers [flood/water x 4, smoke/fire, damage: none] -> flood 1.0, smoke/fire 0.25, damage: none 0.25.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from avs.classes import LADI_CLASSES

IMAGE_COLUMNS = ("url", "img_url", "image_url", "image_uuid", "uuid", "image", "path", "shot", "clip_id")
ANNOTATOR_COLUMNS = ("WorkerId", "worker_id", "annotator", "worker")
LABEL_COLUMNS = ("Answer", "answer", "labels", "label")
CATEGORIES = ("damage", "environment", "infrastructure", "vehicles", "vehicle", "water")
SEPARATORS = re.compile(r"[|;,]")

# LADI's short label texts (as in its annotations and paper 002 Fig. 1) -> Table 1's names
LADI_ALIASES = {
    "flood/water": "flooding / water damage",
    "flooding/water damage": "flooding / water damage",
    "misc": "damage (misc)",
    "damage misc": "damage (misc)",
    "rubble": "rubble / debris",
    "debris": "rubble / debris",
    "smoke": "smoke / fire",
    "fire": "smoke / fire",
    "road-washout": "road washout",
    "snow": "snow/ice",
    "ice": "snow/ice",
    "dam": "dam / levee",
    "levee": "dam / levee",
    "power lines": "utility or power lines / electric towers",
    "utility or power lines": "utility or power lines / electric towers",
    "communication towers": "wireless / radio communication towers",
    "lake": "lake / pond",
    "pond": "lake / pond",
    "river": "river / stream",
    "stream": "river / stream",
}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


class LabelMatcher:
    """Raw label text -> class name (see the module docstring)."""

    def __init__(self, classes: Sequence[str], aliases: Mapping[str, str] | None = None) -> None:
        self.classes = tuple(classes)
        self.index: dict[str, str] = {}
        for name in self.classes:
            self.index[_key(name)] = name
        for raw, name in {**LADI_ALIASES, **dict(aliases or {})}.items():
            if name in self.classes:
                self.index.setdefault(_key(raw), name)

    def __call__(self, label: str) -> str | None:
        text = label.strip()
        if not text:
            return None
        hit = self.index.get(_key(text))
        if hit is not None:
            return hit
        head, sep, rest = text.partition(":")
        if sep and head.strip().lower() in CATEGORIES:
            if _key(rest) == "none":  # "damage:none" -> "damage: none"; "vehicles:none" -> "vehicle: none"
                return self.index.get(_key(head.strip().lower().removesuffix("s") + "none")) or self.index.get(
                    _key(head + "none")
                )
            return self.index.get(_key(rest))
        return None


def _column(fields: Sequence[str], wanted: Sequence[str], what: str, path: str) -> str:
    lower = {f.lower(): f for f in fields}
    for name in wanted:
        if name.lower() in lower:
            return lower[name.lower()]
    raise ValueError(f"{path}: no {what} column (one of {list(wanted)}); columns are {list(fields)}")


def read_answers(
    path: str | Path,
    classes: Sequence[str] = LADI_CLASSES,
    aliases: Mapping[str, str] | None = None,
    unknown: Literal["error", "ignore"] = "error",
) -> dict[str, list[list[str]]]:
    """``{image: [[class names of one answer], ...]}`` in file order; an answer row with no label keeps an empty
    list (it still counts as an answer). Unknown labels raise (with the first few named) unless ``ignore``."""
    path = str(path)
    match = LabelMatcher(classes, aliases)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(8192)
        fh.seek(0)
        delimiter = "\t" if path.endswith((".tsv", ".tab")) or sample.count("\t") > sample.count(",") else ","
        reader = csv.DictReader(fh, delimiter=delimiter)
        fields = reader.fieldnames or []
        image_col = _column(fields, IMAGE_COLUMNS, "image", path)
        label_col = _column(fields, LABEL_COLUMNS, "label / Answer", path)
        out: dict[str, list[list[str]]] = {}
        missing: Counter[str] = Counter()
        for line, row in enumerate(reader, start=2):
            image = (row.get(image_col) or "").strip()
            if not image:
                raise ValueError(f"{path}:{line}: empty {image_col}")
            names = []
            for raw in SEPARATORS.split(row.get(label_col) or ""):
                if not raw.strip():
                    continue
                name = match(raw)
                if name is None:
                    missing[raw.strip()] += 1
                elif name not in names:
                    names.append(name)
            out.setdefault(image, []).append(names)
    if missing and unknown == "error":
        top = ", ".join(f"{k!r} x{v}" for k, v in missing.most_common(5))
        raise ValueError(
            f"{path}: {sum(missing.values())} label(s) match no class ({top}); pass aliases or unknown='ignore'"
        )
    return out


def soft_labels(answers: Iterable[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """§2.1: occurrences of each class over the image's answers, divided by the largest count -> ``(classes,)``
    float32 in [0, 1] (all zero when no answer names a class)."""
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros(len(classes), np.float32)
    for answer in answers:
        for name in answer:
            if name not in index:
                raise ValueError(f"soft_labels: {name!r} is not one of the classes")
            counts[index[name]] += 1
    top = counts.max(initial=0.0)
    return counts / top if top > 0 else counts


def soft_label_table(
    answers: Mapping[str, Sequence[Sequence[str]]], classes: Sequence[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(images, ``(images, classes)`` soft labels, ``(images,)`` answers per image) for every image."""
    images = list(answers)
    y = np.stack([soft_labels(answers[i], classes) for i in images]) if images else np.zeros((0, len(classes)))
    return images, y.astype(np.float32), np.asarray([len(answers[i]) for i in images], np.int32)


# ------------------------------------------------------------------------------------------------ dataset folder

DATASET_NAME = "ladi"
ANSWER_FILES = ("annotations.csv", "annotations.tsv", "answers.csv", "answers.tsv")
SHOT_TRUTH_FILES = ("shots.csv", "shots.tsv")


def _split_of(image_id: str, val_fraction: float, seed: int) -> str:
    """A stable 80 / 20 split (002 §3 (4)): the image's hash, not the file order, decides."""
    import hashlib

    digest = hashlib.blake2b(f"{seed}:{image_id}".encode(), digest_size=8).digest()
    return "val" if int.from_bytes(digest, "big") / 2**64 < val_fraction else "train"


def read_shot_truth(path: str | Path, classes: Sequence[str] = LADI_CLASSES) -> dict[str, list[str]]:
    """``shot, labels`` (labels separated by ``|``, ``;`` or ``,``) -> ``{shot stem: [class names]}``; a shot
    with no label is a negative for every class."""
    answers = read_answers(path, classes)
    return {Path(k).stem: sorted({c for answer in v for c in answer}) for k, v in answers.items()}


def read_ladi(
    root: str | Path,
    answers: str | Path | None = None,
    classes: Sequence[str] = LADI_CLASSES,
    val_fraction: float = 0.2,
    seed: int = 0,
    unknown: Literal["error", "ignore"] = "error",
):
    """A LADI-style folder -> a manifest (``avs.data.manifest``)::

        images/**.jpg|png       the still images (002 §2.1: LADI's aerial photos)
        annotations.csv         one row per annotator answer (``read_answers``: LADI's published layout or
                                ``image, annotator, labels``); the image column holds a file name or URL,
                                matched to ``images/`` by its file name
        shots/*.mp4             optional test shots (002 §2.5: decoded at 10 fps by the extraction preset)
        shots.csv               their truth, ``shot, labels`` (optional: shots without it are unlabelled)

    Images: clip_id ``image/<stem>``, ``labels`` = every answer's class names *with repeats* (one entry per
    annotator vote: the soft label of §2.1 is count / largest count over this list, ``avs.train.data``'s
    ``target: soft``), split ``train`` / ``val`` by a stable hash (002 §3 (4): 80 / 20). Shots: clip_id
    ``shot/<stem>``, labels = the truth's classes once each, split ``test``. An image named in the answers
    but missing from ``images/`` is an error naming it; an image without answers is left out (and counted in
    the error message only if no image has answers).
    """
    from avs.data.manifest import manifest_from_records
    from avs.data.probe import VIDEO_EXTENSIONS
    from avs.decode.image import IMAGE_EXTENSIONS

    root = Path(root)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"read_ladi: val_fraction must be in [0, 1), got {val_fraction}")
    if answers is None:
        found = [root / n for n in ANSWER_FILES if (root / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{root}: no annotator answers ({' / '.join(ANSWER_FILES)}); pass answers=PATH")
        answers = found[0]
    votes = read_answers(answers, classes, unknown=unknown)
    images_dir = root / "images"
    files = {}
    if images_dir.is_dir():
        for p in sorted(images_dir.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
                files.setdefault(p.name, p)
    records = []
    missing = []
    for image, image_answers in votes.items():
        name = image.rstrip("/").rsplit("/", 1)[-1]
        path = files.get(name)
        if path is None:
            missing.append(image)
            continue
        stem = str(path.relative_to(images_dir).with_suffix("")).replace(os.sep, "/")
        records.append(
            {
                "clip_id": f"image/{stem}",
                "path": str(path.resolve()),
                "video_path": str(path.resolve()),
                "duration_s": 0.0,
                "labels": [c for answer in image_answers for c in answer],
                "split": _split_of(stem, val_fraction, seed),
                "dataset": DATASET_NAME,
                "label_kind": "weak",  # image-level labels, no times
            }
        )
    if missing:
        raise FileNotFoundError(
            f"{answers}: {len(missing)} annotated image(s) not found under {images_dir} (first: {missing[:3]})"
        )
    shots_dir = root / "shots"
    if shots_dir.is_dir():
        truth_file = next((root / n for n in SHOT_TRUTH_FILES if (root / n).is_file()), None)
        truth = read_shot_truth(truth_file, classes) if truth_file else {}
        for p in sorted(shots_dir.iterdir()):
            if not (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS):
                continue
            labels = truth.get(p.stem)
            records.append(
                {
                    "clip_id": f"shot/{p.stem}",
                    "path": str(p.resolve()),
                    "video_path": str(p.resolve()),
                    "labels": labels or [],
                    "split": "test",
                    "dataset": DATASET_NAME,
                    "label_kind": "weak" if labels is not None else "unlabeled",
                }
            )
    if not records:
        raise ValueError(f"{root}: no annotated image and no shot found")
    return manifest_from_records(records)
