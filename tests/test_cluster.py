"""avs cluster: faiss k-means sound clusters on small feature shards written here by the shard contract."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from avs.cli import main as avs_main
from avs.cluster.config import ClusterConfig
from avs.cluster.job import run_cluster
from avs.cluster.kmeans import FeatureTransform, fit_transform, gpu_available, load_matrix, nearest_rows, run_kmeans
from avs.data.manifest import EVENT_TYPE

N_GROUPS, PER_GROUP, DIMS = 4, 30, 24


def _blobs(n_groups: int = N_GROUPS, per_group: int = PER_GROUP, dims: int = DIMS, seed: int = 0):
    """Well-separated groups: centres 20 apart per axis, unit noise; returns (x (n, dims) float32, group)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 20.0, size=(n_groups, dims))
    group = np.repeat(np.arange(n_groups), per_group)
    x = centres[group] + rng.normal(size=(len(group), dims))
    return x.astype(np.float32), group


def write_feature_shards(
    folder, x: np.ndarray, name: str, parts: int = 2, segments_per_clip: int = 3, shape: list[int] | None = None
) -> list[tuple[str, int]]:
    """``folder/part-NNNNN.parquet`` as `avs extract` writes them; returns the (clip_id, segment) keys."""
    folder.mkdir(parents=True, exist_ok=True)
    n, dims = x.shape
    keys = [(f"clip{i // segments_per_clip:04d}", i % segments_per_clip) for i in range(n)]
    meta = {b"avs.shape": json.dumps(shape or [dims]).encode(), b"avs.config_hash": b"test"}
    for p, rows in enumerate(np.array_split(np.arange(n), parts)):
        flat = pa.array(x[rows].reshape(-1), pa.float32())
        table = pa.table(
            {
                "clip_id": pa.array([keys[i][0] for i in rows], pa.string()),
                "segment": pa.array([keys[i][1] for i in rows], pa.int32()),
                "start_s": pa.array([float(keys[i][1]) for i in rows], pa.float64()),
                "end_s": pa.array([float(keys[i][1]) + 1.0 for i in rows], pa.float64()),
                "labels": pa.array([["park"] for _ in rows], pa.list_(pa.string())),
                "events": pa.array([[] for _ in rows], pa.list_(EVENT_TYPE)),
                "split": pa.array(["train"] * len(rows), pa.string()),
                "fold": pa.array([1] * len(rows), pa.int32()),
                "location": pa.array(["lyon"] * len(rows), pa.string()),
                name: pa.FixedSizeListArray.from_arrays(flat, dims),
            }
        ).replace_schema_metadata(meta)
        pq.write_table(table, folder / f"part-{p:05d}.parquet")
    return keys


def write_frame_shards(
    folder, keys: list[tuple[str, int]], colour_of: list[tuple[int, int, int]], skip: int | None = None
) -> None:
    """A frames set: one JPEG (PIL, a flat colour per row) per (clip_id, segment); ``skip`` leaves one out."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for colour in colour_of:
        buf = io.BytesIO()
        Image.new("RGB", (32, 24), colour).save(buf, format="JPEG")
        images.append(buf.getvalue())
    rows = [i for i in range(len(keys)) if i != skip]
    table = pa.table(
        {
            "clip_id": pa.array([keys[i][0] for i in rows], pa.string()),
            "segment": pa.array([keys[i][1] for i in rows], pa.int32()),
            "frame_index": pa.array([12 * keys[i][1] for i in rows], pa.int32()),
            "timestamp_s": pa.array([keys[i][1] + 0.5 for i in rows], pa.float64()),
            "image": pa.array([images[i] for i in rows], pa.binary()),
        }
    )
    pq.write_table(table, folder / "part-00000.parquet")


@pytest.fixture(scope="module")
def texture_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("feat")
    x, group = _blobs()
    keys = write_feature_shards(root / "texture", x, "texture")
    return root / "texture", x, group, keys


# ------------------------------------------------------------------------------------------ core functions
def test_load_matrix_reads_all_parts_in_order(texture_shards):
    folder, x, _, keys = texture_shards
    table, got = load_matrix(str(folder))  # column defaults to the folder's name
    assert got.dtype == np.float32 and got.shape == x.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x)
    assert list(zip(table.column("clip_id").to_pylist(), table.column("segment").to_pylist(), strict=True)) == keys
    assert json.loads(table.schema.metadata[b"avs.shape"]) == [DIMS]


def test_kmeans_recovers_separated_groups():
    x, group = _blobs()
    res = run_kmeans(x, N_GROUPS, iterations=25, restarts=3, seed=0)
    assert adjusted_rand_score(group, res.assignments) == 1.0
    assert res.centroids.shape == (N_GROUPS, DIMS) and res.assignments.dtype == np.int32
    assert sorted(res.sizes.tolist()) == [PER_GROUP] * N_GROUPS
    # distances are squared L2 to the assigned centroid, which is the nearest one
    d2 = ((x[:, None, :] - res.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(res.assignments, d2.argmin(1))
    np.testing.assert_allclose(res.distances, d2.min(1), rtol=1e-3, atol=1e-2)
    assert res.objective == pytest.approx(float(d2.min(1).sum()), rel=1e-4)


def test_same_seed_same_assignments():
    x, _ = _blobs(n_groups=6, per_group=20, seed=3)
    a = run_kmeans(x + np.float32(0.0), 5, iterations=10, restarts=2, seed=7)  # k != groups: init matters
    b = run_kmeans(x.copy(), 5, iterations=10, restarts=2, seed=7)
    np.testing.assert_array_equal(a.assignments, b.assignments)
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_standardize_and_pca_shapes():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(200, 12)) * np.arange(1, 13) + 5.0).astype(np.float32)
    x[:, 3] = 2.0  # a constant dimension stays finite (0) after z-scoring
    z, tf = fit_transform(x, standardize=True)
    assert z.shape == (200, 12) and z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.delete(z.std(0), 3), 1.0, atol=1e-4)
    assert not np.shares_memory(z, x)
    y, tf = fit_transform(x, standardize=True, pca_dims=4)
    assert y.shape == (200, 4) and tf.dims_in == 12 and tf.dims_out == 4
    np.testing.assert_allclose(tf.apply(x), y, rtol=1e-4, atol=1e-4)  # the saved transform maps new rows alike
    again = FeatureTransform.from_npz_bytes(tf.to_npz_bytes())
    np.testing.assert_allclose(again.apply(x[:5]), y[:5], rtol=1e-4, atol=1e-4)
    var = y.var(0)
    assert np.all(np.diff(var) <= 1e-3)  # components in decreasing variance
    raw, tf_raw = fit_transform(x, standardize=False, pca_dims=None)
    np.testing.assert_array_equal(raw, x)
    assert tf_raw.mean is None
    with pytest.raises(ValueError, match="pca_dims=13"):
        fit_transform(x, pca_dims=13)


def test_nearest_rows_per_cluster():
    assign = np.array([1, 0, 1, 1, 0], np.int32)
    dist = np.array([0.5, 0.2, 0.1, 0.9, 0.3], np.float32)
    near = nearest_rows(assign, dist, k=3, per_cluster=2)
    assert [n.tolist() for n in near] == [[1, 4], [2, 0], []]


# ---------------------------------------------------------------------------------------------- the job
def test_run_cluster_writes_outputs_one_assignment_per_row(texture_shards, tmp_path):
    folder, _, group, keys = texture_shards
    out = tmp_path / "clusters"
    summary = run_cluster(
        ClusterConfig(features=str(folder), out=str(out), k=N_GROUPS, restarts=2, gallery_per_cluster=3, device="auto"),
        stream=io.StringIO(),
    )
    a = pq.read_table(out / "assignments.parquet")
    assert a.schema.field("cluster").type == pa.int32() and a.schema.field("distance").type == pa.float32()
    assert a.num_rows == len(keys)
    got = list(zip(a.column("clip_id").to_pylist(), a.column("segment").to_pylist(), strict=True))
    assert sorted(got) == sorted(keys) and len(set(got)) == len(got)  # every row exactly once
    assert got == keys  # in input order
    assert adjusted_rand_score(group, a.column("cluster").to_numpy()) == 1.0
    c = pq.read_table(out / "centroids.parquet")
    assert c.column("cluster").to_pylist() == list(range(N_GROUPS))
    assert np.stack(c.column("centroid").to_numpy(zero_copy_only=False)).shape == (N_GROUPS, DIMS)
    info = json.loads((out / "clusters.json").read_text())
    assert info["k"] == N_GROUPS and info["n_rows"] == len(keys) and info["dims"] == DIMS
    assert sum(info["sizes"]) == len(keys)
    assert info["device"] == summary["device"] == ("cuda" if gpu_available() else "cpu")
    assert info["objective"] > 0 and set(info["seconds"]) >= {"load", "kmeans", "total"}
    assert info["config"]["k"] == N_GROUPS and (out / "config.yaml").exists()
    png = Image.open(out / "gallery.png")
    assert png.format == "PNG" and png.height > N_GROUPS * 96
    assert info["gallery"]["kind"] == "features" and info["gallery"]["tiles"] == N_GROUPS * (1 + 3)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_gallery_with_frames(texture_shards, tmp_path):
    folder, _, group, keys = texture_shards
    palette = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (230, 230, 40)]
    frames = tmp_path / "frames"
    write_frame_shards(frames, keys, [palette[g] for g in group], skip=0)
    out = tmp_path / "clusters"
    run_cluster(
        ClusterConfig(
            features=str(folder),
            out=str(out),
            k=N_GROUPS,
            restarts=1,
            frames=str(frames),
            gallery_per_cluster=PER_GROUP,
            gallery_tile_px=32,
        ),
        stream=io.StringIO(),
    )
    info = json.loads((out / "clusters.json").read_text())
    assert info["gallery"]["kind"] == "frames" and info["gallery"]["missing_frames"] == 1
    png = np.asarray(Image.open(out / "gallery.png").convert("RGB"))
    # each cluster row shows frames of one colour only: the frames joined on (clip_id, segment)
    a = pq.read_table(out / "assignments.parquet").column("cluster").to_numpy()
    for c in range(N_GROUPS):
        want = np.array(palette[group[a == c][0]])
        y0 = 28 + c * (32 + 4) + 16
        row = png[y0, 170 + 16 :: 36][:PER_GROUP].astype(int)
        close = np.abs(row - want).max(axis=1) < 40
        assert close.sum() >= PER_GROUP - 1  # one frame is missing (placeholder tile)


def test_feature_tiles_use_2d_shape(tmp_path):
    x, _ = _blobs(n_groups=2, per_group=10, dims=20)
    folder = tmp_path / "mfcc"
    write_feature_shards(folder, x, "mfcc", parts=1, shape=[4, 5])
    run_cluster(
        ClusterConfig(
            features=str(folder),
            out=str(tmp_path / "o"),
            k=2,
            restarts=1,
            standardize=False,
            pca_dims=3,
            gallery_per_cluster=2,
        ),
        stream=io.StringIO(),
    )
    info = json.loads((tmp_path / "o" / "clusters.json").read_text())
    assert info["feature_shape"] == [4, 5] and info["cluster_dims"] == 3
    assert (tmp_path / "o" / "gallery.png").stat().st_size > 0


# -------------------------------------------------------------------------------------------- errors
def test_clear_errors(texture_shards, tmp_path):
    folder, x, _, _ = texture_shards
    with pytest.raises(ValueError, match=r"k=500 clusters need at least 500 rows"):
        run_cluster(ClusterConfig(features=str(folder), out=str(tmp_path / "o"), k=500), stream=io.StringIO())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no part-"):
        load_matrix(str(tmp_path / "empty"), "texture")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_matrix(str(tmp_path / "nowhere"), "texture")
    with pytest.raises(ValueError, match="no column"):
        load_matrix(str(folder), "mfcc")
    bad = x.copy()
    bad[7, 3] = np.nan
    write_feature_shards(tmp_path / "nan" / "texture", bad, "texture")
    with pytest.raises(ValueError, match=r"NaN or inf, first: clip_id='clip0002' segment=1"):
        load_matrix(str(tmp_path / "nan" / "texture"))
    with pytest.raises(ValueError, match="NaN or inf"):
        run_kmeans(bad, 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        ClusterConfig(features="f", out="o", k=0)
    with pytest.raises(FileNotFoundError):
        run_cluster(
            ClusterConfig(features=str(folder), out=str(tmp_path / "o"), k=2, frames=str(tmp_path / "nf")),
            stream=io.StringIO(),
        )
    if not gpu_available():
        with pytest.raises(ValueError, match="device=cuda"):
            run_cluster(
                ClusterConfig(features=str(folder), out=str(tmp_path / "o"), k=2, device="cuda"), stream=io.StringIO()
            )


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_and_job_entry(texture_shards, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    import faiss
    import yaml

    folder, _, group, _ = texture_shards
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"k": 7, "restarts": 1, "gallery_per_cluster": 2}))
    out = tmp_path / "cli"
    threads_before = faiss.omp_get_max_threads()
    rc = avs_main(
        [
            "cluster",
            str(folder),
            "--out",
            str(out),
            "--config",
            str(cfg),
            "--k",
            str(N_GROUPS),
            "--no-standardize",
            "--set",
            "gallery_tile_px=24",
            "--device",
            "cpu",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["k"] == N_GROUPS and saved["standardize"] is False and saved["gallery_tile_px"] == 24
    assert saved["restarts"] == 1 and saved["device"] == "cpu" and saved["threads"] == 1
    assert faiss.omp_get_max_threads() == threads_before  # the job restores faiss' thread count
    assert json.loads(capsys.readouterr().out)["k"] == N_GROUPS
    a = pq.read_table(out / "assignments.parquet").column("cluster").to_numpy()
    assert adjusted_rand_score(group, a) == 1.0

    spec = importlib.util.spec_from_file_location("jobs_cluster", Path(__file__).parents[1] / "jobs" / "cluster.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.main([str(folder), "--out", str(tmp_path / "job"), "--k", "2", "--restarts", "1"]) == 0
    assert (tmp_path / "job" / "clusters.json").exists()
    assert avs_main(["cluster", str(folder), "--out", str(out), "--k", "0"]) == 2
    assert avs_main(["cluster", str(folder), "--out", str(out), "--set", "nope=1"]) == 2
    assert avs_main(["cluster", str(tmp_path / "missing"), "--out", str(out)]) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs a faiss GPU build and a CUDA GPU")
def test_gpu_kmeans_matches_cpu():
    x, group = _blobs()
    gpu = run_kmeans(x, N_GROUPS, restarts=3, seed=0, use_gpu=True)
    cpu = run_kmeans(x, N_GROUPS, restarts=3, seed=0)
    assert adjusted_rand_score(group, gpu.assignments) == 1.0
    assert adjusted_rand_score(cpu.assignments, gpu.assignments) == 1.0
    assert gpu.objective == pytest.approx(cpu.objective, rel=1e-3)


def test_missing_faiss_names_the_install_profiles(monkeypatch, tmp_path):
    """Without a profile (`pip install avs` names no faiss build) avs cluster stops with the commands to run."""
    import sys

    from avs.cluster.config import ClusterConfig
    from avs.cluster.job import run_cluster

    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    with pytest.raises(RuntimeError, match="install.sh gpu"):
        run_cluster(ClusterConfig(features=str(tmp_path / "texture"), out=str(tmp_path / "out")))
