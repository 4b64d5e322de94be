"""k-means sound clusters with faiss: load a feature set into one matrix, standardise / PCA it, cluster it.

Functions here take and return arrays (no files written); ``avs.cluster.job`` strings them together.
Shapes: ``x`` is ``(n_rows, dims)`` float32, C-contiguous; centroids are ``(k, dims)``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avs.shards.storage import Storage

KEY_COLUMNS = ("clip_id", "segment")
_BLOCK_ROWS = 16_384  # rows per block for the chunked passes (bounded float64 temporaries)


# ------------------------------------------------------------------------------------------------ loading
def require_faiss() -> None:
    """faiss comes from an install profile (faiss-cpu or faiss-gpu, one of them): a clear error when neither is."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "faiss is not installed: avs takes it from an install profile, `bash scripts/install.sh` (cpu) or "
            "`bash scripts/install.sh gpu`, or pip install 'avs[cpu]' / 'avs[gpu]' (never both faiss builds)"
        ) from None


def feature_parts(folder: str) -> tuple[Storage, list[str]]:
    """The storage of a shard folder and its ``part-*.parquet`` names (sorted); error when there are none."""
    storage = Storage(folder)
    if not storage.exists(""):
        raise FileNotFoundError(f"feature folder {storage.uri} does not exist")
    parts = storage.list("", prefix="part-", suffix=".parquet")
    if not parts:
        raise FileNotFoundError(
            f"no part-*.parquet files in {storage.uri} (expected the output of `avs extract`: "
            "OUT/<feature_set>/part-NNNNN.parquet)"
        )
    return storage, parts


def _feature_dims(field: pa.Field, folder: str) -> int:
    tp = field.type
    if not pa.types.is_fixed_size_list(tp):
        raise ValueError(
            f"{folder}: column {field.name!r} is {tp}, expected fixed_size_list<float32>[D] "
            "(a feature column written by `avs extract`)"
        )
    if not (pa.types.is_floating(tp.value_type) or pa.types.is_integer(tp.value_type)):
        raise ValueError(f"{folder}: column {field.name!r} holds {tp.value_type}, expected float32 values")
    return tp.list_size


def load_matrix(folder: str, column: str | None = None) -> tuple[pa.Table, np.ndarray]:
    """Read every part of a feature shard folder into ``(keys, x)``.

    ``keys`` is a table (clip_id string, segment int32) in part order, one row per feature row; its schema
    metadata carries ``b"avs.shape"`` (the feature's shape before flattening, JSON). ``x`` is ``(n_rows, D)``
    float32 with ``D = prod(shape)``: each part's fixed-size list is flattened zero-copy and copied once into
    the preallocated matrix. Errors: missing / empty folder, missing column, null or non-finite features.
    """
    storage, parts = feature_parts(folder)
    if column is None:
        column = os.path.basename(storage.root.rstrip("/"))
    n_rows = 0
    dims: int | None = None
    shape: list[int] | None = None
    for name in parts:  # first pass: footers only (row counts, schema), so the matrix is allocated once
        meta_file = pq.read_metadata(storage.path(name), filesystem=storage.fs)
        schema = meta_file.schema.to_arrow_schema()
        n_rows += meta_file.num_rows
        missing = [c for c in (*KEY_COLUMNS, column) if c not in schema.names]
        if missing:
            raise ValueError(
                f"{storage.uri}/{name}: no column(s) {missing}; columns are {schema.names} "
                "(pass --column to name the feature column)"
            )
        d = _feature_dims(schema.field(column), f"{storage.uri}/{name}")
        if dims is not None and d != dims:
            raise ValueError(f"{storage.uri}/{name}: feature size {d} differs from earlier parts ({dims})")
        dims = d
        meta = meta_file.metadata or {}  # the footer's key-value metadata (the writer's schema metadata)
        if shape is None and b"avs.shape" in meta:
            shape = [int(s) for s in json.loads(meta[b"avs.shape"])]
    assert dims is not None
    if shape is None or math.prod(shape) != dims:
        shape = [dims]
    if n_rows == 0:
        raise ValueError(f"{storage.uri}: the feature shards hold no rows")

    x = np.empty((n_rows, dims), dtype=np.float32)  # (n_rows, dims)
    keys = []
    pos = 0
    for name in parts:
        table = pq.read_table(storage.path(name), filesystem=storage.fs, columns=[*KEY_COLUMNS, column])
        col = table.column(column)
        if col.null_count:
            raise ValueError(f"{storage.uri}/{name}: {col.null_count} row(s) have no {column!r} value")
        start = pos
        for chunk in col.chunks:
            values = chunk.flatten()  # zero-copy view of the chunk's rows (offset respected)
            if values.null_count:
                raise ValueError(f"{storage.uri}/{name}: null values inside the {column!r} vectors")
            if values.type != pa.float32():
                values = values.cast(pa.float32())
            block = values.to_numpy(zero_copy_only=True).reshape(len(chunk), dims)
            if pos + len(chunk) > n_rows:
                raise RuntimeError(
                    f"{storage.uri}: the parts changed while being read (is `avs extract` still writing into it?)"
                )
            x[pos : pos + len(chunk)] = block
            pos += len(chunk)
        bad = ~np.isfinite(x[start:pos]).all(axis=1)
        if bad.any():
            ids = table.column("clip_id").to_numpy(zero_copy_only=False)[bad]
            segs = table.column("segment").to_numpy(zero_copy_only=False)[bad]
            raise ValueError(
                f"{storage.uri}/{name}: {int(bad.sum())} row(s) of {column!r} hold NaN or inf, "
                f"first: clip_id={ids[0]!r} segment={int(segs[0])}; k-means needs finite features"
            )
        keys.append(
            table.select(list(KEY_COLUMNS)).cast(pa.schema([("clip_id", pa.string()), ("segment", pa.int32())]))
        )
    keys_table = pa.concat_tables(keys).combine_chunks()
    keys_table = keys_table.replace_schema_metadata(
        {b"avs.shape": json.dumps(shape).encode(), b"avs.column": column.encode()}
    )
    return keys_table, x


# -------------------------------------------------------------------------------- standardise and PCA
@dataclasses.dataclass(frozen=True)
class FeatureTransform:
    """``y = ((x - mean) / scale) @ pca_A.T + pca_b``; parts that are None are skipped."""

    dims_in: int
    mean: np.ndarray | None = None  # (dims_in,) float32
    scale: np.ndarray | None = None  # (dims_in,) float32, 1 where a dimension is constant
    pca_A: np.ndarray | None = None  # (dims_out, dims_in) float32
    pca_b: np.ndarray | None = None  # (dims_out,) float32

    @property
    def dims_out(self) -> int:
        return self.dims_in if self.pca_A is None else int(self.pca_A.shape[0])

    def standardize(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        """The z-scored rows (``x`` unchanged unless ``inplace``); identity when not standardising."""
        y = x if inplace else np.array(x, dtype=np.float32, copy=True)
        if self.mean is None:
            return y
        for s in range(0, len(y), _BLOCK_ROWS):
            blk = y[s : s + _BLOCK_ROWS]
            blk -= self.mean
            blk /= self.scale
        return y

    def apply(self, x: np.ndarray, inplace: bool = False) -> np.ndarray:
        """``(n, dims_in)`` -> ``(n, dims_out)`` float32 (new rows, e.g. to assign them to the clusters)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dims_in:
            raise ValueError(f"expected rows of {self.dims_in} values, got shape {x.shape}")
        y = self.standardize(x, inplace=inplace)
        if self.pca_A is not None:
            y = y @ self.pca_A.T
            y += self.pca_b
        return np.ascontiguousarray(y, dtype=np.float32)

    def to_npz_bytes(self) -> bytes:
        arrays = {
            k: v
            for k, v in (("mean", self.mean), ("scale", self.scale), ("pca_A", self.pca_A), ("pca_b", self.pca_b))
            if v is not None
        }
        buf = io.BytesIO()
        np.savez(buf, dims_in=np.int64(self.dims_in), **arrays)
        return buf.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> FeatureTransform:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            get = lambda k: z[k] if k in z.files else None
            return cls(int(z["dims_in"]), get("mean"), get("scale"), get("pca_A"), get("pca_b"))


def column_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and (population) standard deviation in float64, in blocks (Chan's merge)."""
    n_tot = 0
    mean = np.zeros(x.shape[1], np.float64)
    m2 = np.zeros(x.shape[1], np.float64)
    for s in range(0, len(x), _BLOCK_ROWS):
        blk = x[s : s + _BLOCK_ROWS].astype(np.float64)
        nb = len(blk)
        mb = blk.mean(axis=0)
        m2b = ((blk - mb) ** 2).sum(axis=0)
        delta = mb - mean
        n_new = n_tot + nb
        mean += delta * (nb / n_new)
        m2 += m2b + delta**2 * (n_tot * nb / n_new)
        n_tot = n_new
    return mean, np.sqrt(m2 / max(n_tot, 1))


def fit_transform(
    x: np.ndarray, standardize: bool = True, pca_dims: int | None = None, inplace: bool = False
) -> tuple[np.ndarray, FeatureTransform]:
    """Fit z-scoring (per dimension, over all rows) and PCA (faiss.PCAMatrix) on ``x``; return the
    transformed rows ``(n, pca_dims or dims)`` float32 and the fitted transform. With ``inplace`` the
    standardisation overwrites ``x`` (saves one copy of the matrix)."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"expected a non-empty (n, dims) matrix, got shape {x.shape}")
    n, dims = x.shape
    mean = scale = None
    if standardize:
        mu, sd = column_stats(x)
        mean = mu.astype(np.float32)
        scale = np.where(sd > 0, sd, 1.0).astype(np.float32)  # constant dimensions stay 0 after centring
    tf = FeatureTransform(dims, mean, scale)
    y = tf.standardize(x, inplace=inplace)
    if pca_dims is None:
        return y, tf
    if pca_dims > dims:
        raise ValueError(f"pca_dims={pca_dims} is more than the feature's {dims} dimensions")
    if n < 2:
        raise ValueError("PCA needs at least 2 rows")
    pca = faiss.PCAMatrix(dims, pca_dims)
    pca.train(y)
    A = faiss.vector_to_array(pca.A).reshape(pca_dims, dims).astype(np.float32)
    b = faiss.vector_to_array(pca.b).astype(np.float32)
    out = pca.apply(y)  # (n, pca_dims)
    return np.ascontiguousarray(out, dtype=np.float32), dataclasses.replace(tf, pca_A=A, pca_b=b)


# ------------------------------------------------------------------------------------------------ k-means
@dataclasses.dataclass(frozen=True)
class KMeansResult:
    centroids: np.ndarray  # (k, dims) float32
    assignments: np.ndarray  # (n,) int32: the nearest centroid of every row
    distances: np.ndarray  # (n,) float32: squared L2 distance of every row to its centroid
    objective: float  # sum of ``distances`` (the k-means objective after the final assignment)
    sizes: np.ndarray  # (k,) int64 rows per cluster
    iteration_objectives: np.ndarray  # faiss' objective per iteration of the kept restart
    train_seconds: float
    assign_seconds: float


def gpu_available() -> bool:
    """True when faiss is installed, this build has GPU support and it sees at least one GPU (False without faiss:
    a probe, not the place to say how to install it; ``run_kmeans`` does)."""
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


_GPU_RESOURCES: dict[int, Any] = {}  # GPU number -> faiss.StandardGpuResources, made once per process


def gpu_resources(gpu: int = 0) -> Any:
    """faiss' resources on GPU ``gpu`` (cuBLAS handle, streams, a scratch-memory pool), made once per process and
    shared by every ``run_kmeans`` (``faiss.Kmeans(gpu=True)`` makes new ones, and allocates again, per call)."""
    import faiss

    if gpu not in _GPU_RESOURCES:
        _GPU_RESOURCES[gpu] = faiss.StandardGpuResources()
    return _GPU_RESOURCES[gpu]


def _gpu_flat_index(dims: int) -> Any:
    """An exact L2 index replicated on every visible GPU (as ``faiss.Kmeans(gpu=True)`` builds it), on the
    cached resources."""
    import faiss

    gpus = list(range(faiss.get_num_gpus()))
    return faiss.index_cpu_to_gpu_multiple_py([gpu_resources(g) for g in gpus], faiss.IndexFlatL2(dims), None, gpus)


def check_matrix(x: np.ndarray, k: int) -> None:
    if x.ndim != 2:
        raise ValueError(f"expected a (n, dims) matrix, got shape {x.shape}")
    if len(x) == 0:
        raise ValueError("no rows to cluster")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > len(x):
        raise ValueError(f"k={k} clusters need at least {k} rows; the features hold only {len(x)}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} row(s) hold NaN or inf (first: row {int(np.argmax(bad))}); k-means needs finite features"
        )


def run_kmeans(
    x: np.ndarray,
    k: int,
    iterations: int = 25,
    restarts: int = 1,
    seed: int = 0,
    use_gpu: bool = False,
    max_points_per_centroid: int | None = None,
    init_centroids: np.ndarray | None = None,
    verbose: bool = False,
) -> KMeansResult:
    """Lloyd k-means with faiss.Kmeans (``niter=iterations``, ``nredo=restarts``: the restart with the
    lowest objective is kept), then every row is assigned to its nearest centroid.

    ``max_points_per_centroid=None`` trains on every row (faiss would otherwise subsample ``k * 256``).
    ``init_centroids`` ``(k, dims)`` replaces the random initialisation (needs ``restarts == 1``).
    ``use_gpu``: assign on every visible GPU, with this process's faiss resources (``gpu_resources``).
    """
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    check_matrix(x, k)
    n, dims = x.shape
    if use_gpu and not gpu_available():
        raise RuntimeError(
            "use_gpu=True but this faiss has no GPU support or sees no GPU "
            "(install a faiss GPU build instead of faiss-cpu, or use the CPU)"
        )
    if init_centroids is not None and restarts != 1:
        raise ValueError("init_centroids needs restarts=1")
    mppc = max_points_per_centroid if max_points_per_centroid is not None else max(1, math.ceil(n / k))
    km = faiss.Kmeans(
        dims,
        k,
        niter=iterations,
        nredo=restarts,
        seed=seed,
        verbose=verbose,
        max_points_per_centroid=int(mppc),
    )
    if use_gpu:
        km.index = _gpu_flat_index(dims)  # what Clustering.train assigns with; resources reused across calls
    t0 = time.perf_counter()
    init = None if init_centroids is None else np.ascontiguousarray(init_centroids, dtype=np.float32)
    km.train(x, init_centroids=init)
    t1 = time.perf_counter()
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    index = km.index
    if index.ntotal != k:  # the trained index holds the kept centroids; rebuild if a faiss version differs
        index = faiss.IndexFlatL2(dims)
        index.add(centroids)
    dist, assign = index.search(x, 1)
    t2 = time.perf_counter()
    assign = assign[:, 0].astype(np.int32)
    dist = np.maximum(dist[:, 0], 0.0).astype(np.float32)  # BLAS expansion can give tiny negatives
    return KMeansResult(
        centroids=centroids,
        assignments=assign,
        distances=dist,
        objective=float(dist.sum(dtype=np.float64)),
        sizes=np.bincount(assign, minlength=k).astype(np.int64),
        iteration_objectives=np.asarray(km.obj, dtype=np.float64),
        train_seconds=t1 - t0,
        assign_seconds=t2 - t1,
    )


def nearest_rows(assignments: np.ndarray, distances: np.ndarray, k: int, per_cluster: int) -> list[np.ndarray]:
    """For each cluster, the indices of its (up to) ``per_cluster`` member rows nearest the centroid."""
    order = np.lexsort((np.arange(len(assignments)), distances, assignments))  # by cluster, then distance
    sorted_assign = assignments[order]
    starts = np.searchsorted(sorted_assign, np.arange(k), side="left")
    ends = np.searchsorted(sorted_assign, np.arange(k), side="right")
    return [order[s : min(e, s + per_cluster)] for s, e in zip(starts, ends, strict=True)]
