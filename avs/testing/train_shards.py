"""Tiny feature shards in the layout of ``avs extract``, for training tests and engine examples.

    counts = write_tiny_shards(root)      # root/logmel, root/frames, root/clip_{a,b,c}, root/zeroshot_x

Layout (README "Shards"): ROOT/<feature_set>/part-NNNNN.parquet with clip_id, segment, start_s, end_s, labels,
split, location and the feature column (row shape JSON in the schema metadata ``avs.shape``). The three
CLIP-like sets share part files and rows, as the extractor writes them (``clip_b`` stores its rows shuffled,
so a join must match by key). Every feature carries its class (a class-dependent offset or colour), so a model
can learn it in a few steps.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = ("bus", "park", "tram")
LOGMEL_SHAPE = (3, 16, 20)  # (channels: dB + delta + delta-delta, mels, frames)
FRAME_SHAPE = (24, 32, 3)  # stored JPEG frames (H, W, RGB)
CLIP_SETS = {"clip_a": 8, "clip_b": 6, "clip_c": 6}  # CLIP-like embedding sets: name -> dims
LOCATIONS = ("lyon-1", "lyon-2", "paris-1", "paris-2", "prague-1")


def _clips(n_per_class_split: int) -> list[tuple[str, str, str]]:
    """``(clip_id, label, split)``: per class and split ``n`` clips."""
    out = []
    for split in ("train", "evaluate"):
        for c in CLASSES:
            for k in range(n_per_class_split):
                out.append((f"{c}-{split}-{k}", c, split))
    return out


def _write(folder: Path, part: int, cols: dict, shape, extra_meta: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {b"avs.shape": json.dumps(list(shape)).encode(), **(extra_meta or {})}
    pq.write_table(pa.table(cols).replace_schema_metadata(meta), folder / f"part-{part:05d}.parquet")


def vector_column(x: np.ndarray) -> pa.FixedSizeListArray:
    """``(rows, *shape)`` -> ``fixed_size_list<float32>[prod(shape)]`` (how avs stores a feature)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), int(np.prod(x.shape[1:])))


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_tiny_shards(
    root: str | Path, segments: int = 3, frames: int = 2, seed: int = 0, clips_per_class: int = 2
) -> dict[str, int]:
    """logmel (``LOGMEL_SHAPE``, ``segments`` rows per clip), frames (JPEG), three CLIP-like sets and a zero-shot
    set (``frames`` rows per clip), two parts each; returns the row counts ``{"logmel": n, "frames": n}``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    image_rng = np.random.default_rng(seed + 1)  # its own stream: the other sets keep their values
    clips = _clips(clips_per_class)
    location = {cid: LOCATIONS[i % len(LOCATIONS)] for i, (cid, _, _) in enumerate(clips)}
    parts = [clips[0::2], clips[1::2]]
    counts = {"logmel": 0, "frames": 0}
    zs_classes = list(reversed(CLASSES))  # stored in another order than CLASSES: predict must reorder
    for p, rows in enumerate(parts):
        # audio: one row per 1-s segment
        keys = [(cid, s, lab, split) for cid, lab, split in rows for s in range(segments)]
        counts["logmel"] += len(keys)
        y = np.asarray([CLASSES.index(k[2]) for k in keys])
        x = rng.normal(size=(len(keys), *LOGMEL_SHAPE)).astype(np.float32) * 3.0 - 40.0
        x[:, 0, :, :] += (y[:, None, None] - 1) * 6.0  # the class shows in the dB channel
        base = {
            "clip_id": pa.array([k[0] for k in keys], pa.string()),
            "segment": pa.array([k[1] for k in keys], pa.int32()),
            "start_s": pa.array([float(k[1]) for k in keys], pa.float64()),
            "end_s": pa.array([float(k[1]) + 1.0 for k in keys], pa.float64()),
            "labels": pa.array([[k[2]] for k in keys], pa.list_(pa.string())),
            "split": pa.array([k[3] for k in keys], pa.string()),
            "location": pa.array([location[k[0]] for k in keys], pa.string()),
        }
        _write(root / "logmel", p, {**base, "logmel": vector_column(x)}, LOGMEL_SHAPE)
        # video: one row per frame, frames at 2.5 s and 7.5 s
        vkeys = [(cid, f, lab, split) for cid, lab, split in rows for f in range(frames)]
        counts["frames"] += len(vkeys)
        vy = np.asarray([CLASSES.index(k[2]) for k in vkeys])
        t = [2.5 + 5.0 * k[1] for k in vkeys]
        vbase = {
            "clip_id": pa.array([k[0] for k in vkeys], pa.string()),
            "segment": pa.array([k[1] for k in vkeys], pa.int32()),
            "start_s": pa.array(t, pa.float64()),
            "end_s": pa.array(t, pa.float64()),
            "frame_index": pa.array([int(v * 10) for v in t], pa.int32()),
            "timestamp_s": pa.array(t, pa.float64()),
            "labels": pa.array([[k[2]] for k in vkeys], pa.list_(pa.string())),
            "split": pa.array([k[3] for k in vkeys], pa.string()),
            "location": pa.array([location[k[0]] for k in vkeys], pa.string()),
        }
        images = []
        for c in vy:  # the class is the dominant colour channel, plus noise
            img = image_rng.integers(0, 60, size=FRAME_SHAPE).astype(np.uint8)
            img[..., int(c)] += 150
            images.append(_jpeg(img))
        _write(root / "frames", p, {**vbase, "image": pa.array(images, pa.binary())}, FRAME_SHAPE)
        for name, dims in CLIP_SETS.items():
            e = rng.normal(size=(len(vkeys), dims)).astype(np.float32) * 0.3
            e[np.arange(len(vkeys)), vy] += 1.5
            order = rng.permutation(len(vkeys)) if name == "clip_b" else np.arange(len(vkeys))
            cols = {k: v.take(pa.array(order)) for k, v in vbase.items()}
            _write(root / name, p, {**cols, name: vector_column(e[order])}, (dims,))
        zs = rng.dirichlet(np.ones(len(CLASSES)), size=len(vkeys))
        _write(
            root / "zeroshot_x",
            p,
            {**vbase, "zeroshot_x": vector_column(zs)},
            (len(CLASSES),),
            {b"avs.extractor": json.dumps({"classes": zs_classes, "model": "RN101"}).encode()},
        )
    return counts
