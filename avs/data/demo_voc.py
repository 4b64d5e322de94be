"""A generated Pascal VOC 2007 layout (paper 001's transfer task on CPU): small photos-like scenes holding one to
three objects of six VOC classes, some of them "difficult", with the devkit's files.

    write_voc_demo("demo/voc")   # VOC2007/: JPEGImages, Annotations, ImageSets/Main/<split>.txt + <class>_<split>.txt

Drawn classes (``DRAWN``; the other 14 VOC classes are in every ImageSets file, always -1):
    aeroplane   a grey swept wing on sky blue       boat        a brown hull and white sail on water
    car         a red / blue body with two wheels   person      a skin-tone head on a dark body
    pottedplant a green crown on a terracotta pot   tvmonitor   a dark frame around a bright screen

An object drawn at less than ``DIFFICULT_SCALE`` of its normal size is marked ``<difficult>1`` (as VOC marks
objects hard to recognise); an image holding only difficult instances of a class gets flag 0 for it, which the
devkit's AP leaves out. Splits: train / val / test, ``SPLIT_SIZES`` by default. Deterministic for a seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from avs.classes import VOC_CLASSES

DRAWN = ("aeroplane", "boat", "car", "person", "pottedplant", "tvmonitor")
SPLIT_SIZES = {"train": 60, "val": 30, "test": 60}
IMAGE_SIZE = (96, 128)  # (H, W)
DIFFICULT_SCALE = 0.6
DIFFICULT_RATE = 0.15


def _fill(img, mask, color) -> None:
    img[mask] = color


def _draw(img: np.ndarray, name: str, cy: float, cx: float, s: float, rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    dy, dx = (yy - cy) / s, (xx - cx) / s
    if name == "aeroplane":
        _fill(img, (np.abs(dy) < 2) & (np.abs(dx) < 14), (170, 170, 175))  # fuselage
        _fill(img, (dx > -4) & (dx < 4) & (np.abs(dy) < 10 - np.abs(dx) * 1.5), (150, 150, 160))  # wings
    elif name == "boat":
        _fill(img, (dy > 0) & (dy < 4) & (np.abs(dx) < 12 - dy), (110, 70, 30))
        _fill(img, (dy < 0) & (dy > -12) & (dx > 0) & (dx < 8 + dy * 0.6), (245, 245, 240))
    elif name == "car":
        color = (200, 30, 30) if rng.random() < 0.5 else (30, 60, 200)
        _fill(img, (np.abs(dy) < 3) & (np.abs(dx) < 10), color)
        _fill(img, (dy > -6) & (dy < -3) & (np.abs(dx) < 5), color)
        for wx in (-6, 6):
            _fill(img, (dy - 3) ** 2 + (dx - wx) ** 2 < 5, (20, 20, 20))
    elif name == "person":
        _fill(img, (dy + 9) ** 2 + dx**2 < 9, (225, 180, 150))
        _fill(img, (dy > -6) & (dy < 8) & (np.abs(dx) < 3.5), (40, 40, 70))
    elif name == "pottedplant":
        _fill(img, (dy > 2) & (dy < 8) & (np.abs(dx) < 4 - (dy - 2) * 0.2), (180, 90, 50))
        _fill(img, (dy + 2) ** 2 / 25 + dx**2 / 36 < 1, (40, 140, 50))
    elif name == "tvmonitor":
        _fill(img, (np.abs(dy) < 7) & (np.abs(dx) < 10), (25, 25, 25))
        _fill(img, (np.abs(dy) < 5) & (np.abs(dx) < 8), (120, 200, 230))
    else:
        raise ValueError(f"no drawing for {name!r}")


def render(objects: list[tuple[str, float]], rng: np.random.Generator, size=IMAGE_SIZE) -> np.ndarray:
    """``objects`` = [(class, scale)] -> an ``(H, W, 3)`` uint8 scene (sky / water / floor by the first class)."""
    h, w = size
    first = objects[0][0] if objects else ""
    base = {"aeroplane": (150, 190, 235), "boat": (60, 110, 160)}.get(first, (190, 180, 160))
    img = np.clip(np.asarray(base) + rng.normal(0, 8, (h, w, 3)), 0, 255)
    for k, (name, scale) in enumerate(objects):
        cx = (k + 0.5 + rng.uniform(-0.2, 0.2)) * w / len(objects)
        cy = rng.uniform(0.35, 0.65) * h
        _draw(img, name, cy, cx, scale * min(h, w) / 40, rng)
    return np.clip(img, 0, 255).astype(np.uint8)


def _xml(image_id: str, size, objects: list[tuple[str, bool]]) -> str:
    h, w = size
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{int(d)}</difficult>"
        "</object>"
        for n, d in objects
    )
    return (
        f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>\n"
    )


def write_voc_demo(
    root: str | os.PathLike, sizes: dict[str, int] | None = None, seed: int = 0, *, verbose: bool = False
) -> dict[str, Any]:
    """Write ``root/VOC2007`` (``avs.data.read_voc`` reads it); return its path and counts per split."""
    from PIL import Image

    voc = Path(root) / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {**SPLIT_SIZES, **(sizes or {})}
    n = 0
    counts: dict[str, int] = {}
    for split, count in sizes.items():
        ids, flags = [], []
        for _ in range(count):
            n += 1
            image_id = f"{n:06d}"
            names = list(rng.choice(DRAWN, size=int(rng.integers(1, 4)), replace=False))
            objects = [(c, DIFFICULT_SCALE * 0.8 if rng.random() < DIFFICULT_RATE else 1.0) for c in names]
            Image.fromarray(render(objects, rng)).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
            marked = [(c, scale < DIFFICULT_SCALE) for c, scale in objects]
            (voc / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, IMAGE_SIZE, marked))
            row = {c: -1 for c in VOC_CLASSES}
            for c, difficult in marked:
                row[c] = max(row[c], 0 if difficult else 1)
            ids.append(image_id)
            flags.append(row)
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for c in VOC_CLASSES:
            lines = "".join(f"{i} {f[c]:2d}\n" for i, f in zip(ids, flags, strict=True))
            (voc / "ImageSets" / "Main" / f"{c}_{split}.txt").write_text(lines)
        counts[split] = count
    if verbose:
        print(f"[avs demo-data] voc: {sum(counts.values())} images {counts} in {voc}")
    return {"root": str(voc), "splits": counts, "classes": list(DRAWN)}
