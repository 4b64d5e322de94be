"""Frozen config of the clustering job (``avs cluster``): k-means sound clusters as pseudo-labels.

Paper 001 (seeds/001_*.txt) section 3.3 runs k-means "on the entire dataset" over the sound vectors (the
502-d texture statistics or the MFCCs of section 3.2) and uses the cluster of each frame's sound as its
class. Every table of 001 uses k = 15 ("We use our 15-cluster variant of the model for the comparisons":
Tables 1 and 2; Figure 3 left: "keeping cluster size fixed at 15"), so 15 is the default; only Figure 3
right varies k ("little improvement past 30 clusters").
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Literal

from avs.flags import opt


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    features: str = opt(
        help="shard folder of one feature set written by `avs extract` (OUT/<feature_set>/ holding "
        "part-NNNNN.parquet; local path or pyarrow filesystem URI)",
        positional=True,
    )
    out: str = opt(
        help="output folder: assignments.parquet, centroids.parquet, transform.npz, gallery.png, clusters.json, "
        "config.yaml (local path or pyarrow filesystem URI)"
    )
    column: str | None = opt(None, "feature column (default: the features folder's name, the feature set's name)")
    k: int = opt(15, "number of clusters; 15 as every table of paper 001 (Tables 1-2, Figure 3 left)")
    iterations: int = opt(25, "k-means (Lloyd) iterations per restart (faiss niter)")
    restarts: int = opt(5, "k-means restarts from different seeds (faiss nredo); the lowest objective is kept")
    seed: int = opt(0, "random seed of initialisation / subsampling (restart r uses a seed derived from it)")
    standardize: bool = opt(True, "z-score every feature dimension (over all rows) before PCA / k-means")
    pca_dims: int | None = opt(None, "PCA (faiss.PCAMatrix) to this many dimensions before k-means (default: no PCA)")
    max_points_per_centroid: int | None = opt(
        None,
        "train on at most k * this rows (faiss' own default: 256); every row is assigned either way "
        "(default: train on every row, as paper 001: 'on the entire dataset')",
    )
    device: Literal["auto", "cpu", "cuda"] = opt(
        "auto", "faiss device; auto: GPU when CUDA and a faiss GPU build are present"
    )
    threads: int | None = opt(
        None,
        "faiss OpenMP CPU threads (default: faiss' default, all CPUs); fewer helps on a busy machine, where "
        "OpenMP threads that wait for each other lose much time",
    )
    frames: str | None = opt(
        None, "frames shard folder (OUT/frames/) for the gallery (default: the gallery shows feature tiles)"
    )
    gallery_per_cluster: int = opt(
        8, "frames (or feature rows) shown per cluster in gallery.png, nearest the centre first; 0: no gallery"
    )
    gallery_tile_px: int = opt(96, "side of one gallery tile in pixels")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {self.restarts}")
        if self.pca_dims is not None and self.pca_dims < 1:
            raise ValueError(f"pca_dims must be >= 1 or None, got {self.pca_dims}")
        if self.max_points_per_centroid is not None and self.max_points_per_centroid < 1:
            raise ValueError(f"max_points_per_centroid must be >= 1 or None, got {self.max_points_per_centroid}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")
        if self.gallery_per_cluster < 0:
            raise ValueError(f"gallery_per_cluster must be >= 0, got {self.gallery_per_cluster}")
        if self.gallery_tile_px < 8:
            raise ValueError(f"gallery_tile_px must be >= 8, got {self.gallery_tile_px}")

    @property
    def feature_column(self) -> str:
        """The feature column: ``column`` or the name of the features folder."""
        if self.column:
            return self.column
        return posixpath.basename(self.features.replace("\\", "/").rstrip("/"))
