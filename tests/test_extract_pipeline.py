"""The extraction job end to end on a real local Ray: nothing lost, nothing doubled, bad input reported."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from avs.cli import main as avs_main
from avs.config import from_dict
from avs.data import load_manifest
from avs.decode.audio import read_audio
from avs.decode.segments import resample, segment_clip, to_channels
from avs.features.base import create_extractor
from avs.shards.config import ExtractConfig
from avs.shards.pipeline import run_extract
from avs.shards.state import ConfigMismatchError
from avs.testing import media, signals

pytestmark = pytest.mark.ray

SR = 16_000
LOGMEL = {"n_fft": 1024, "hop_length": 256, "n_mels": 64}
BAD = {  # file -> (stage, error_type) expected in errors.parquet
    "corrupt.wav": ("decode", "corrupt_media"),
    "empty.wav": ("decode", "empty_file"),
    "truncated.mp4": ("decode", "corrupt_media"),
    "video_only.mp4": ("decode", "no_audio_track"),
    "crash.wav": ("decode", "decoder_crashed"),
    "hang.wav": ("decode", "decode_timeout"),
    "short.wav": ("segment", "too_short"),
}


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    """Good clips (odd sample rates, stereo, silence, truncated WAV, MP4 audio) next to bad ones."""
    root = tmp_path_factory.mktemp("messy")
    media.write_wav(root / "tone_16k.wav", signals.tone(440.0, 2.0, 16_000), 16_000)
    media.write_wav(
        root / "noise_44k1_stereo.wav",
        np.stack([signals.white_noise(2.0, 44_100, seed=1), signals.pink_noise(2.0, 44_100, seed=2)]),
        44_100,
    )
    media.write_wav(root / "chirp_7350.flac", signals.chirp(50.0, 3000.0, 2.0, 7_350), 7_350)  # odd rate
    media.write_wav(root / "silent.wav", signals.silence(2.0, 16_000), 16_000)
    media.write_wav(root / "speech_3s.wav", signals.speech_like_bursts(3.0, 22_050, seed=4), 22_050)
    full = root / "full.wav"
    media.write_wav(full, signals.white_noise(4.0, 16_000, seed=6), 16_000)
    media.write_truncated(full, root / "truncated_ok.wav", 0.6)  # WAV cut short still decodes (~2.4 s)
    full.unlink()
    media.write_video(
        root / "with_audio.mp4",
        2.0,
        fps=5,
        audio=np.stack([signals.tone(300.0, 2.0, 48_000)] * 2),
        audio_rate_hz=48_000,
    )
    media.write_video(root / "video_only.mp4", 2.0, fps=5, audio=None)
    media.write_video(root / "src.mp4", 2.0, fps=5, audio=np.stack([signals.tone(300.0, 2.0, 48_000)] * 2))
    media.write_truncated(root / "src.mp4", root / "truncated.mp4", 0.5)
    (root / "src.mp4").unlink()
    media.write_corrupt(root / "corrupt.wav")
    media.write_empty(root / "empty.wav")
    media.write_wav(root / "crash.wav", signals.tone(440.0, 2.0, 16_000), 16_000)
    media.write_wav(root / "hang.wav", signals.tone(440.0, 2.0, 16_000), 16_000)
    media.write_wav(root / "short.wav", signals.tone(440.0, 0.2, 16_000), 16_000)
    return root


def _config(root, out, **overrides) -> ExtractConfig:
    tree = {
        "input": str(root),
        "out": str(out),
        "dataset": "folder",
        "audio": {"sample_rate_hz": SR, "channels": "mono", "segment_seconds": 1.0, "backend": "faulty"},
        "features": [{"name": "logmel", "extractor": "logmel", "params": dict(LOGMEL)}],
        "pipeline": {
            "plugins": ["avs.testing.faulty"],
            "decode_timeout_s": 2.5,  # hang.wav waits this long in every run (the start of a decoder is not counted)
            "rows_per_shard": 7,
            "batch_clips": 2,
        },
    }
    for key, value in overrides.items():
        tree[key] = {**tree.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(ExtractConfig, tree)


def _rows(out):
    return pq.read_table(out / "logmel").to_pydict() if (out / "logmel").exists() else {}


@pytest.fixture(scope="module")
def first_run(ray_local, messy_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    summary = run_extract(_config(messy_folder, out))
    return out, summary


def test_every_input_is_written_or_reported(first_run, messy_folder):
    out, summary = first_run
    manifest = load_manifest(messy_folder, "folder")
    counts = summary["counts"]
    assert counts["inputs"] == manifest.num_rows == 14
    assert counts["clips_written"] + counts["clips_failed"] == counts["inputs"]
    errors = pq.read_table(out / "errors.parquet").to_pylist()
    by_name = {e["path"].rsplit("/", 1)[1]: e for e in errors}
    assert set(by_name) == set(BAD)
    for name, (stage, kind) in BAD.items():
        assert (by_name[name]["stage"], by_name[name]["error_type"]) == (stage, kind), by_name[name]
        assert by_name[name]["message"]
    rows = _rows(out)
    written = set(rows["clip_id"])
    assert written == set(manifest.column("clip_id").to_pylist()) - {n.rsplit(".", 1)[0] for n in BAD}
    keys = list(zip(rows["clip_id"], rows["segment"], strict=True))
    assert len(keys) == len(set(keys)) == counts["rows_written"]
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == counts and run["throughput"]["clips_per_s"] > 0
    assert (out / "logmel" / "_feature_set.json").exists()


def test_written_features_equal_direct_computation(first_run, messy_folder):
    out, _ = first_run
    table = pq.read_table(out / "logmel")
    meta = table.schema.metadata
    shape = tuple(json.loads(meta[b"avs.shape"]))
    assert shape == (3, 64, 63)  # 1 + 16000 // 256 frames
    assert json.loads(meta[b"avs.feature_set"])["params"]["n_mels"] == 64
    ext = create_extractor("logmel", LOGMEL, sample_rate_hz=SR)
    for clip in ("noise_44k1_stereo", "chirp_7350", "with_audio"):
        path = next(p for p in messy_folder.iterdir() if p.stem == clip)
        audio, rate = read_audio(str(path))
        segs, starts = segment_clip(resample(to_channels(audio, "mono"), rate, SR), SR, 1.0)
        want = ext(torch.from_numpy(segs)).numpy()
        sel = table.filter(table.column("clip_id").to_numpy(zero_copy_only=False) == clip).sort_by("segment")
        got = np.asarray(sel.column("logmel").combine_chunks().flatten()).reshape(-1, *shape)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-3)
        np.testing.assert_allclose(sel.column("start_s").to_numpy(), starts)


def test_rerun_skips_finished_and_duplicates_nothing(first_run, messy_folder):
    out, first = first_run
    before = _rows(out)
    second = run_extract(_config(messy_folder, out))
    after = _rows(out)
    assert second["counts"]["processed"] == len(BAD)  # only the failed clips are tried again
    assert second["counts"]["clips_written"] == 0
    assert sorted(zip(after["clip_id"], after["segment"], strict=True)) == sorted(
        zip(before["clip_id"], before["segment"], strict=True)
    )
    errors = pq.read_table(out / "errors.parquet")
    assert errors.num_rows == len(BAD) == len(set(errors.column("clip_id").to_pylist()))


def test_resume_after_partial_run(ray_local, messy_folder, tmp_path):
    manifest = load_manifest(messy_folder, "folder")
    good = [i for i, p in enumerate(manifest.column("path").to_pylist()) if p.rsplit("/", 1)[1] not in BAD]
    partial = manifest.take(good[:3])  # a run that stopped after three clips
    run_extract(_config(messy_folder, tmp_path), manifest=partial)
    summary = run_extract(_config(messy_folder, tmp_path))
    assert summary["counts"]["skipped"] == 3
    rows = _rows(tmp_path)
    keys = list(zip(rows["clip_id"], rows["segment"], strict=True))
    assert len(keys) == len(set(keys))
    assert summary["counts"]["clips_in_output"] == len(good)


def test_other_feature_config_in_same_folder_is_refused(first_run, messy_folder, capsys):
    out, _ = first_run
    other = _config(
        messy_folder, out, features=[{"name": "logmel", "extractor": "logmel", "params": {**LOGMEL, "n_mels": 32}}]
    )
    with pytest.raises(ConfigMismatchError, match="n_mels: 64 -> 32"):
        run_extract(other)
    # through the CLI: a clear message and exit status 2, nothing written
    args = ["extract", str(messy_folder), "--out", str(out), "--preset", "dcase2021-t1b"]
    assert avs_main(args) == 2  # CLIP weights are not on this machine: said before anything starts
    assert "weights are not on this machine" in capsys.readouterr().err
    assert avs_main([*args, "--clip-random-weights"]) == 2
    assert "refused" in capsys.readouterr().err
    assert not (out / "frames").exists()  # nothing of the refused run was written


def test_cli_exit_status_follows_failure_fraction(ray_local, messy_folder, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "audio: {sample_rate_hz: 16000, segment_seconds: 1.0, backend: faulty}\n"
        "features: [{name: logmel, extractor: logmel, params: {n_fft: 1024, hop_length: 256, n_mels: 64}}]\n"
        "pipeline: {plugins: [avs.testing.faulty], decode_timeout_s: 2.5}\n"
    )
    args = ["extract", str(messy_folder), "--out", str(tmp_path / "o"), "--config", str(cfg), "--dataset", "folder"]
    assert avs_main([*args, "--max-failure-fraction", "0.9"]) == 0  # 7 of 14 failed
    assert avs_main([*args, "--max-failure-fraction", "0.2", "--set", "pipeline.retry_errors=true"]) == 1
    saved = (tmp_path / "o" / "config.yaml").read_text()
    assert "max_failure_fraction: 0.2" in saved


def test_orphan_parts_of_a_killed_run_are_redone(ray_local, messy_folder, tmp_path):
    """A run killed between the renames of one part (set A has it, set B not): the part is removed and
    its clips are extracted again, with no duplicate in either set."""
    two = _config(
        messy_folder,
        tmp_path,
        features=[
            {"name": "logmel", "extractor": "logmel", "params": dict(LOGMEL)},
            {"name": "mfcc", "extractor": "mfcc", "params": {"n_mfcc": 13, "n_fft": 1024, "hop_length": 256}},
        ],
    )
    first = run_extract(two)
    parts = sorted((tmp_path / "mfcc").glob("part-*.parquet"))
    victim = pq.read_table(parts[0], columns=["clip_id"]).column("clip_id").to_pylist()
    parts[0].unlink()  # as if the run died after writing logmel's part and before mfcc's
    second = run_extract(two)
    assert second["counts"]["processed"] == len(set(victim)) + first["counts"]["clips_failed"]
    for name in ("logmel", "mfcc"):
        t = pq.read_table(tmp_path / name, columns=["clip_id", "segment"]).to_pydict()
        keys = list(zip(t["clip_id"], t["segment"], strict=True))
        assert len(keys) == len(set(keys))
        assert set(victim) <= set(t["clip_id"])


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_pipeline_on_cuda_matches_cpu(ray_local, messy_folder, tmp_path):
    cpu = _config(messy_folder, tmp_path / "cpu", pipeline={"device": "cpu", "plugins": ["avs.testing.faulty"]})
    gpu = _config(messy_folder, tmp_path / "gpu", pipeline={"device": "cuda", "plugins": ["avs.testing.faulty"]})
    run_extract(cpu)
    summary = run_extract(gpu)
    assert summary["branches"]["audio"]["resources"]["use_gpu"]
    a = pq.read_table(tmp_path / "cpu" / "logmel").sort_by([("clip_id", "ascending"), ("segment", "ascending")])
    b = pq.read_table(tmp_path / "gpu" / "logmel").sort_by([("clip_id", "ascending"), ("segment", "ascending")])
    x = np.asarray(a.column("logmel").combine_chunks().flatten())
    y = np.asarray(b.column("logmel").combine_chunks().flatten())
    assert np.abs(x - y).max() < 0.05


def _cli_config(tmp_path, extra: str = "") -> list[str]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "audio: {sample_rate_hz: 16000, segment_seconds: 1.0, backend: faulty}\n"
        "features:\n"
        "  - {name: logmel, extractor: logmel, params: {n_fft: 1024, hop_length: 256, n_mels: 64}}\n"
        "  - {name: mfcc, extractor: mfcc, params: {n_mfcc: 13, n_fft: 1024, hop_length: 256}}\n"
        f"pipeline: {{plugins: [avs.testing.faulty], decode_timeout_s: 2.5, batch_clips: 2{extra}}}\n"
    )
    return ["--config", str(cfg), "--dataset", "folder"]


def test_rerun_with_the_same_failures_exits_the_same_way(ray_local, messy_folder, tmp_path, capsys):
    """7 of 14 clips fail: under a 60% limit both the first run and the re-run (which retries the 7 and sees
    them fail again) exit 0, because the fraction counts every clip of the manifest."""
    args = ["extract", str(messy_folder), "--out", str(tmp_path / "o"), *_cli_config(tmp_path)]
    args += ["--features", "logmel", "--max-failure-fraction", "0.6"]
    assert avs_main(args) == 0
    first = json.loads((tmp_path / "o" / "run.json").read_text())
    assert avs_main(args) == 0
    second = json.loads((tmp_path / "o" / "run.json").read_text())
    assert second["counts"]["processed"] == 7 and second["counts"]["clips_failed"] == 7
    assert first["failures"] == second["failures"] == {"clips": 14, "failed": 7, "fraction": 0.5}
    assert avs_main([*args[:-1], "0.4"]) == 1
    assert "50.0% of clips failed" in capsys.readouterr().err


def test_features_selects_sets_by_name(ray_local, messy_folder, tmp_path, capsys):
    out = tmp_path / "o"
    base = ["extract", str(messy_folder), "--out", str(out), *_cli_config(tmp_path), "--max-failure-fraction", "1"]
    assert avs_main([*base, "--features", "mfcc,nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown feature set(s) nope" in err and "logmel, mfcc" in err
    assert not out.exists()  # refused before anything was written
    assert avs_main([*base, "--features", "mfcc"]) == 0
    assert (out / "mfcc").is_dir() and not (out / "logmel").exists()
    run = json.loads((out / "run.json").read_text())
    assert list(run["feature_sets"]) == ["mfcc"]


def test_manifest_saved_with_the_shards_leads_rows_to_files(first_run, messy_folder):
    out, _ = first_run
    saved = pq.read_table(out / "manifest.parquet")
    assert sorted(saved.column("clip_id").to_pylist()) == sorted(
        load_manifest(messy_folder, "folder").column("clip_id").to_pylist()
    )
    path_of = dict(zip(saved.column("clip_id").to_pylist(), saved.column("path").to_pylist(), strict=True))
    for cid in set(_rows(out)["clip_id"]):
        assert path_of[cid].rsplit("/", 1)[1].rsplit(".", 1)[0] == cid


def test_parts_hold_many_clips(first_run):
    out, summary = first_run
    parts = sorted((out / "logmel").glob("part-*.parquet"))
    assert len(parts) < summary["counts"]["clips_written"]  # not one part per decode batch
    for p in parts:  # rows_per_shard 7 with 2-3-row clips: whole clips, at most 7 rows (a bigger clip alone)
        ids = pq.read_table(p, columns=["clip_id"]).column("clip_id").to_pylist()
        assert len(ids) <= 7 or len(set(ids)) == 1
    assert summary["branches"]["audio"]["parts_written"] == [p.name for p in parts]


def _start_cli(args, log):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "avs.cli", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for(predicate, seconds=120.0):
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_second_run_into_a_held_folder_is_refused(ray_local, messy_folder, tmp_path, capsys):
    """Two real runs into one OUT: the second is refused (exit 2) before writing, the first ends intact."""
    out = tmp_path / "o"
    args = ["extract", str(messy_folder), "--out", str(out), *_cli_config(tmp_path), "--max-failure-fraction", "1"]
    with open(tmp_path / "first.log", "w") as log:
        first = _start_cli(args, log)
        try:
            assert _wait_for(lambda: (out / "_lease.json").exists()), "the first run never took the lease"
            lease = json.loads((out / "_lease.json").read_text())
            assert lease["pid"] == first.pid and lease["host"] and lease["heartbeat"]
            assert avs_main(args) == 2
            err = capsys.readouterr().err
            assert "refused" in err and lease["run_id"] in err
            assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
        finally:
            first.kill()
    run = json.loads((out / "run.json").read_text())
    assert run["run_id"] == lease["run_id"]
    for name in ("logmel", "mfcc"):
        t = pq.read_table(out / name, columns=["clip_id", "segment"]).to_pydict()
        keys = list(zip(t["clip_id"], t["segment"], strict=True))
        assert len(keys) == len(set(keys)) == run["counts"]["rows_written"]
    assert pq.read_table(out / "errors.parquet").num_rows == len(BAD)
    assert not (out / "_lease.json").exists()  # released at the end


def test_run_killed_mid_way_resumes_exactly(ray_local, messy_folder, tmp_path, capsys):
    """kill -9 of a run after its first parts: the re-run takes over the dead run's lease, redoes what was
    not committed, and every good clip ends in both feature sets exactly once."""
    import os
    import signal

    out = tmp_path / "o"
    args = ["extract", str(messy_folder), "--out", str(out), *_cli_config(tmp_path, ", rows_per_shard: 4")]
    with open(tmp_path / "killed.log", "w") as log:
        victim = _start_cli([*args, "--max-failure-fraction", "1"], log)
        try:
            assert _wait_for(lambda: any((out / "mfcc").glob("part-*.parquet")) if (out / "mfcc").exists() else False)
        finally:
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
    committed = len(list((out / "mfcc").glob("part-*.parquet")))
    assert committed >= 1
    summary = run_extract(
        from_dict(ExtractConfig, {**_cli_tree(tmp_path), "input": str(messy_folder), "out": str(out)})
    )
    assert "taking over the lease" in capsys.readouterr().out
    good = set(load_manifest(messy_folder, "folder").column("clip_id").to_pylist()) - {n.rsplit(".", 1)[0] for n in BAD}
    assert summary["counts"]["skipped"] >= 1
    for name in ("logmel", "mfcc"):
        t = pq.read_table(out / name, columns=["clip_id", "segment"]).to_pydict()
        keys = list(zip(t["clip_id"], t["segment"], strict=True))
        assert len(keys) == len(set(keys)) and set(t["clip_id"]) == good
    assert list(out.rglob("*.tmp")) == []


def _cli_tree(tmp_path) -> dict:
    import yaml

    return {**yaml.safe_load((tmp_path / "cfg.yaml").read_text()), "dataset": "folder"}


@pytest.mark.ray
def test_no_pool_gets_more_actors_than_blocks(ray_local, tmp_path):
    from avs.shards.pipeline import plan_resources

    cpus = int(ray_local.cluster_resources()["CPU"])
    cfg = _config(tmp_path, tmp_path / "out", pipeline={"device": "cpu"})
    assert plan_resources(cfg, "audio")["feature_workers"] == cpus  # one AudioStage per CPU
    one = plan_resources(cfg, "audio", n_blocks=1)  # a one-file run starts one actor, not one per CPU
    assert one["feature_workers"] == one["decoders"] == 1 and one["writers"] == 1
    video = plan_resources(cfg, "video", n_blocks=1)
    assert video["feature_workers"] == video["decoders"] == 1 and video["feature_threads"] == cpus


def test_unregistered_decoder_is_refused_before_any_work(messy_folder, tmp_path):
    """A misspelt backend (or a plugin missing from pipeline.plugins) would fail every file in its decoder process
    and look like a folder of bad files: refused up front, naming what is registered."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"audio decoder 'nope' is not registered \(known: auto, .*soundfile"):
        run_extract(_config(messy_folder, out, audio={"backend": "nope"}))
    with pytest.raises(ValueError, match="decoder plugin 'no_such_module' cannot be imported"):
        run_extract(_config(messy_folder, out, pipeline={"plugins": ["no_such_module"]}))
    assert not out.exists()  # nothing written
