"""Paper 001 Fig. 2: for chosen filters of a conv layer (conv3 by default) of a trained frame CNN, the images of a
frames set that activate them most.

    avs filters demo/owens_runs/pretext demo/owens_features/frames --layer conv3 --out demo/owens_filters
    -> fig2.png (one row per filter, its top 9 frames, best first), filters.csv, filters.json

A filter's activation on an image is the maximum of its feature map over positions (Zeiler & Fergus; 001 §4 cites
[37], [9]); frames are prepared exactly as the run's training task prepared validation frames (decode, resize to
its image size, ImageNet normalisation). Without ``--filters`` the ``--n-filters`` filters whose activations
spread most across the images (largest standard deviation) are shown: a dead or constant filter has no "top"
images worth looking at. At most ``--max-images`` frames are scored (the first ones of the set, part by part).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def layer_activations(model, layer: str, x) -> np.ndarray:
    """``x`` ``(rows, 3, H, W)`` -> the per-filter maximum over positions of ``layer``'s output ``(rows, C)``."""
    import torch

    if not hasattr(model, "conv_layer"):
        raise ValueError(
            f"{type(model).__name__} has no named conv layers (paper 001's frame-alexnet / frame-resnet18)"
        )
    got: list[torch.Tensor] = []
    handle = model.conv_layer(layer).register_forward_hook(lambda _m, _i, out: got.append(out.detach().clone()))
    try:
        with torch.inference_mode():
            model.forward_features(torch.as_tensor(x, dtype=torch.float32))
    finally:
        handle.remove()
    fmap = got[0]  # (rows, C, h, w)
    return fmap.flatten(2).amax(dim=2).float().numpy()


def choose_filters(acts: np.ndarray, filters: Sequence[int] | None, n_filters: int) -> list[int]:
    """The given filters (checked against ``acts`` ``(rows, C)``) or the ``n_filters`` of largest spread."""
    n_channels = acts.shape[1]
    if filters:
        bad = [f for f in filters if not 0 <= f < n_channels]
        if bad:
            raise ValueError(f"filters {bad} out of range: the layer has {n_channels} filters (0-{n_channels - 1})")
        return list(filters)
    spread = acts.std(axis=0)
    return [int(f) for f in np.argsort(-spread, kind="stable")[:n_filters]]


def top_images(acts: np.ndarray, filters: Sequence[int], top: int) -> dict[int, list[int]]:
    """Per filter, the row indices of its ``top`` largest activations, largest first (ties: the earlier row)."""
    return {f: [int(i) for i in np.argsort(-acts[:, f], kind="stable")[:top]] for f in filters}


def score_frames(run: str, frames: str, layer: str, max_images: int, batch_size: int = 32):
    """(keys [(clip_id, segment)], activations ``(rows, C)``, run description) of the first ``max_images``
    frames of the set ``frames`` under ``run``'s model."""
    import pyarrow.parquet as pq

    from avs.cluster.kmeans import feature_parts
    from avs.models.checkpoint import load_model
    from avs.models.files import model_file
    from avs.train.data import frames_to_x
    from avs.train.predict import task_of

    path = model_file(run)
    model, meta = load_model(path)
    model.eval()
    spec = getattr(task_of(meta), "spec", None)
    if spec is None or spec.family != "frame":
        raise ValueError(f"{run} was not trained on frames (its task reads {getattr(spec, 'family', None)!r})")
    storage, parts = feature_parts(frames)
    keys: list[tuple[str, int]] = []
    acts: list[np.ndarray] = []
    for name in parts:
        table = pq.read_table(storage.path(name), filesystem=storage.fs, columns=["clip_id", "segment", "image"])
        table = table.slice(0, max_images - len(keys))
        for start in range(0, table.num_rows, batch_size):
            chunk = table.slice(start, batch_size)
            images = chunk.column("image").to_pylist()
            ok = [i for i, b in enumerate(images) if b]
            x = frames_to_x([images[i] for i in ok], spec)
            acts.append(layer_activations(model, layer, x))
            ids, segs = chunk.column("clip_id").to_pylist(), chunk.column("segment").to_pylist()
            keys += [(str(ids[i]), int(segs[i])) for i in ok]
        if len(keys) >= max_images:
            break
    if not keys:
        raise ValueError(f"{frames}: no frames to score")
    about = {
        "run": run,
        "model_file": path,
        "model": meta.get("model_name"),
        "epoch": meta.get("extra", {}).get("epoch"),
    }
    return keys, np.concatenate(acts), about


def write_filter_grid(
    run: str,
    frames: str,
    out: str,
    layer: str = "conv3",
    filters: Sequence[int] | None = None,
    n_filters: int = 6,
    top: int = 9,
    max_images: int = 5000,
) -> dict[str, Any]:
    """Fig. 2 into ``out`` (fig2.png, filters.csv, filters.json); returns the summary."""
    from avs.cluster.gallery import frame_tile, read_frames, render

    if top < 1 or n_filters < 1 or max_images < 1:
        raise ValueError("top, n_filters and max_images must be >= 1")
    keys, acts, about = score_frames(run, frames, layer, max_images)
    chosen = choose_filters(acts, filters, n_filters)
    best = top_images(acts, chosen, top)
    jpegs = read_frames(frames, [keys[i] for rows in best.values() for i in rows])
    tile = 96
    grid = [(f"{layer} #{f}", [frame_tile(jpegs.get(keys[i]), tile) for i in best[f]]) for f in chosen]
    title = f"{about['model']} {layer}: top {top} of {len(keys)} frames per filter ({Path(run).name})"
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "fig2.png").write_bytes(render(grid, tile, title))
    with open(dest / "filters.csv", "w") as fh:
        fh.write("filter,rank,clip_id,segment,activation\n")
        for f in chosen:
            for rank, i in enumerate(best[f], 1):
                fh.write(f"{f},{rank},{keys[i][0]},{keys[i][1]},{acts[i, f]:.6g}\n")
    summary = {
        **about,
        "layer": layer,
        "filters": chosen,
        "layer_filters": int(acts.shape[1]),
        "images": len(keys),
        "top": top,
        "figure": str(dest / "fig2.png"),
    }
    (dest / "filters.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


# ------------------------------------------------------------------------------------------------- CLI
def add_filters_args(p) -> None:
    p.add_argument("run", help="a trained run folder of `avs train` (or its model file): frame-alexnet / -resnet18")
    p.add_argument("frames", help="a frames shard folder (e.g. FEATS/frames)")
    p.add_argument("--out", required=True, help="output folder (fig2.png, filters.csv, filters.json)")
    p.add_argument("--layer", default="conv3", choices=[f"conv{i}" for i in range(1, 6)], help="conv layer")
    p.add_argument("--filters", default=None, help="filter indices, comma-separated (default: the most spread)")
    p.add_argument("--n-filters", type=int, default=6, help="filters shown without --filters")
    p.add_argument("--top", type=int, default=9, help="images per filter (001 Fig. 2: 9)")
    p.add_argument("--max-images", type=int, default=5000, help="frames scored (the first ones of the set)")


def cmd_filters(args) -> int:
    import sys

    try:
        filters = [int(f) for f in args.filters.split(",") if f.strip()] if args.filters else None
        summary = write_filter_grid(
            args.run, args.frames, args.out, args.layer, filters, args.n_filters, args.top, args.max_images
        )
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"avs filters: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['layer']} filters {summary['filters']} of {summary['images']} frames -> {summary['figure']}")
    return 0
