"""The clustering job (``avs cluster``): feature shards -> k-means sound clusters (paper 001, section 3.3).

Writes into ``cfg.out`` (every file through a temporary name and a rename):

- ``assignments.parquet``: clip_id, segment, cluster (int32), distance (float32, squared L2 to the centroid in
  the clustering space); one row per input feature row, in input order: the pseudo-labels.
- ``centroids.parquet``: cluster (int32), size (int64), centroid (fixed_size_list<float32>[dims]) in the
  clustering space (after standardisation / PCA).
- ``transform.npz``: mean, scale, pca_A, pca_b of that space (``FeatureTransform.from_npz_bytes``), to assign
  new rows: ``transform.apply(x)`` then the nearest centroid.
- ``gallery.png``: rows of frames (or feature tiles) nearest each centroid.
- ``clusters.json``: config, its hash, k, objective, sizes, seconds, rows, dims, device (written last).
- ``config.yaml``: the final config.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import yaml

import avs
from avs.cluster.config import ClusterConfig
from avs.cluster.gallery import make_gallery
from avs.cluster.kmeans import (
    column_stats,
    feature_parts,
    fit_transform,
    gpu_available,
    load_matrix,
    nearest_rows,
    require_faiss,
    run_kmeans,
)
from avs.config import config_hash, to_dict
from avs.progress import Progress
from avs.shards.storage import Storage


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when faiss has GPU support and sees a GPU, else "cpu"; "cuda" without one is an error."""
    if device == "cpu":
        return "cpu"
    has_gpu = gpu_available()
    if device == "cuda" and not has_gpu:
        raise ValueError(
            "device=cuda but this faiss has no GPU support or sees no GPU (install a faiss GPU "
            "build instead of faiss-cpu; they provide the same module), or use --device cpu"
        )
    return "cuda" if has_gpu else "cpu"


def _vector_column(x: np.ndarray) -> pa.FixedSizeListArray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), x.shape[1])


def run_cluster(cfg: ClusterConfig, stream: TextIO | None = None) -> dict[str, Any]:
    """Cluster one feature set; write the outputs listed in the module docstring; return the summary."""
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    require_faiss()
    device = resolve_device(cfg.device)
    if cfg.frames is not None:
        feature_parts(cfg.frames)  # a missing frames folder fails before the clustering work
    out = Storage(cfg.out)
    out.makedirs()
    out.remove_stale_tmp()
    progress = Progress(total=5, what="steps", label="avs cluster", interval_s=0.0, stream=stream or sys.stderr)
    digest = config_hash(cfg)

    t = time.perf_counter()
    column = cfg.feature_column
    keys, x = load_matrix(cfg.features, column)  # x: (n_rows, dims)
    shape = json.loads(keys.schema.metadata[b"avs.shape"])
    n_rows, dims = x.shape
    if cfg.k > n_rows:
        raise ValueError(f"k={cfg.k} clusters need at least {cfg.k} rows; {cfg.features} holds only {n_rows}")
    seconds["load"] = time.perf_counter() - t
    progress.update(1, step=f"loaded {n_rows} rows x {dims} ({column})")

    t = time.perf_counter()
    y, transform = fit_transform(x, cfg.standardize, cfg.pca_dims, inplace=True)  # x is z-scored in place
    seconds["transform"] = time.perf_counter() - t
    progress.update(1, step=f"standardize={cfg.standardize} pca_dims={cfg.pca_dims} -> {transform.dims_out} dims")

    t = time.perf_counter()
    import faiss

    threads_before = faiss.omp_get_max_threads()
    if cfg.threads is not None:
        faiss.omp_set_num_threads(cfg.threads)
    try:
        result = run_kmeans(
            y,
            cfg.k,
            cfg.iterations,
            cfg.restarts,
            cfg.seed,
            use_gpu=device == "cuda",
            max_points_per_centroid=cfg.max_points_per_centroid,
        )
    finally:
        faiss.omp_set_num_threads(threads_before)
    seconds["kmeans"] = time.perf_counter() - t
    progress.update(1, step=f"k-means k={cfg.k} on {device}: objective {result.objective:.6g}")

    t = time.perf_counter()
    meta = {
        b"avs.config_hash": digest.encode(),
        b"avs.version": avs.__version__.encode(),
        b"avs.feature_column": column.encode(),
    }
    assignments = pa.table(
        {
            "clip_id": keys.column("clip_id"),
            "segment": keys.column("segment"),
            "cluster": pa.array(result.assignments, pa.int32()),
            "distance": pa.array(result.distances, pa.float32()),
        }
    ).replace_schema_metadata(meta)
    out.write_table("assignments.parquet", assignments)
    centroids = pa.table(
        {
            "cluster": pa.array(np.arange(cfg.k, dtype=np.int32)),
            "size": pa.array(result.sizes, pa.int64()),
            "centroid": _vector_column(result.centroids),
        }
    ).replace_schema_metadata({**meta, b"avs.shape": json.dumps([transform.dims_out]).encode()})
    out.write_table("centroids.parquet", centroids)
    out.write_bytes("transform.npz", transform.to_npz_bytes())
    seconds["write"] = time.perf_counter() - t
    progress.update(1, step="wrote assignments, centroids, transform")

    t = time.perf_counter()
    gallery_info: dict[str, Any] = {"kind": "none", "tiles": 0, "missing_frames": 0}
    if cfg.gallery_per_cluster > 0:
        nearest = nearest_rows(result.assignments, result.distances, cfg.k, cfg.gallery_per_cluster)
        center = scale = None
        if cfg.frames is None and not cfg.standardize:
            mu, sd = column_stats(x)  # feature tiles are drawn as z-scores
            center, scale = mu.astype(np.float32), np.where(sd > 0, sd, 1.0).astype(np.float32)
        what = "frames" if cfg.frames is not None else "feature z-scores (first tile: cluster mean)"
        title = f"{column}: k={cfg.k} sound clusters, {n_rows} rows; {what} nearest each centre"
        png, gallery_info = make_gallery(
            keys,
            nearest,
            result.sizes,
            cfg.gallery_per_cluster,
            tile_px=cfg.gallery_tile_px,
            frames=cfg.frames,
            x=x,
            assignments=result.assignments,
            shape=shape,
            center=center,
            scale=scale,
            title=title,
        )
        out.write_bytes("gallery.png", png)
    seconds["gallery"] = time.perf_counter() - t
    progress.update(1, step=f"gallery ({gallery_info['kind']}, {gallery_info['tiles']} tiles)")
    seconds["total"] = time.perf_counter() - t_start

    summary = {
        "config": to_dict(cfg),
        "config_hash": digest,
        "features": cfg.features,
        "column": column,
        "feature_shape": shape,
        "n_rows": int(n_rows),
        "dims": int(dims),
        "cluster_dims": int(transform.dims_out),
        "k": cfg.k,
        "objective": result.objective,
        "objective_per_row": result.objective / n_rows,
        "iteration_objectives": [float(v) for v in result.iteration_objectives],
        "sizes": [int(s) for s in result.sizes],
        "empty_clusters": int((result.sizes == 0).sum()),
        "device": device,
        "threads": cfg.threads or threads_before,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "gallery": gallery_info if cfg.gallery_per_cluster > 0 else None,
        "versions": {
            "avs": avs.__version__,
            "faiss": faiss.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
        "outputs": {
            name: out.path(name)
            for name in (
                "assignments.parquet",
                "centroids.parquet",
                "transform.npz",
                "gallery.png",
                "clusters.json",
                "config.yaml",
            )
            if name != "gallery.png" or cfg.gallery_per_cluster > 0
        },
    }
    out.write_bytes("config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
    out.write_json("clusters.json", summary)
    return summary
