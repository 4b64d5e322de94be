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
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from avs.classes import LADI_CLASSES

IMAGE_COLUMNS = ("url", "img_url", "image_url", "image_uuid", "uuid", "image", "path")
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
