"""Pascal VOC 2007 classification (paper 001's transfer task): a VOC folder -> a manifest, and its per-class
truth with the "difficult" flags the devkit skips.

    manifest = read_voc("VOCdevkit/VOC2007")                 # one row per image of every split found
    flags = read_voc_flags("VOCdevkit/VOC2007", "test")      # {image id: (20,) int8 of 1 / -1 / 0}

Layout (the devkit's): ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml`` (``<object><name>`` and
``<difficult>``), ``ImageSets/Main/<class>_<split>.txt`` (lines ``<id> <flag>``: 1 the image holds the class,
-1 it does not, 0 only "difficult" instances of it). Where a split's ImageSets files are missing, the flags are
derived from the annotations as the devkit derives them (a non-difficult object -> 1, only difficult ones -> 0,
none -> -1), with the split's image list from ``ImageSets/Main/<split>.txt``.

Manifest rows: clip_id ``voc/<id>``, ``labels`` = the classes flagged 1 (multi-label, ``target: multi_hot``),
``split`` = the VOC split (``train``, ``val``, ``test``; an image in several lists keeps the first of
``SPLITS``), ``label_kind`` weak. Difficult flags are not in the manifest: ``avs evaluate --labels VOC_ROOT``
reads them (``read_voc_flags``) and leaves those images out of that class's AP, as the devkit does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from avs.classes import VOC_CLASSES

DATASET_NAME = "voc2007"
SPLITS = ("train", "val", "test")  # trainval = train + val


def is_voc_root(path: str | Path) -> bool:
    p = Path(path)
    return (p / "JPEGImages").is_dir() and (p / "ImageSets" / "Main").is_dir()


def _split_ids(root: Path, split: str) -> list[str] | None:
    f = root / "ImageSets" / "Main" / f"{split}.txt"
    if not f.is_file():
        return None
    return [line.split()[0] for line in f.read_text().splitlines() if line.strip()]


def read_annotation(path: str | Path) -> list[tuple[str, bool]]:
    """``Annotations/<id>.xml`` -> ``[(class name, difficult), ...]`` per object."""
    try:
        root = ET.parse(str(path)).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not a VOC annotation ({exc})") from None
    out = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        out.append((name, difficult))
    return out


def flags_from_annotation(objects: list[tuple[str, bool]], classes=VOC_CLASSES) -> np.ndarray:
    """The devkit's image-level flags from the objects: 1 if a non-difficult instance, 0 if only difficult ones,
    -1 if none; ``(classes,)`` int8."""
    flags = np.full(len(classes), -1, np.int8)
    index = {c: i for i, c in enumerate(classes)}
    for name, difficult in objects:
        i = index.get(name)
        if i is None:
            raise ValueError(f"unknown VOC class {name!r}; known: {list(classes)}")
        flags[i] = max(flags[i], 0 if difficult else 1)
    return flags


def read_voc_flags(root: str | Path, split: str, classes=VOC_CLASSES) -> dict[str, np.ndarray]:
    """``{image id: (classes,) int8 flags}`` of one split (``trainval`` too), from ImageSets/Main/<class>_<split>.txt
    or, where those are missing, from the annotations of the split's images."""
    root = Path(root)
    files = [root / "ImageSets" / "Main" / f"{c}_{split}.txt" for c in classes]
    if all(f.is_file() for f in files):
        out: dict[str, np.ndarray] = {}
        for j, f in enumerate(files):
            for n, line in enumerate(f.read_text().splitlines(), start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
                    raise ValueError(f"{f}:{n}: expected '<image id> <1|-1|0>', got {line!r}")
                out.setdefault(parts[0], np.full(len(classes), -1, np.int8))[j] = int(parts[1])
        return out
    ids = _split_ids(root, split)
    if ids is None:
        raise FileNotFoundError(f"{root}: no ImageSets/Main/{split}.txt and no <class>_{split}.txt files")
    return {i: flags_from_annotation(read_annotation(root / "Annotations" / f"{i}.xml"), classes) for i in ids}


def read_voc(root: str | Path, splits: tuple[str, ...] = SPLITS, classes=VOC_CLASSES):
    """A VOC 2007 folder -> a manifest (``avs.data.manifest``) of the images of ``splits`` that exist there."""
    from avs.data.manifest import manifest_from_records

    root = Path(root)
    if not is_voc_root(root):
        raise FileNotFoundError(f"{root}: not a VOC folder (needs JPEGImages/ and ImageSets/Main/)")
    records, seen, missing = [], set(), []
    for split in splits:
        if (
            _split_ids(root, split) is None
            and not (root / "ImageSets" / "Main" / f"{classes[0]}_{split}.txt").is_file()
        ):
            continue
        for image_id, flags in read_voc_flags(root, split, classes).items():
            if image_id in seen:
                continue
            seen.add(image_id)
            path = root / "JPEGImages" / f"{image_id}.jpg"
            if not path.is_file():
                missing.append(image_id)
                continue
            records.append(
                {
                    "clip_id": f"voc/{image_id}",
                    "path": str(path.resolve()),
                    "video_path": str(path.resolve()),
                    "duration_s": 0.0,
                    "labels": [c for c, f in zip(classes, flags, strict=True) if f == 1],
                    "split": split,
                    "dataset": DATASET_NAME,
                    "label_kind": "weak",
                }
            )
    if missing:
        raise FileNotFoundError(f"{root}/JPEGImages: {len(missing)} listed image(s) missing (first: {missing[:3]})")
    if not records:
        raise ValueError(f"{root}: no split of {list(splits)} found in ImageSets/Main")
    return manifest_from_records(records)
