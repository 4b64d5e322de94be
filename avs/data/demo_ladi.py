"""A generated LADI-style set (paper 002): aerial-looking images where classes co-occur and annotators disagree,
plus test "shots", so the multi-label recipe runs end to end on CPU (``scripts/demo_multilabel.sh``).

    write_ladi_demo("demo/ladi")    # images/*.jpg, annotations.csv (LADI layout), shots/*.mp4, shots.csv

What is drawn (each class independently present with ``DEMO_PRESENCE``, so any subset co-occurs):
    trees                      dark green discs              road          a grey band with a centre line
    building                   light rectangles, dark edge   car           small red / blue boxes
    flooding / water damage    a brown-blue water body       smoke / fire  a grey plume with an orange core

Annotators (3-5 per image, 002 §2.1): one answer per annotator and category (damage, environment,
infrastructure, vehicle), as LADI's per-category questions: each present class of the category is named with
probability ``HIT_RATE``, an absent one of the category with ``FALSE_RATE``; an answer naming nothing is
``<category>: none``. About ``OUTLIER_RATE`` of the images are outliers (002 Fig. 5: blank or noise frames)
with answers as careless as the rest: what §2.4's outlier removal is for. Deterministic for a seed.
"""

from __future__ import annotations

import csv
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

DEMO_CATEGORIES = {  # LADI's category -> the demo's classes of it (Table 1 names)
    "damage": ("flooding / water damage", "smoke / fire"),
    "environment": ("trees",),
    "infrastructure": ("building", "road"),
    "vehicle": ("car",),
}
DEMO_CLASSES = tuple(c for names in DEMO_CATEGORIES.values() for c in names)
DEMO_PRESENCE = {
    "flooding / water damage": 0.3,
    "smoke / fire": 0.2,
    "trees": 0.5,
    "building": 0.45,
    "road": 0.4,
    "car": 0.3,
}
HIT_RATE = 0.8
FALSE_RATE = 0.05
OUTLIER_RATE = 0.05
IMAGE_SIZE = (96, 128)  # (H, W)
SHOT_FPS = 10.0  # 002 §2.5 decodes shots at 10 fps; written at the same rate


def _disc(img: np.ndarray, cy: float, cx: float, r: float, color: Any) -> None:
    h, w = img.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = color


def _rect(img: np.ndarray, y0: int, x0: int, y1: int, x1: int, color: Any) -> None:
    img[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = color


def render(present: set[str], rng: np.random.Generator, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """One scene ``(H, W, 3)`` uint8 holding the ``present`` classes."""
    h, w = size
    base = np.array([150, 140, 100]) + rng.integers(-15, 16, 3)  # bare ground
    img = np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255)
    s = min(h, w) / 96
    if "flooding / water damage" in present:
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        for _ in range(6):
            _disc(img, cy + rng.normal(0, 10 * s), cx + rng.normal(0, 14 * s), rng.uniform(12, 22) * s, (70, 95, 120))
    if "road" in present:
        y = int(rng.uniform(0.2, 0.8) * h)
        _rect(img, y - int(6 * s), 0, y + int(6 * s), w, (85, 85, 85))
        img[y, :: max(1, int(6 * s))] = (230, 230, 200)
    if "trees" in present:
        for _ in range(int(rng.integers(4, 9))):
            _disc(img, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 8) * s, (30, 90 + rng.integers(0, 30), 35))
    if "building" in present:
        for _ in range(int(rng.integers(1, 4))):
            y0, x0 = int(rng.uniform(0, h - 20 * s)), int(rng.uniform(0, w - 24 * s))
            bh, bw = int(rng.uniform(12, 20) * s), int(rng.uniform(14, 24) * s)
            _rect(img, y0, x0, y0 + bh, x0 + bw, (40, 40, 45))
            _rect(img, y0 + 2, x0 + 2, y0 + bh - 2, x0 + bw - 2, (200, 195, 185))
    if "car" in present:
        for _ in range(int(rng.integers(2, 5))):
            y0, x0 = int(rng.uniform(0, h - 5 * s)), int(rng.uniform(0, w - 8 * s))
            color = (200, 30, 30) if rng.random() < 0.5 else (30, 60, 200)
            _rect(img, y0, x0, y0 + int(4 * s), x0 + int(7 * s), color)
    if "smoke / fire" in present:
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        for k in range(5):
            _disc(img, cy - k * 5 * s, cx + k * 3 * s, (14 - k) * s, (185, 185, 190))
        _disc(img, cy + 4 * s, cx, 6 * s, (240, 120, 20))
    return np.clip(img, 0, 255).astype(np.uint8)


def _outlier(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    if rng.random() < 0.5:
        return np.full((*size, 3), rng.integers(0, 40), np.uint8)  # a black frame
    return rng.integers(0, 256, (*size, 3)).astype(np.uint8)  # noise


def annotate(present: set[str], rng: np.random.Generator, n_annotators: int) -> list[tuple[str, str]]:
    """``[(worker, answer), ...]``: one answer per annotator and category (see the module docstring)."""
    rows = []
    for a in range(n_annotators):
        worker = f"W{int(rng.integers(0, 40)):03d}"
        for category, names in DEMO_CATEGORIES.items():
            said = [
                c
                for c in names
                if (c in present and rng.random() < HIT_RATE) or (c not in present and rng.random() < FALSE_RATE)
            ]
            none = "vehicle: none" if category == "vehicle" else f"{category}: none"
            rows.append((f"{worker}-{a}", "|".join(said) if said else none))
    return rows


def _draw_present(rng: np.random.Generator) -> set[str]:
    return {c for c, p in DEMO_PRESENCE.items() if rng.random() < p}


def _write_shot(path: Path, canvas: np.ndarray, frames: int, size: tuple[int, int], codec: str) -> None:
    """A slow pan over ``canvas`` -> an MP4 of ``frames`` frames at ``SHOT_FPS``."""
    import av

    h, w = size
    dy, dx = canvas.shape[0] - h, canvas.shape[1] - w
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(SHOT_FPS).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec in ("h264", "libx264"):
            stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(frames):
            t = i / max(1, frames - 1)
            y, x = int(round(t * dy)), int(round(t * dx))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas[y : y + h, x : x + w]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_ladi_demo(
    root: str | os.PathLike,
    n_images: int = 240,
    n_shots: int = 24,
    seed: int = 0,
    *,
    shot_seconds: float = 1.5,
    verbose: bool = False,
) -> dict[str, Any]:
    """Write the demo set under ``root`` (``avs.data.read_ladi`` reads it); return paths and counts.
    The defaults (240 images of 128 x 96, 24 shots of 1.5 s) take a few seconds and ~3 MB."""
    from PIL import Image

    from avs.testing.media import pick_video_codec

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "shots").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    answers = []
    outliers = 0
    for i in range(n_images):
        name = f"img{i:04d}.jpg"
        present = _draw_present(rng)
        if rng.random() < OUTLIER_RATE:
            img, outliers = _outlier(rng, IMAGE_SIZE), outliers + 1
        else:
            img = render(present, rng)
        Image.fromarray(img).save(root / "images" / name, quality=90)
        for worker, answer in annotate(present, rng, int(rng.integers(3, 6))):
            answers.append((f"https://ladi.example/demo/{name}", worker, answer))
    with open(root / "annotations.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["url", "WorkerId", "Answer"])  # LADI's published columns
        out.writerows(answers)
    codec = pick_video_codec("h264")
    truth = []
    frames = max(1, int(round(shot_seconds * SHOT_FPS)))
    for i in range(n_shots):
        present = _draw_present(rng)
        h, w = IMAGE_SIZE
        canvas = render(present, rng, (h + 16, w + 24))  # the pan keeps most of every object in view
        _write_shot(root / "shots" / f"shot{i:03d}.mp4", canvas, frames, IMAGE_SIZE, codec)
        truth.append((f"shot{i:03d}", "|".join(sorted(present))))
    with open(root / "shots.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["shot", "labels"])
        out.writerows(truth)
    if verbose:
        print(
            f"[avs demo-data] ladi: {n_images} images ({outliers} outliers), {len(answers)} answers, "
            f"{n_shots} shots in {root}"
        )
    return {"root": str(root), "images": n_images, "answers": len(answers), "outliers": outliers, "shots": n_shots}
