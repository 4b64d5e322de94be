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


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    features: str  # shard folder of one feature set: OUT/<feature_set>/ written by `avs extract`
    out: str  # output folder (local path or pyarrow filesystem URI)
    column: str | None = None  # feature column; None = the folder's name (the feature set's name)
    k: int = 15  # clusters; paper 001 Tables 1-2 and Figure 3 (left): 15 (Figure 3 right varies it)
    iterations: int = 25  # Lloyd iterations per restart (faiss niter)
    restarts: int = 5  # k-means runs from different seeds (faiss nredo); the lowest objective is kept
    seed: int = 0  # seed of initialisation / subsampling (restart r uses a seed derived from it)
    standardize: bool = True  # z-score every dimension (over all rows) before PCA / k-means
    pca_dims: int | None = None  # PCA to this many dimensions (faiss.PCAMatrix) before k-means; None = no PCA
    max_points_per_centroid: int | None = None  # train on at most k * this rows (faiss default 256);
    # None = train on every row (paper 001: "on the entire dataset"); every row is assigned either way
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: GPU faiss when CUDA and a faiss GPU build exist
    threads: int | None = None  # faiss OpenMP threads; None = faiss' default (all CPUs). Set it when other
    # work shares the machine: on a busy CPU, OpenMP threads that wait for each other lose much time
    frames: str | None = None  # shard folder of a frames set (OUT/frames/) for the gallery; None = feature tiles
    gallery_per_cluster: int = 8  # frames (or feature rows) nearest each centroid shown in gallery.png
    gallery_tile_px: int = 96  # side of one gallery tile in pixels

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
