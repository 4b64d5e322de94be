"""Video frames (avs.decode.video, avs.decode.dali): times -> frames against a plain PyAV decode."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from avs.decode.dali import DaliUnavailable, dali_available, read_frames_dali
from avs.decode.errors import CorruptMedia, DecoderCrashed, DecodeTimeout, EmptyFile, MissingFile, NoVideoTrack
from avs.decode.video import (
    VIDEO_DECODERS,
    FrameSampling,
    VariableFrameRate,
    is_evenly_spaced,
    probe_video,
    read_frames,
    read_frames_decord,
    sample_frames,
    sample_times,
    stream_index,
)
from avs.decode.video_guard import GuardedFrameReader
from avs.testing import media

BACKENDS = ("pyav", "decord", "auto")


# ------------------------------------------------------------------------------------------------ helpers


def reference_decode(path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame by a plain PyAV decode: (start times from the first frame (n,), RGB frames), by pts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = float(stream.time_base)
        decoded = [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)]
    decoded.sort(key=lambda item: item[0])
    pts = np.array([p for p, _ in decoded], dtype=np.int64)
    return (pts - pts[0]) * time_base, [f for _, f in decoded]


def expected_indices(starts_s: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """The last frame whose start <= t (clipped to the video)."""
    return np.clip(np.searchsorted(starts_s, np.asarray(times_s) + 1e-6, side="right") - 1, 0, len(starts_s) - 1)


def write_short_gop(path: Path, n_frames: int = 40, fps: int = 10, keyint: int = 4) -> Path:
    """H.264 with a key frame every ``keyint`` frames and B-frames (exercises seeking and reordering)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {
            "preset": "veryfast",
            "crf": "28",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:bframes=2:scenecut=0",
        }
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(media.pattern_frame(i, 96, 64), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    tone = np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000).astype(np.float32) * 0.1
    v = {
        "cfr": media.write_video(d / "cfr.mp4", 3.0, fps=10, width=96, height=64, audio=tone),
        "vfr": media.write_video(d / "vfr.mp4", 3.0, fps=10, width=96, height=64, vfr=True, seed=3),
        "one": media.write_video(d / "one.mp4", 0.1, fps=10, width=96, height=64),
        "audio_only": media.write_video(d / "audio_only.m4a", 1.0, audio=tone, video=False),
        "corrupt": media.write_corrupt(d / "corrupt.mp4"),
        "empty": media.write_empty(d / "empty.mp4"),
        "gop": write_short_gop(d / "gop.mp4"),
        "mkv": media.write_video(d / "clip.mkv", 2.0, fps=10, width=96, height=64),
    }
    if not media.can_encode("h264"):
        pytest.skip("this PyAV build has no H.264 encoder")
    v["truncated"] = media.write_truncated(v["cfr"], d / "truncated.mp4", 0.5)
    v["truncated_mkv"] = media.write_truncated(v["mkv"], d / "truncated.mkv", 0.5)
    return v


# ------------------------------------------------------------------------------------------------ sampling


def test_sample_times_even_are_interval_centres():
    t = sample_times(10.0, FrameSampling("even", n_frames=12))  # paper 000: 12 frames per 10-s clip
    np.testing.assert_allclose(t, (np.arange(12) + 0.5) * 10.0 / 12)
    assert t[0] > 0 and t[-1] < 10.0
    np.testing.assert_allclose(sample_times(10.0, FrameSampling("even", n_frames=5)), [1, 3, 5, 7, 9])
    np.testing.assert_array_equal(sample_times(0.0, FrameSampling("even", n_frames=3)), [0, 0, 0])


def test_sample_times_fps_and_timestamps():
    np.testing.assert_allclose(sample_times(1.0, FrameSampling("fps", fps=10.0)), np.arange(10) / 10)
    np.testing.assert_allclose(sample_times(0.25, FrameSampling("fps", fps=10.0)), [0.0, 0.1, 0.2])
    assert len(sample_times(10.0, FrameSampling("fps", fps=10.0))) == 100
    np.testing.assert_array_equal(sample_times(0.0, FrameSampling("fps", fps=10.0)), [0.0])
    s = FrameSampling("timestamps", timestamps_s=(0.5, 2, 1))
    np.testing.assert_array_equal(sample_times(3.0, s), [0.5, 2.0, 1.0])


@pytest.mark.parametrize(
    "kwargs", [dict(mode="even", n_frames=0), dict(mode="fps", fps=0.0), dict(mode="timestamps"), dict(mode="x")]
)
def test_frame_sampling_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        FrameSampling(**kwargs)


# ------------------------------------------------------------------------------------------------ frames


def test_probe_video(videos):
    info = probe_video(videos["cfr"])
    assert (info.width, info.height, info.n_frames, info.has_audio) == (96, 64, 30, True)
    assert info.fps == pytest.approx(10.0) and info.duration_s == pytest.approx(3.0, abs=0.01)
    assert probe_video(videos["vfr"]).has_audio is False
    with pytest.raises(NoVideoTrack):
        probe_video(videos["audio_only"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_cfr_frames_match_reference_decode(videos, backend):
    starts, ref = reference_decode(videos["cfr"])
    times = np.concatenate([sample_times(3.0, FrameSampling("even", 12)), [0.0, 0.1, 0.15, 2.95, -1.0, 99.0]])
    batch = read_frames(videos["cfr"], times, backend)
    exp = expected_indices(starts, times)
    np.testing.assert_array_equal(batch.indices, exp)
    np.testing.assert_allclose(batch.timestamps_s, starts[exp], atol=1e-5)
    assert batch.frames.shape == (len(times), 64, 96, 3) and batch.frames.dtype == np.uint8
    for frame, i in zip(batch.frames, exp, strict=True):
        diff = np.abs(frame.astype(np.int16) - ref[i]).max()
        assert diff <= (0 if backend == "pyav" else 3), diff


def test_decord_and_pyav_give_the_same_frames_on_cfr(videos):
    times = sample_times(3.0, FrameSampling("even", 7))
    a = read_frames(videos["cfr"], times, "decord")
    b = read_frames(videos["cfr"], times, "pyav")
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.abs(a.frames.astype(np.int16) - b.frames).mean() < 1.0
    assert np.abs(a.frames.astype(np.int16) - b.frames).max() <= 3


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_vfr_frames_follow_presentation_timestamps(videos, backend):
    starts, ref = reference_decode(videos["vfr"])
    assert not is_evenly_spaced(starts)  # the test video really is variable frame rate
    times = np.concatenate([np.linspace(0, 3.0, 23), starts[1:6], starts[1:6] - 1e-3])
    batch = read_frames(videos["vfr"], times, backend)
    exp = expected_indices(starts, times)
    np.testing.assert_array_equal(batch.indices, exp)
    np.testing.assert_allclose(batch.timestamps_s, starts[exp], atol=1e-6)
    for frame, i in zip(batch.frames, exp, strict=True):
        np.testing.assert_array_equal(frame, ref[i])


def test_decord_refuses_vfr_when_asked_and_auto_falls_back(videos, monkeypatch):
    with pytest.raises(VariableFrameRate):
        read_frames_decord(str(videos["vfr"]), np.array([0.5]), allow_vfr=False)
    assert is_evenly_spaced(stream_index(videos["cfr"]).starts_s)

    import avs.decode.video as video

    calls = []
    original = video.read_frames_pyav
    monkeypatch.setattr(video, "read_frames_pyav", lambda *a, **k: calls.append(a[0]) or original(*a, **k))
    read_frames(videos["cfr"], [0.5], "auto")
    assert calls == []  # CFR: decord
    read_frames(videos["vfr"], [0.5], "auto")
    assert calls == [str(videos["vfr"])]  # VFR: PyAV


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_short_gops_unsorted_and_repeated_times(videos, backend):
    starts, ref = reference_decode(videos["gop"])
    times = np.array([3.9, 0.05, 1.23, 1.23, 2.0, 0.0, 3.5, 0.31, 3.95, 0.4])
    batch = read_frames(videos["gop"], times, backend)
    exp = expected_indices(starts, times)
    np.testing.assert_array_equal(batch.indices, exp)
    for frame, i in zip(batch.frames, exp, strict=True):
        assert np.abs(frame.astype(np.int16) - ref[i]).max() <= (0 if backend == "pyav" else 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_frame_video_gives_that_frame_everywhere(videos, backend):
    _, ref = reference_decode(videos["one"])
    assert len(ref) == 1
    batch = read_frames(videos["one"], [0.0, 0.05, 0.5, 12.0], backend)
    np.testing.assert_array_equal(batch.indices, [0, 0, 0, 0])
    np.testing.assert_array_equal(batch.timestamps_s, [0.0, 0.0, 0.0, 0.0])
    for frame in batch.frames:
        assert np.abs(frame.astype(np.int16) - ref[0]).max() <= 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("name", "error"),
    [("corrupt", CorruptMedia), ("truncated", CorruptMedia), ("empty", EmptyFile), ("audio_only", NoVideoTrack)],
)
def test_bad_videos_raise_clear_errors(videos, backend, name, error):
    with pytest.raises(error, match=str(videos[name].name)):
        read_frames(videos[name], [0.5], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file(tmp_path, backend):
    with pytest.raises(MissingFile):
        read_frames(tmp_path / "nope.mp4", [0.0], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_mkv_gives_the_frames_that_are_there(videos, backend):
    index = stream_index(videos["truncated_mkv"])
    full = stream_index(videos["mkv"])
    assert 0 < len(index.pts) < len(full.pts)
    starts, ref = reference_decode(videos["truncated_mkv"])
    batch = read_frames(videos["truncated_mkv"], [0.0, 0.35, 5.0], backend)
    assert batch.indices[-1] <= len(index.pts) - 1
    for frame, i in zip(batch.frames, batch.indices, strict=True):
        assert np.abs(frame.astype(np.int16) - ref[i]).max() <= 3


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_resize_is_pil_bicubic(videos, backend):
    full = read_frames(videos["cfr"], [1.0, 2.0], backend)
    small = read_frames(videos["cfr"], [1.0, 2.0], backend, size=(32, 40))
    assert small.frames.shape == (2, 32, 40, 3)
    for a, b in zip(full.frames, small.frames, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.fromarray(a).resize((40, 32), Image.BICUBIC)), b)


def test_empty_times_and_sample_frames(videos):
    batch = read_frames(videos["cfr"], [], "pyav")
    assert batch.frames.shape == (0, 64, 96, 3)
    batch = sample_frames(videos["cfr"], FrameSampling("even", n_frames=5), size=(32, 48))
    np.testing.assert_array_equal(batch.indices, expected_indices(np.arange(30) / 10, [0.3, 0.9, 1.5, 2.1, 2.7]))
    assert batch.frames.shape == (5, 32, 48, 3)


def test_unknown_backend_is_named(videos):
    with pytest.raises(KeyError, match="registered"):
        read_frames(videos["cfr"], [0.0], "nope")
    assert {"pyav", "decord", "auto"} <= set(VIDEO_DECODERS.names())


# ------------------------------------------------------------------------------------------------ guarded


def test_guarded_reader_survives_crash_and_hang(videos, tmp_path):
    crash = shutil.copy(videos["cfr"], tmp_path / "crash.mp4")
    hang = shutil.copy(videos["cfr"], tmp_path / "hang.mp4")
    with GuardedFrameReader(timeout_s=20, plugins=("avs.testing.faulty_video",), backend="faulty") as reader:
        good = reader.read_frames(videos["cfr"], [0.05, 1.0])
        np.testing.assert_array_equal(good.indices, [0, 10])
        with pytest.raises(CorruptMedia):
            reader.read_frames(videos["corrupt"], [0.0])
        with pytest.raises(DecoderCrashed):
            reader.read_frames(crash, [0.0])
        reader.timeout_s = 2.0
        with pytest.raises(DecodeTimeout):
            reader.read_frames(hang, [0.0])
        reader.timeout_s = 20.0
        again = reader.read_frames(videos["cfr"], [0.05, 1.0])  # a fresh child after the crash / hang
        np.testing.assert_array_equal(again.frames, good.frames)


# ------------------------------------------------------------------------------------------------ DALI


def test_dali_path_skips_cleanly_without_dali_or_cuda(videos):
    if dali_available():
        pytest.skip("DALI and CUDA are present: the gpu tests cover this path")
    with pytest.raises(DaliUnavailable, match="DALI|CUDA"):
        read_frames_dali([videos["cfr"]], [0.5])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dali_frames_match_pyav(videos):
    if not dali_available():
        pytest.skip("NVIDIA DALI is not installed")
    times = [np.array([0.0, 1.23, 2.5, 9.0]), np.concatenate([np.linspace(0, 3, 7)])]
    paths = [videos["cfr"], videos["vfr"]]
    out = read_frames_dali(paths, times)
    for path, t, got in zip(paths, times, out, strict=True):
        ref = read_frames(path, t, "pyav")
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_allclose(got.timestamps_s, ref.timestamps_s, atol=1e-6)
        # NVDEC vs swscale colour maths: DALI 2.4's CPU decoder on this pattern measured mean 3.1-3.5 grey levels,
        # median 2, up to ~20 at sharp colour edges (tests/test_dali_cpu.py checks the same bounds)
        diff = np.abs(got.frames.astype(np.int16) - ref.frames)
        assert np.median(diff) <= 2 and diff.mean() < 5
    resized = read_frames_dali([videos["cfr"]], [0.5], size=(32, 48), output="torch")[0]
    assert tuple(resized.frames.shape) == (1, 32, 48, 3) and resized.frames.is_cuda
    bad = read_frames_dali([videos["corrupt"], videos["cfr"]], [0.5], on_error="return")
    assert isinstance(bad[0], CorruptMedia) and bad[1].frames.shape == (1, 64, 96, 3)


def test_dali_times_per_file():
    from avs.decode.dali import _per_file_times

    same = _per_file_times([0.5, 1.0], 3)
    assert len(same) == 3 and all(np.array_equal(t, [0.5, 1.0]) for t in same)
    each = _per_file_times([[0.1], [0.2, 0.3]], 2)
    assert [t.tolist() for t in each] == [[0.1], [0.2, 0.3]]
    with pytest.raises(ValueError, match="3 files"):
        _per_file_times([[0.1], [0.2]], 3)
    assert isinstance(dali_available(), bool)
