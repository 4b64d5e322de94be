"""GPU paths tested as far as a CPU allows: DALI's decode graph and error handling (its pipeline factory replaced
where DALI or a GPU is missing), infrastructure failures told apart from bad files, CPU fallback counted,
fail-fast on a cluster without GPUs, AMP dtype, faiss GPU resources, the delta operator. Tests marked ``gpu``
run the real thing on a CUDA machine and skip cleanly elsewhere."""

from __future__ import annotations

import sys
import time
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

import avs.decode.dali as dali_mod
from avs.decode.dali import define_graph, read_frames_dali
from avs.decode.errors import (
    CorruptMedia,
    DecodeError,
    InfrastructureError,
    MissingFile,
    NoFramesSampled,
    infrastructure_reason,
)
from avs.decode.video import FrameBatch, read_frames
from avs.shards.config import AudioConfig, VideoConfig
from avs.shards.stages import FALLBACK_COLUMN, finish_batch
from avs.shards.video_stages import DaliDecoder, DecodedClip, VideoDecodeStage, frame_rows
from avs.testing import media

# Messages as DALI 2.4, the CUDA runtime and torch write them (DALI's from its library strings and CPU runs)
NVDEC_MISSING = (
    "Critical error in pipeline:\nencountered:\ndlopen libnvcuvid.so failed!. Please install NVIDIA GPU driver"
)
CUDA_ERROR = "CUDA runtime API error cudaErrorIllegalAddress (700):\nan illegal memory access was encountered"
DALI_OOM = "Critical error in pipeline:\nencountered:\nCan't allocate 8589934592 bytes on device 0."
OUT_OF_BOUNDS = (
    "Critical error in pipeline:\nCritical error in pipeline:\nError in CPU operator `nvidia.dali.fn.decoders.video`,"
    "\nencountered:\n\nUnexpected out-of-bounds frame index 25 for pad_mode = 'none' and a sample containing a ROI "
    "with 20 frames. Range of valid frame indices for this sample is [0, 20).\n"
    "C++ context: [frames_decoder_base.cc:592] \nCurrent pipeline object is no longer valid."
)
NOT_DECODABLE = (
    "Critical error in pipeline:\nencountered:\n\n"
    'Assert on "frames_decoders_[s]->IsValid()" failed: Failed to create video decoder for "memory file"'
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_paths")
    media.write_video(root / "a.mp4", 2.0, fps=10, width=96, height=64, color_seed=1)
    media.write_video(root / "b.mp4", 2.0, fps=10, width=64, height=48, color_seed=2)
    media.write_video(root / "short.mp4", 0.3, fps=10, width=96, height=64, color_seed=3)
    media.write_corrupt(root / "corrupt.mp4")
    return root


class FakePipeline:
    """Stands in for a built DALI pipeline (the library boundary) whose every run fails with ``message``."""

    runs = 0

    def __init__(self, message: str) -> None:
        self.message = message
        self.fed: dict[str, list] = {}

    def feed_input(self, name: str, data: list) -> None:
        self.fed[name] = data

    def run(self, *stream):
        FakePipeline.runs += 1
        raise RuntimeError(self.message)


@pytest.fixture
def dali_fails(monkeypatch):
    """``fails(message)``: every DALI pipeline avs gets fails its runs with ``message`` (no DALI / GPU needed)."""

    def fails(message: str) -> None:
        FakePipeline.runs = 0
        monkeypatch.setattr(dali_mod, "_PIPELINES", OrderedDict())
        monkeypatch.setattr(dali_mod, "_pipeline", lambda *key: FakePipeline(message))

    return fails


def _batch(root, names):
    paths = [None if n is None else str(root / n) for n in names]
    return {
        "clip_id": np.array([f"c{i}" for i in range(len(names))], dtype=object),
        "video_path": np.array(paths, dtype=object),
        "row": np.arange(len(names)),
        "block": np.zeros(len(names), np.int64),
    }


# ------------------------------------------------------------------------------------------------ classification


def test_infrastructure_failures_are_told_apart_from_bad_files():
    assert infrastructure_reason(RuntimeError(NVDEC_MISSING)) == "nvdec_unavailable"
    assert infrastructure_reason(RuntimeError(CUDA_ERROR)) == "cuda_error"
    assert infrastructure_reason(RuntimeError("Found no NVIDIA driver on your system.")) == "cuda_error"
    assert infrastructure_reason(RuntimeError(DALI_OOM)) == "gpu_out_of_memory"
    assert infrastructure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate")) == "gpu_out_of_memory"
    for bad_file in (OUT_OF_BOUNDS, NOT_DECODABLE, "Invalid data found when processing input"):
        assert infrastructure_reason(RuntimeError(bad_file)) is None
    failure = InfrastructureError("nvdec_unavailable", "no NVDEC", "/data/x.mp4")
    assert not isinstance(failure, DecodeError)  # never an errors.parquet row of a "corrupt" file
    assert str(failure) == "nvdec_unavailable: no NVDEC [/data/x.mp4]"


def test_dali_graph_asks_for_pad_mode_none_and_per_file_sizes():
    calls: list[tuple[str, tuple, dict]] = []

    def op(name):
        def call(*args, **kwargs):
            calls.append((name, args, kwargs))
            return f"<{name}:{kwargs.get('name', len(calls))}>"

        return call

    fn = types.SimpleNamespace(
        decoders=types.SimpleNamespace(video=op("video")), external_source=op("source"), resize=op("resize")
    )
    dtypes = types.SimpleNamespace(UINT8="u8", INT32="i32", FLOAT="f32", INTERP_CUBIC="cubic")
    out = define_graph(fn, dtypes, resize=True, decoder="gpu")
    (video,) = [c for c in calls if c[0] == "video"]
    assert video[2]["pad_mode"] == "none"  # an index past DALI's frame count raises, no black frame
    assert video[2]["device"] == "mixed" and video[2]["frames"] == "<source:frame_idx>"
    (resize,) = [c for c in calls if c[0] == "resize"]
    assert resize[2]["size"] == "<source:size>" and out == "<resize:5>"  # the size is an input, not a constant
    calls.clear()
    define_graph(fn, dtypes, resize=False, decoder="cpu")
    assert [c[2]["device"] for c in calls if c[0] == "video"] == ["cpu"] and not any(c[0] == "resize" for c in calls)


def test_nvdec_missing_is_an_infrastructure_error_for_every_file(clips, dali_fails):
    dali_fails(NVDEC_MISSING)
    paths = [clips / "a.mp4", clips / "missing.mp4", clips / "b.mp4"]
    got = read_frames_dali(paths, [0.5, 1.5], decoder="cpu", on_error="return")
    assert isinstance(got[1], MissingFile)  # a bad file stays a bad file
    for g in (got[0], got[2]):
        assert isinstance(g, InfrastructureError) and not isinstance(g, CorruptMedia)
        assert g.reason == "nvdec_unavailable" and "libnvcuvid" in g.message
    assert FakePipeline.runs == 1  # not retried file by file: the machine, not a file, is at fault
    with pytest.raises(InfrastructureError, match="nvdec_unavailable"):
        read_frames_dali([clips / "a.mp4"], [0.5], decoder="cpu")


def test_a_file_dali_cannot_decode_is_corrupt_media_with_the_real_cause(clips, dali_fails):
    dali_fails(NOT_DECODABLE)
    got = read_frames_dali([clips / "a.mp4", clips / "b.mp4"], [0.5], decoder="cpu", on_error="return")
    assert all(isinstance(g, CorruptMedia) for g in got)
    assert "Failed to create video decoder" in str(got[0]) and "a.mp4" in str(got[0])  # not "Critical error..."
    assert FakePipeline.runs == 3  # the chunk, then each file on its own


def test_gpu_out_of_memory_is_retried_file_by_file_and_never_corrupt(clips, dali_fails):
    dali_fails(DALI_OOM)
    got = read_frames_dali([clips / "a.mp4", clips / "b.mp4"], [0.5], decoder="cpu", on_error="return")
    assert [g.reason for g in got] == ["gpu_out_of_memory"] * 2
    assert [g.path for g in got] == [str(clips / "a.mp4"), str(clips / "b.mp4")]
    assert FakePipeline.runs == 3


# ------------------------------------------------------------------------------------------------ the DALI stage


def test_empty_sampling_gives_the_cpu_paths_error_row(clips, dali_fails):
    """A video shorter than half a segment has no sampled time: DALI is not run (it would return 0 frames and
    the rows divide by zero); the row is the CPU path's."""
    dali_fails(CUDA_ERROR)  # any DALI run would fail: none happens
    video, audio = VideoConfig(sampling="segments", short_side=32), AudioConfig(segment_seconds=1.0)
    batch = _batch(clips, ["short.mp4"])
    dali = DaliDecoder(video, audio, device="cpu", decoder="cpu")
    out, frames = dali(batch)
    assert FakePipeline.runs == 0
    cpu = VideoDecodeStage(video, audio, timeout_s=30.0)
    try:
        want = cpu(dict(batch))
    finally:
        cpu.reader.close()
    for key in ("clip_id", "segment", "n_segments", "error_stage", "error_type", "error_message"):
        assert out[key].tolist() == want[key].tolist(), key
    assert out["error_type"].tolist() == [NoFramesSampled.kind] and len(frames) == 1


def test_frame_rows_turn_zero_frames_into_an_error_row():
    empty = FrameBatch(np.zeros((0, 4, 4, 3), np.uint8), np.zeros(0), np.zeros(0, np.int64))
    one = FrameBatch(np.ones((1, 4, 4, 3), np.uint8), np.array([0.5]), np.array([5]))
    out, frames = frame_rows([DecodedClip("e", 0, 0, empty, {}, 0.1), DecodedClip("g", 1, 0, one, {}, 0.2)], 0.0)
    assert out["clip_id"].tolist() == ["e", "g"] and out["error_type"].tolist() == [NoFramesSampled.kind, ""]
    assert out["decode_s"].tolist() == [0.1, 0.2] and len(frames) == 2


def _assert_same_rows_and_frames(out: dict, frames: list, want: dict) -> None:
    """The DALI stage's rows and frames equal the CPU path's (VideoDecodeStage) for the same batch."""
    for key in ("clip_id", "segment", "frame_index", "timestamp_s", "error_type", "error_message"):
        assert out[key].tolist() == want[key].tolist(), key
    for got, ref in zip(frames, want["frame"], strict=True):
        np.testing.assert_array_equal(np.asarray(got), ref)


def test_infrastructure_failure_falls_back_to_cpu_decode_and_is_counted(clips, dali_fails):
    """NVDEC missing: each file is decoded by the CPU path instead (same frames), its rows say why, later blocks
    skip DALI; bad files keep their own error rows; the driver's count comes from the status rows."""
    from avs.shards.pipeline import _count_fallbacks

    dali_fails(NVDEC_MISSING)
    video, audio = VideoConfig(sampling="segments", short_side=32), AudioConfig(segment_seconds=1.0)
    names = ["a.mp4", None, "corrupt.mp4", "b.mp4", "short.mp4"]
    dali = DaliDecoder(video, audio, device="cpu", decoder="cpu", timeout_s=30.0)
    cpu = VideoDecodeStage(video, audio, timeout_s=30.0)
    try:
        out, frames = dali(_batch(clips, names))
        want = cpu(_batch(clips, names))
        again, _ = dali(_batch(clips, ["a.mp4"]))
    finally:
        dali.close()
        cpu.reader.close()
    _assert_same_rows_and_frames(out, frames, want)
    why = {c: w for c, w in zip(out["clip_id"], out[FALLBACK_COLUMN], strict=True)}
    assert why["c0"].startswith("nvdec_unavailable: DALI failed") and why["c0"] == why["c3"]
    assert why["c1"] == why["c2"] == why["c4"] == ""  # bad files are not GPU fallbacks
    assert FakePipeline.runs == 1 and again[FALLBACK_COLUMN].tolist() == [why["c0"]] * 2  # DALI not tried again

    status, tables = finish_batch(out, np.zeros(len(out["clip_id"]), bool), out, {}, 0.0, (), None)
    assert tables is None and status["clip_id"].tolist() == ["c0", "c1", "c2", "c3", "c4"]
    counts: dict[str, int] = {}
    _count_fallbacks(status, counts)
    _count_fallbacks({"clip_id": np.array(["x"])}, counts)  # audio status rows: no column, nothing counted
    assert counts == {why["c0"]: 2}


def test_a_file_dali_cannot_read_is_decoded_on_cpu_as_a_cpu_run_would(clips, dali_fails, tmp_path):
    """A codec / profile NVDEC lacks fails in DALI for that file alone: the CPU path decodes it (same rows and
    frames as a CPU run), the rows say why, DALI stays on for later files; a file the CPU decoder fails on too
    gets the CPU's error row with DALI's message; with the fallback off, DALI's error row."""
    import shutil

    from avs.decode.video_guard import GuardedFrameReader

    dali_fails(NOT_DECODABLE)
    video, audio = VideoConfig(sampling="segments", short_side=32), AudioConfig(segment_seconds=1.0)
    names = ["a.mp4", "b.mp4"]
    dali = DaliDecoder(video, audio, device="cpu", decoder="cpu", timeout_s=30.0)
    strict = DaliDecoder(video, audio, device="cpu", decoder="cpu", timeout_s=30.0, gpu_fallback=False)
    cpu = VideoDecodeStage(video, audio, timeout_s=30.0)
    shutil.copy(clips / "a.mp4", tmp_path / "crash.mp4")  # the CPU decoder below crashes on this name
    both = DaliDecoder(video, audio, device="cpu", decoder="cpu", timeout_s=30.0)
    both._reader = GuardedFrameReader(timeout_s=30.0, plugins=("avs.testing.faulty_video",), backend="faulty")
    try:
        out, frames = dali(_batch(clips, names))
        want = cpu(_batch(clips, names))
        refused, _ = strict(_batch(clips, names))
        crashed, _ = both(_batch(tmp_path, ["crash.mp4"]))
    finally:
        for d in (dali, strict, both):
            d.close()
        cpu.reader.close()
    _assert_same_rows_and_frames(out, frames, want)
    assert set(out[FALLBACK_COLUMN]) == {"gpu_decode_error (corrupt_media): the GPU decoder could not read the file"}
    assert dali.broken is None and FakePipeline.runs > 1  # a file's failure leaves DALI on for the next files
    assert refused["error_type"].tolist() == [CorruptMedia.kind] * 2 and set(refused[FALLBACK_COLUMN]) == {""}
    assert crashed["error_type"].tolist() == ["decoder_crashed"] and crashed[FALLBACK_COLUMN].tolist() == [""]
    assert "the GPU decoder failed too: " in crashed["error_message"][0]
    assert "Failed to create video decoder" in crashed["error_message"][0]


def test_without_fallback_an_infrastructure_failure_stops_with_a_clear_message(clips, dali_fails):
    dali_fails(CUDA_ERROR)
    dali = DaliDecoder(VideoConfig(n_frames=2), AudioConfig(), device="cpu", decoder="cpu", gpu_fallback=False)
    with pytest.raises(InfrastructureError, match="cuda_error: .*gpu_decode_fallback is off, so the run stops"):
        dali(_batch(clips, ["a.mp4"]))


class NoNvdecStage:
    """A Ray Data stage holding the DALI stage's decode half on a worker without NVDEC (the pipeline factory is
    replaced in the worker process), with the CPU fallback off."""

    def __init__(self) -> None:
        import avs.decode.dali

        avs.decode.dali._pipeline = lambda *key: FakePipeline(NVDEC_MISSING)
        self.decode = DaliDecoder(VideoConfig(n_frames=2), AudioConfig(), "cpu", decoder="cpu", gpu_fallback=False)

    def __call__(self, batch):
        out, _ = self.decode(batch)
        return {"clip_id": out["clip_id"]}


@pytest.mark.ray
def test_a_stop_reaches_the_driver_as_one_clear_error(ray_local, clips):
    """What ``avs extract``'s driver raises when a Ray worker stops the run (Ray Data hands it a RayTaskError)."""
    import ray.cloudpickle
    import ray.data

    from avs.shards.pipeline import infrastructure_stop

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the stage class travels to the worker
    ds = ray.data.from_items([{k: v[0] for k, v in _batch(clips, ["a.mp4"]).items()}])
    ds = ds.map_batches(NoNvdecStage, compute=ray.data.ActorPoolStrategy(size=1), batch_size=None)
    with pytest.raises(Exception) as info:
        ds.take_all()
    stop = infrastructure_stop(info.value, "video")
    assert isinstance(stop, InfrastructureError) and stop.reason == "nvdec_unavailable"
    assert stop.message.startswith("avs extract video stopped: the GPU video decoder failed")
    assert "gpu_decode_fallback is off" in stop.message and "Traceback" not in str(stop)
    assert infrastructure_stop(ValueError("a bug"), "video") is None


# ------------------------------------------------------------------------------------------------ fail fast


@pytest.mark.ray
def test_gpu_resources_missing_fail_fast_naming_the_resource(ray_local, monkeypatch):
    import avs.ray_start as rs
    from avs.ray_start import MissingResources, wait_for_resources

    monkeypatch.setattr(rs, "ray_is_embedded", lambda: False)  # as on a cluster, where a node may still join

    have = int(ray_local.cluster_resources().get("GPU", 0))  # one more GPU than there is, on any machine
    t0 = time.perf_counter()
    want = rf"GPU \(needs {have + 1}, the cluster has {have}\).*within 1 s.*Wait\."  # a cluster: waiting may help
    with pytest.raises(MissingResources, match=want):
        wait_for_resources(
            [{"GPU": 1.0, "CPU": 0.0}] * (have + 1), 1.0, "test workers", "Start GPU workers.", wait_hint="Wait."
        )
    assert time.perf_counter() - t0 < 15
    wait_for_resources([{"CPU": 1.0}], 30.0, "cpu workers")  # placeable: returns at once
    wait_for_resources([{"GPU": 1.0}], None, "no check")  # None: no check (Ray's own waiting)


@pytest.mark.ray
def test_embedded_ray_without_the_resource_fails_at_once(ray_local):
    import avs.ray_start as rs

    assert rs.ray_is_embedded()  # the suite's Ray was started by this process: no node can join it
    have = int(ray_local.cluster_resources().get("GPU", 0))
    t0 = time.perf_counter()
    with pytest.raises(rs.MissingResources, match=r"embedded Ray lacks GPU \(needs .*no other node can join"):
        rs.wait_for_resources([{"GPU": 1.0}] * (have + 1), 600.0, "test workers", wait_hint="WAIT LONGER")
    assert time.perf_counter() - t0 < 5  # not the 600 s an autoscaling cluster would be given
    with pytest.raises(rs.MissingResources) as stop:
        rs.wait_for_resources([{"GPU": 1.0}] * (have + 1), 600.0, "test workers", "Add GPUs.", wait_hint="WAIT LONGER")
    assert "Add GPUs." in str(stop.value) and "WAIT LONGER" not in str(stop.value)  # waiting cannot help here
    rs.wait_for_resources([{"CPU": 1.0}], 600.0, "cpu workers")  # placeable: still returns at once


@pytest.mark.ray
def test_extract_on_cuda_without_gpus_stops_within_gpu_wait_s(ray_local, tmp_path):
    if ray_local.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray has GPUs: the run would get one")
    from avs.config import from_dict
    from avs.ray_start import MissingResources
    from avs.shards.config import ExtractConfig
    from avs.shards.pipeline import run_extract
    from avs.testing import signals

    media.write_wav(tmp_path / "in" / "a.wav", signals.tone(440.0, 1.0, 16_000), 16_000)
    cfg = from_dict(
        ExtractConfig,
        {
            "input": str(tmp_path / "in"),
            "out": str(tmp_path / "out"),
            "dataset": "folder",
            "audio": {"sample_rate_hz": 16_000, "segment_seconds": 1.0},
            "features": [{"name": "logmel", "extractor": "logmel", "params": {"n_mels": 16, "deltas": False}}],
            "pipeline": {"device": "cuda", "gpu_wait_s": 1.0},
        },
    )
    t0 = time.perf_counter()
    with pytest.raises(MissingResources, match=r"avs extract audio: 1 GPU feature worker.*GPU \(needs 1"):
        run_extract(cfg)
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "out" / "errors.parquet").exists()  # nothing recorded against the data
    # the CLI says it in one line and exits 2 (no traceback)
    from avs.cli import main

    argv = ["extract", str(tmp_path / "in"), "--dataset", "folder", "--out", str(tmp_path / "out2"), "--device",
            "cuda", "--set", "audio.sample_rate_hz=16000", "--set", "pipeline.gpu_wait_s=1",
            "--set", "features=[{name: logmel, extractor: logmel, params: {n_mels: 16, deltas: false}}]"]  # fmt: skip
    assert main(argv) == 2


# ------------------------------------------------------------------------------------------------ AMP, faiss, deltas


def test_amp_picks_bf16_only_where_the_gpu_computes_it_natively(monkeypatch):
    from avs.train.loop import amp_dtype

    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert amp_dtype(cuda) == torch.float16  # emulated bf16 only (e.g. V100, T4): fp16 with a grad scaler
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert amp_dtype(cuda) == torch.bfloat16  # Ampere and later
    assert amp_dtype(torch.device("cpu")) == torch.float16  # (autocast is off on CPU)


def test_faiss_gpu_resources_are_made_once_per_process(monkeypatch):
    """faiss' GPU entry points replaced by counting stand-ins around a CPU index: two k-means runs on the "GPU"
    make one StandardGpuResources and give the CPU's clusters."""
    import faiss

    from avs.cluster import kmeans

    made, placed = [], []

    class Resources:
        def __init__(self) -> None:
            made.append(self)

    def to_gpus(resources, index, co=None, gpus=None):
        placed.append(list(resources))
        return index

    monkeypatch.setattr(faiss, "StandardGpuResources", Resources, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu_multiple_py", to_gpus, raising=False)
    monkeypatch.setattr(kmeans, "_GPU_RESOURCES", {})
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.1, size=(50, 4)) for c in (0.0, 5.0)]).astype(np.float32)
    first = kmeans.run_kmeans(x, 2, use_gpu=True)
    second = kmeans.run_kmeans(x, 2, use_gpu=True, seed=1)
    cpu = kmeans.run_kmeans(x, 2)
    assert len(made) == 1 and placed == [[made[0]], [made[0]]]
    np.testing.assert_array_equal(first.sizes, [50, 50])
    assert first.objective == pytest.approx(cpu.objective, rel=1e-5) == second.objective


def test_delta_operator_is_made_once_per_device_and_dtype():
    from avs.features import functional as F

    x = torch.randn(2, 8, 40)
    F.delta_operator.cache_clear()
    with torch.inference_mode():
        d1 = F.deltas(x, width=9, order=1)
    d1_again = F.deltas(x, width=9, order=1)
    assert F.delta_operator.cache_info().misses == 1 and F.delta_operator.cache_info().hits == 1
    ref = x @ torch.as_tensor(F.savgol_operator(40, 9, 1), dtype=torch.float32).T
    torch.testing.assert_close(d1, ref)
    torch.testing.assert_close(d1_again, ref)
    xg = x.clone().requires_grad_(True)  # the cached operator (made in inference mode) works with autograd
    F.deltas(xg, width=9, order=1).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


# ------------------------------------------------------------------------------------------------ on a GPU

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
def test_gpu_amp_dtype_and_delta_operator_on_the_device():
    from avs.features import functional as F
    from avs.train.loop import amp_dtype

    cuda = torch.device("cuda", torch.cuda.current_device())
    native = torch.cuda.get_device_capability() >= (8, 0)
    assert amp_dtype(cuda) == (torch.bfloat16 if native else torch.float16)
    x = torch.randn(3, 16, 50)
    got = F.deltas(x.to(cuda), width=9, order=2)
    op = F.delta_operator(50, 9, 2, torch.float32, got.device)
    assert op.device == got.device
    torch.testing.assert_close(got.cpu(), F.deltas(x, width=9, order=2), rtol=1e-4, atol=1e-4)


def test_faiss_gpu_probe_is_false_without_faiss(monkeypatch):
    import sys

    from avs.cluster import kmeans

    monkeypatch.setitem(sys.modules, "faiss", None)  # as on a machine without faiss: import raises ImportError
    assert kmeans.gpu_available() is False


@pytest.mark.gpu
def test_gpu_faiss_resources_are_shared_by_runs():
    from avs.cluster import kmeans

    if not kmeans.gpu_available():
        pytest.skip("needs a faiss GPU build and a CUDA GPU")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.1, size=(200, 8)) for c in (0.0, 5.0, 10.0)]).astype(np.float32)
    kmeans.run_kmeans(x, 3, use_gpu=True)
    res = dict(kmeans._GPU_RESOURCES)
    again = kmeans.run_kmeans(x, 3, use_gpu=True, seed=1)
    assert res and kmeans._GPU_RESOURCES == res
    assert sorted(again.sizes.tolist()) == [200, 200, 200]


@pytest.mark.gpu
@needs_cuda
def test_gpu_dali_torch_output_on_torch_stream_matches_host_output(clips):
    """NVDEC frames copied on torch's stream equal the host-synchronous ones, run after run (no buffer reuse
    race), over many output sizes (pipelines stay bounded); an index past the frame count is an error."""
    if not dali_mod.dali_available():
        pytest.skip("NVIDIA DALI is not installed (pip install 'avs[gpu]')")
    paths = [clips / "a.mp4", clips / "b.mp4"]
    times = [0.0, 0.55, 1.25, 1.95]
    host = read_frames_dali(paths, times, size=(48, 64))
    for _ in range(3):
        dev = read_frames_dali(paths, times, size=(48, 64), output="torch")
        for h, d in zip(host, dev, strict=True):
            assert d.frames.is_cuda
            np.testing.assert_array_equal(d.frames.cpu().numpy(), h.frames)
    for k in range(8):
        read_frames_dali(paths, [0.5], size=[(32 + 2 * k, 48), (16, 16 + 2 * k)], output="torch")
    assert len(dali_mod._PIPELINES) <= dali_mod.MAX_PIPELINES
    for path, h in zip(paths, read_frames_dali(paths, times), strict=True):
        ref = read_frames(path, times, "pyav")
        np.testing.assert_array_equal(h.indices, ref.indices)
        assert np.abs(h.frames.astype(np.int16) - ref.frames).mean() < 4.0
    key = (8, False, "gpu", 0, 2)
    plan = dali_mod._plan(str(paths[0]), np.array([0.5]), None)
    beyond = plan._replace(idx=np.array([0, 10_000], np.int32))
    got, _ = dali_mod._decode_chunk(dali_mod._pipeline(*key), key, [(str(paths[0]), beyond)], "numpy", "return")
    assert isinstance(got[0], CorruptMedia) and "out-of-bounds" in str(got[0])
