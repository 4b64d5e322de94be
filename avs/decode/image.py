"""Still images (JPEG, PNG, ...) as one-frame "videos", so that image datasets (paper 002's LADI aerial photos)
go through the video branch and its frames / CLIP extractors unchanged.

    batch = read_image("img.jpg", size=360)   # FrameBatch: frames (1, H, W, 3) uint8, timestamps [0.0], indices [0]

``size``: ``(height, width)``, an int (the shorter side in pixels, aspect kept, as ``video.short_side``) or
``None`` (as stored). Decoding is PIL's (EXIF orientation applied, palette / grey / alpha converted to RGB);
PIL's decompression-bomb guard stays on: an image over ``MAX_PIXELS`` is refused as corrupt media.
"""

from __future__ import annotations

import os

import numpy as np

from avs.decode.errors import CorruptMedia, EmptyFile, MissingFile
from avs.decode.video import FrameBatch, resize_frames

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 16384 * 16384  # 268 M pixels: larger than any aerial frame of LADI (4000 x 3000 at most)


def is_image_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def read_image(path: str | os.PathLike, size: tuple[int, int] | int | None = None) -> FrameBatch:
    """One still image -> a one-frame ``FrameBatch`` (timestamp 0 s, index 0)."""
    from PIL import Image, ImageOps

    path = str(path)
    if not os.path.exists(path):
        raise MissingFile(f"file not found: {path}")
    if os.path.getsize(path) == 0:
        raise EmptyFile(f"file is empty (0 bytes): {path}")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL's UnidentifiedImageError, truncated files, bombs
        raise CorruptMedia(f"cannot decode image {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(size, int):
        h, w = rgb.shape[:2]
        scale = size / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    frames = resize_frames(rgb[None], size)
    return FrameBatch(frames, np.zeros(1, np.float64), np.zeros(1, np.int64))
