"""Paper 001 presets: 3.75-s sound windows paired with the frame at their centre, then sound clusters."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from avs.cli import main as avs_main
from avs.testing import media, signals

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("owens")
    for i in range(4):
        audio = signals.scene_audio(i, 8.0, 48_000, channels=2, seed=i)
        media.write_video(root / f"clip{i}.mp4", 8.0, fps=10, width=64, height=48, audio=audio, color_seed=i)
    return root


def test_texture_windows_pair_with_centre_frames_and_cluster(ray_local, clips, tmp_path):
    out = tmp_path / "feats"
    assert avs_main(["extract", str(clips), "--out", str(out), "--preset", "owens-texture"]) == 0
    tex = pq.read_table(out / "texture")
    frames = pq.read_table(out / "frames")
    assert json.loads(tex.schema.metadata[b"avs.shape"]) == [502]
    # 8-s clips hold two whole 3.75-s windows: [0, 3.75) and [3.75, 7.5); frames at 1.875 s and 5.625 s
    t = {(r["clip_id"], r["segment"]): r for r in tex.select(["clip_id", "segment", "start_s", "end_s"]).to_pylist()}
    f = {(r["clip_id"], r["segment"]): r for r in frames.select(["clip_id", "segment", "timestamp_s"]).to_pylist()}
    assert set(t) == set(f) and len(t) == 8
    for key, row in t.items():
        centre = (row["start_s"] + row["end_s"]) / 2
        assert f[key]["timestamp_s"] == pytest.approx(centre, abs=0.1 + 1e-6)  # 10 fps: within one frame
    x = np.asarray(tex.column("texture").combine_chunks().flatten()).reshape(-1, 502)
    assert np.isfinite(x).all()

    clusters = tmp_path / "clusters"
    code = avs_main(
        [
            "cluster",
            str(out / "texture"),
            "--out",
            str(clusters),
            "--k",
            "4",
            "--frames",
            str(out / "frames"),
            "--restarts",
            "2",
        ]
    )
    assert code == 0
    assign = pq.read_table(clusters / "assignments.parquet").to_pydict()
    assert sorted(zip(assign["clip_id"], assign["segment"], strict=True)) == sorted(t)
    assert (clusters / "gallery.png").stat().st_size > 1000


def test_mfcc_preset_shape(ray_local, clips, tmp_path):
    out = tmp_path / "mfcc"
    assert avs_main(["extract", str(clips), "--out", str(out), "--preset", "owens-mfcc"]) == 0
    meta = pq.read_table(out / "mfcc").schema.metadata
    assert json.loads(meta[b"avs.shape"]) == [20 * 293]  # 20 coefficients x 293 frames of 12.8 ms
