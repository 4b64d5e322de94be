"""The video branch of the extraction job on a real local Ray: frames, CLIP, zero-shot; bad videos."""

import io
import json

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from avs.config import from_dict
from avs.decode.video import FrameSampling, read_frames, sample_times
from avs.decode.video_guard import short_side_size
from avs.features.clip_image import ClipEncoderConfig, load_clip
from avs.shards.config import ExtractConfig
from avs.shards.pipeline import run_extract
from avs.testing import media, signals

pytestmark = pytest.mark.ray

ENCODER = {"model": "ViT-B-32", "random_weights": True}
BAD = {  # file -> error_type in errors.parquet (branch "video")
    "corrupt.mp4": "corrupt_media",
    "empty.mp4": "empty_file",
    "truncated.mp4": "corrupt_media",
    "audio_only.mp4": "no_video_track",
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    tone = np.stack([signals.tone(300.0, 2.0, 48_000)] * 2)
    media.write_video(root / "cfr.mp4", 2.0, fps=10, width=96, height=64, audio=tone, color_seed=1)
    media.write_video(root / "vfr.mp4", 2.0, fps=10, width=96, height=64, audio=tone, color_seed=2, vfr=True)
    media.write_video(root / "wide.mp4", 2.0, fps=5, width=128, height=48, audio=None, color_seed=3)
    media.write_video(root / "one_frame.mp4", 0.1, fps=10, width=96, height=64, audio=None, color_seed=4)
    media.write_corrupt(root / "corrupt.mp4")
    media.write_empty(root / "empty.mp4")
    media.write_video(root / "src.mp4", 2.0, fps=10, width=96, height=64, audio=tone)
    media.write_truncated(root / "src.mp4", root / "truncated.mp4", 0.4)
    (root / "src.mp4").unlink()
    media.write_video(root / "audio_only.mp4", 2.0, audio=tone, video=False)
    return root


def _config(root, out) -> ExtractConfig:
    return from_dict(
        ExtractConfig,
        {
            "input": str(root),
            "out": str(out),
            "dataset": "folder",
            "video": {"sampling": "even", "n_frames": 3, "short_side": 48},
            "features": [
                {"name": "frames", "extractor": "frames", "params": {"size": [32, 32]}},
                {"name": "clip_vitb32", "extractor": "clip", "params": ENCODER},
                {
                    "name": "zeroshot_vitb32",
                    "extractor": "clip-zeroshot",
                    "params": {"encoder": ENCODER, "classes": ["red", "green", "blue_sky"]},
                },
            ],
            "pipeline": {"decode_timeout_s": 30.0, "batch_clips": 3},
        },
    )


@pytest.fixture(scope="module")
def run(ray_local, videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("vout")
    return out, run_extract(_config(videos, out))


def test_good_videos_written_bad_ones_reported(run):
    out, summary = run
    c = summary["branches"]["video"]["counts"]
    assert c["inputs"] == 8 and c["clips_written"] == 4 and c["clips_failed"] == 4
    assert c["gpu_fallbacks"] == 0 and summary["branches"]["video"]["gpu_fallback_reasons"] == {}  # CPU decode
    errors = {e["path"].rsplit("/", 1)[1]: e for e in pq.read_table(out / "errors.parquet").to_pylist()}
    assert {n: e["error_type"] for n, e in errors.items()} == BAD
    assert all(e["branch"] == "video" for e in errors.values())
    for name in ("frames", "clip_vitb32", "zeroshot_vitb32"):
        t = pq.read_table(out / name).to_pydict()
        assert sorted(set(t["clip_id"])) == ["cfr", "one_frame", "vfr", "wide"]
        assert len(t["clip_id"]) == 12  # 3 frames per clip (a one-frame video repeats its frame)


def test_frame_times_and_pixels_match_a_direct_decode(run, videos):
    out, _ = run
    t = pq.read_table(out / "frames").to_pydict()
    for clip in ("cfr", "vfr", "wide"):
        rows = sorted((s, i) for i, (c, s) in enumerate(zip(t["clip_id"], t["segment"], strict=True)) if c == clip)
        with av.open(str(videos / f"{clip}.mp4")) as container:
            stream = container.streams.video[0]
            duration = float(stream.duration * stream.time_base)
            ref = [(f.pts * stream.time_base, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        times = sample_times(duration, FrameSampling("even", 3))
        for (_, i), want_t in zip(rows, times, strict=True):
            k = max(j for j, (pts, _) in enumerate(ref) if float(pts) - float(ref[0][0]) <= want_t + 1e-5)
            assert t["frame_index"][i] == k
            assert t["timestamp_s"][i] == pytest.approx(float(ref[k][0]) - float(ref[0][0]), abs=1e-4)
            img = np.asarray(Image.open(io.BytesIO(t["image"][i])))
            assert img.shape == (32, 32, 3)
    meta = pq.read_table(out / "frames").schema.metadata
    assert json.loads(meta[b"avs.shape"]) == [32, 32, 3]


def test_clip_embeddings_equal_a_direct_open_clip_call(run, videos):
    out, _ = run
    table = pq.read_table(out / "clip_vitb32")
    meta = json.loads(table.schema.metadata[b"avs.extractor"])
    assert meta == {"model": "ViT-B-32", "random_weights": True}  # recorded, as promised
    emb = np.asarray(table.column("clip_vitb32").combine_chunks().flatten()).reshape(-1, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    ids = table.column("clip_id").to_pylist()
    # random weights come from a fixed seed, so a direct open_clip call with the same config has the same ones
    model, pil_preprocess, _ = load_clip(ClipEncoderConfig(**ENCODER), "cpu")
    for clip in ("cfr", "vfr", "wide"):
        with av.open(str(videos / f"{clip}.mp4")) as c:
            s = c.streams.video[0]
            h, w, duration = s.height, s.width, float(s.duration * s.time_base)
        frames = read_frames(
            str(videos / f"{clip}.mp4"),
            sample_times(duration, FrameSampling("even", 3)),
            "pyav",
            short_side_size(h, w, 48),
        ).frames
        with torch.inference_mode():
            pixels = torch.stack([pil_preprocess(Image.fromarray(f)) for f in frames])
            want = torch.nn.functional.normalize(model.encode_image(pixels).float(), dim=-1).numpy()
        got = emb[[i for i, c in enumerate(ids) if c == clip]]
        assert got.shape == want.shape == (3, 512)
        cos = (got * want).sum(axis=1)
        assert cos.min() > 0.999, cos
    zs = pq.read_table(out / "zeroshot_vitb32")
    probs = np.asarray(zs.column("zeroshot_vitb32").combine_chunks().flatten()).reshape(-1, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert json.loads(zs.schema.metadata[b"avs.extractor"])["classes"] == ["red", "green", "blue_sky"]


def test_rerun_adds_nothing(run, videos):
    out, _ = run
    again = run_extract(_config(videos, out))
    c = again["branches"]["video"]["counts"]
    assert c["processed"] == len(BAD) and c["clips_written"] == 0
    t = pq.read_table(out / "clip_vitb32", columns=["clip_id", "segment"]).to_pydict()
    keys = list(zip(t["clip_id"], t["segment"], strict=True))
    assert len(keys) == len(set(keys)) == 12


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_run_selects_dali_and_matches_cpu(ray_local, videos, tmp_path):
    """With CUDA (and the gpu extra) the same options decode with DALI and run CLIP on the GPU (fp16)."""
    from avs.decode.dali import dali_available

    if not dali_available():
        pytest.skip("NVIDIA DALI is not installed (pip install 'avs[gpu]')")
    cpu_cfg = _config(videos, tmp_path / "cpu")
    run_extract(from_dict(ExtractConfig, {**_as_tree(cpu_cfg), "pipeline": {"device": "cpu"}}))
    summary = run_extract(_config(videos, tmp_path / "gpu"))
    res = summary["branches"]["video"]["resources"]
    assert res["use_gpu"] and res["video_decoder"] == "dali"
    key = [("clip_id", "ascending"), ("segment", "ascending")]
    a = pq.read_table(tmp_path / "cpu" / "clip_vitb32").sort_by(key)
    b = pq.read_table(tmp_path / "gpu" / "clip_vitb32").sort_by(key)
    assert a.column("frame_index").to_pylist() == b.column("frame_index").to_pylist()
    x = np.asarray(a.column("clip_vitb32").combine_chunks().flatten()).reshape(-1, 512)
    y = np.asarray(b.column("clip_vitb32").combine_chunks().flatten()).reshape(-1, 512)
    assert (x * y).sum(axis=1).min() > 0.98  # NVDEC vs FFmpeg pixels, fp16 vs fp32 CLIP


def _as_tree(cfg):
    from avs.config import to_dict

    return to_dict(cfg)


def test_the_option_path_picks_dali_only_on_gpus_with_dali():
    from avs.shards.pipeline import choose_video_decoder

    assert choose_video_decoder("auto", use_gpu=True, dali_installed=True) == "dali"
    assert choose_video_decoder("auto", use_gpu=True, dali_installed=False) == "auto"
    assert choose_video_decoder("auto", use_gpu=False, dali_installed=True) == "auto"
    assert choose_video_decoder("pyav", use_gpu=True, dali_installed=True) == "pyav"
    with pytest.raises(ValueError, match="needs a GPU"):
        choose_video_decoder("dali", use_gpu=False, dali_installed=True)
    with pytest.raises(ValueError, match="avs\\[gpu\\]"):
        choose_video_decoder("dali", use_gpu=True, dali_installed=False)
