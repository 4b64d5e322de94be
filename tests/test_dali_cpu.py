"""avs's DALI path run for real on DALI's CPU video decoder (VP8 / VP9 / MJPEG; not H.264): no GPU needed, skipped
where DALI is not installed. The same ``read_frames_dali`` / ``DaliDecoder`` code as on the GPU, with
``decoder="cpu"`` instead of NVDEC: frame indices equal to the PyAV path's, pixels within a few grey levels,
bad files recorded and their neighbours kept, ``pad_mode="none"``, per-file output sizes, bounded pipelines."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")

import avs.decode.dali as dali_mod  # noqa: E402
from avs.decode.dali import read_frames_dali  # noqa: E402
from avs.decode.errors import CorruptMedia, InfrastructureError, NoFramesSampled  # noqa: E402
from avs.decode.video import read_frames  # noqa: E402
from avs.shards.config import AudioConfig, VideoConfig  # noqa: E402
from avs.shards.stages import FALLBACK_COLUMN  # noqa: E402
from avs.shards.video_stages import DaliDecoder, VideoDecodeStage  # noqa: E402
from avs.testing import media  # noqa: E402

CODECS = {"vp8": ("vp8.webm", "libvpx"), "vp9": ("vp9.webm", "libvpx-vp9"), "mjpeg": ("mjpeg.avi", "mjpeg")}
TIMES = [0.0, 0.42, 1.0, 1.3, 1.95, 5.0]  # s; 5.0 is past the end (the last frame)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("dali_cpu")
    out = {}
    for name, (file, codec) in CODECS.items():
        if media.can_encode(codec):
            out[name] = media.write_video(root / file, 2.0, fps=10, width=96, height=64, codec=codec, color_seed=1)
    if "vp9" not in out:
        pytest.skip("this PyAV build cannot encode VP9 (libvpx-vp9)")
    out["vfr"] = media.write_video(root / "vfr.webm", 2.0, fps=10, codec="libvpx-vp9", color_seed=2, vfr=True)
    out["wide"] = media.write_video(root / "wide.webm", 2.0, fps=5, width=128, height=48, codec="libvpx-vp9")
    out["short"] = media.write_video(root / "short.webm", 0.3, fps=10, codec="libvpx-vp9", color_seed=3)
    out["h264"] = media.write_video(root / "h264.mp4", 2.0, fps=10, color_seed=4)  # not for DALI's CPU decoder
    out["corrupt"] = media.write_corrupt(root / "corrupt.webm")
    return out


@pytest.fixture(autouse=True)
def fresh_pipelines(monkeypatch):
    monkeypatch.setattr(dali_mod, "_PIPELINES", OrderedDict())


def _nearest(frame: np.ndarray, reference: list[np.ndarray]) -> int:
    return int(np.argmin([np.abs(frame.astype(np.int16) - r).mean() for r in reference]))


@pytest.mark.parametrize("codec", list(CODECS))
def test_frames_match_the_pyav_path(clips, codec):
    if codec not in clips:
        pytest.skip(f"this PyAV build cannot encode {codec}")
    (got,) = read_frames_dali([clips[codec]], TIMES, decoder="cpu")
    ref = read_frames(clips[codec], TIMES, "pyav")
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_allclose(got.timestamps_s, ref.timestamps_s, atol=1e-9)
    diff = np.abs(got.frames.astype(np.int16) - ref.frames)
    # libavcodec inside DALI vs swscale: chroma upsampling differs at the pattern's sharp colour edges only
    assert np.median(diff) <= 2 and diff.mean() < 5, (np.median(diff), diff.mean())
    every = read_frames(clips[codec], np.arange(20) / 10, "pyav").frames  # the clip's 20 frames
    assert [_nearest(f, list(every)) for f in got.frames] == got.indices.tolist()  # each is its own frame


def test_variable_frame_rate_sizes_per_file_and_torch_output(clips):
    paths = [clips["vfr"], clips["wide"], clips["vp9"]]
    sizes = [(32, 48), (16, 42), (32, 48)]
    got = read_frames_dali(paths, TIMES, sizes, decoder="cpu", output="torch", max_batch_size=2)
    for path, size, g in zip(paths, sizes, got, strict=True):
        ref = read_frames(path, TIMES, "pyav", size)
        np.testing.assert_array_equal(g.indices, ref.indices)  # by pts, variable frame rate included
        assert tuple(g.frames.shape) == (len(TIMES), *size, 3) and not g.frames.is_cuda
        assert np.abs(g.frames.numpy().astype(np.int16) - ref.frames).mean() < 8  # DALI cubic vs PIL bicubic
    assert list(dali_mod._PIPELINES) == [(2, True, "cpu", 0, 2)]  # sizes are inputs: one pipeline for all
    for k in range(6):  # other batch sizes: the cache stays bounded
        read_frames_dali([clips["vp9"]], [0.5], (20, 20), decoder="cpu", max_batch_size=3 + k)
    assert len(dali_mod._PIPELINES) == dali_mod.MAX_PIPELINES


def test_bad_files_are_recorded_and_the_others_kept(clips):
    paths = [clips["vp9"], clips["h264"], clips["corrupt"], clips["vp9"], clips["vp9"].parent / "missing.webm"]
    got = read_frames_dali(paths, [0.5, 1.5], decoder="cpu", on_error="return")
    assert got[0].frames.shape == got[3].frames.shape == (2, 64, 96, 3)
    assert isinstance(got[1], CorruptMedia) and "Failed to create video decoder" in str(got[1])  # H.264 on CPU
    assert isinstance(got[2], CorruptMedia) and not isinstance(got[1], InfrastructureError)
    assert type(got[4]).__name__ == "MissingFile"
    with pytest.raises(CorruptMedia, match="h264.mp4"):
        read_frames_dali([clips["h264"]], [0.5], decoder="cpu")


def test_an_index_past_dalis_frame_count_is_an_error_not_a_black_frame(clips):
    """pad_mode="none": DALI's default would return an all-zero frame for index 25 of a 20-frame clip."""
    key = (8, False, "cpu", 0, 2)
    path = str(clips["vp9"])
    good = dali_mod._plan(path, np.array([0.5]), None)
    beyond = good._replace(idx=np.array([0, 25], np.int32), stamps=np.zeros(2))
    items = [(path, good), (path, beyond), (path, good)]
    got, _ = dali_mod._decode_chunk(dali_mod._pipeline(*key), key, items, "numpy", "return")
    assert isinstance(got[1], CorruptMedia) and "out-of-bounds frame index 25" in str(got[1])
    np.testing.assert_array_equal(got[0], got[2])  # the chunk's other files, decoded on their own
    assert got[0].shape == (1, 64, 96, 3) and got[0].max() > 0


def test_empty_times_give_an_empty_batch_without_decoding(clips):
    (got,) = read_frames_dali([clips["vp9"]], [[]], decoder="cpu")
    assert got.frames.shape == (0, 64, 96, 3) and len(got.indices) == 0
    (sized,) = read_frames_dali([clips["vp9"]], [[]], (8, 8), decoder="cpu", output="torch")
    assert tuple(sized.frames.shape) == (0, 8, 8, 3)


def test_pipeline_build_failing_on_nvdec_is_an_infrastructure_error(clips, monkeypatch):
    import nvidia.dali as dali

    def build(self):
        raise RuntimeError("[nvdecoder.cc:251] dlopen libnvcuvid.so failed!. Please install NVIDIA GPU driver")

    monkeypatch.setattr(dali.Pipeline, "build", build)
    with pytest.raises(InfrastructureError, match=r"nvdec_unavailable: .*dlopen libnvcuvid.so failed"):
        read_frames_dali([clips["vp9"]], [0.5], decoder="cpu", on_error="return")


def test_dali_decoder_stage_rows_equal_the_cpu_paths(clips):
    """The DALI stage's decode half on DALI's CPU decoder: the same rows as the CPU path (segments sampling,
    aspect-kept resize, a too-short clip, a missing path, a file DALI cannot decode), no GPU fallback."""
    video, audio = VideoConfig(sampling="segments", short_side=32), AudioConfig(segment_seconds=1.0)
    names = ["vp9", "wide", "short", None, "h264", "vfr"]
    paths = [None if n is None else str(clips[n]) for n in names]
    batch = {
        "clip_id": np.array([str(n) for n in names], dtype=object),
        "video_path": np.array(paths, dtype=object),
        "row": np.arange(len(names)),
        "block": np.zeros(len(names), np.int64),
    }
    dali = DaliDecoder(video, audio, device="cpu", decoder="cpu", timeout_s=30.0)
    cpu = VideoDecodeStage(video, audio, timeout_s=30.0)
    try:
        out, frames = dali(dict(batch))
        want = cpu(dict(batch))
    finally:
        dali.close()
        cpu.reader.close()
    mine = np.flatnonzero(out["clip_id"] != "h264")  # H.264: PyAV decodes it, DALI's CPU decoder cannot
    theirs = np.flatnonzero(want["clip_id"] != "h264")
    for key in ("clip_id", "segment", "n_segments", "frame_index", "timestamp_s", "start_s", "end_s", "error_type"):
        assert out[key][mine].tolist() == want[key][theirs].tolist(), key
    types = dict(zip(out["clip_id"], out["error_type"], strict=True))
    assert types["short"] == NoFramesSampled.kind and types["None"] == "no_video" and types["h264"] == "corrupt_media"
    assert set(out[FALLBACK_COLUMN]) == {""} and dali.broken is None  # bad files are not machine failures
    ok = np.flatnonzero(out["error_type"] == "")
    assert len(ok) == 2 + 2 + 2  # three 2-s clips, 1-s segments
    for i, j in zip(mine, theirs, strict=True):
        if out["error_type"][i] == "":
            assert tuple(frames[i].shape) == want["frame"][j].shape
            assert np.abs(frames[i].numpy().astype(np.int16) - want["frame"][j]).mean() < 8
