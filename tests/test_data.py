"""Dataset readers (avs.data), demo data, and the test-media writers (avs.testing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from avs.classes import DESED_CLASSES, SCENE_CLASSES
from avs.data import (
    DATASETS,
    MANIFEST_SCHEMA,
    detect_dataset,
    load_manifest,
    probe_duration_s,
    read_desed,
    read_desed_subset,
    read_folder,
    read_manifest_file,
    read_tau_av,
)
from avs.data.demo import write_demo_data, write_desed_demo, write_tau_demo
from avs.data.manifest import manifest_from_records
from avs.data.probe import MEDIA_EXTENSIONS
from avs.testing import media, signals

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """The default demo data (10 classes x 2 clips of 10 s + DESED), written once for this module."""
    return write_demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def small_tau(tmp_path) -> Path:
    """A tiny TAU-AV folder: 2 classes x 3 clips of 1 s (2 locations per class)."""
    root = tmp_path / "tau"
    write_tau_demo(root, n_clips_per_class=3, seconds=1.0, classes=("park", "bus"))
    return root


@pytest.fixture
def media_dir(tmp_path) -> Path:
    """A folder of good media: WAV, FLAC, MP4 (video + audio), M4A (audio only) in class sub-folders."""
    root = tmp_path / "media"
    tone = signals.tone(440.0, 1.0, 16_000)
    media.write_wav(root / "dog" / "a.wav", tone, 16_000)
    media.write_wav(root / "dog" / "b.flac", np.stack([tone, tone]), 16_000)
    media.write_wav(root / "cat" / "c.wav", signals.white_noise(0.5, 16_000, seed=1), 16_000)
    media.write_video(root / "cat" / "d.mp4", 1.0, audio=np.stack([tone, tone]), audio_rate_hz=16_000)
    media.write_video(root / "top.m4a", 1.0, audio=tone, audio_rate_hz=16_000, video=False)
    (root / "notes.txt").write_text("not media")
    return root


def _rows(table: pa.Table) -> dict[str, dict]:
    return {r["clip_id"]: r for r in table.to_pylist()}


def _write_tsv(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------------- signals


def test_signals_are_deterministic_float32_with_the_right_shapes():
    sr = 8_000
    for make, shape in (
        (lambda s: signals.white_noise(0.5, sr, seed=s), (4000,)),
        (lambda s: signals.pink_noise(0.5, sr, seed=s), (4000,)),
        (lambda s: signals.speech_like_bursts(1.0, sr, seed=s), (8000,)),
        (lambda s: signals.scene_audio(3, 0.5, sr, channels=2, seed=s), (2, 4000)),
    ):
        a, b, c = make(1), make(1), make(2)
        assert a.dtype == np.float32 and a.shape == shape and np.max(np.abs(a)) <= 1.0
        assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert signals.scene_audio(0, 0.5, sr, channels=2).shape == (2, 4000)
    assert signals.silence(0.25, sr, channels=2).shape == (2, 2000)
    assert not np.any(signals.silence(0.25, sr))
    assert signals.tone(100.0, 1.0, sr).shape == (8000,)
    for method in ("linear", "log"):
        assert signals.chirp(100.0, 3000.0, 1.0, sr, method=method).shape == (8000,)


def test_chirp_sweeps_and_pink_noise_tilts():
    sr = 16_000
    x = signals.chirp(200.0, 4000.0, 2.0, sr, method="log")

    def peak_hz(seg: np.ndarray) -> float:
        return float(np.argmax(np.abs(np.fft.rfft(seg))) * sr / seg.size)

    assert peak_hz(x[:1600]) < 400 and peak_hz(x[-1600:]) > 3000
    pink = np.abs(np.fft.rfft(signals.pink_noise(4.0, sr, seed=0))) ** 2
    f = np.fft.rfftfreq(4 * sr, 1 / sr)
    low, high = pink[(f > 100) & (f < 200)].mean(), pink[(f > 4000) & (f < 8000)].mean()
    assert low > 10 * high  # 1/f: ~30x less power per bin at 40x the frequency


def test_scene_audio_depends_on_the_class():
    sr = 16_000

    def centroid_hz(a: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(a.mean(axis=0)))
        return float((spec * np.fft.rfftfreq(a.shape[1], 1 / sr)).sum() / spec.sum())

    white = [centroid_hz(signals.scene_audio(0, 2.0, sr, seed=s)) for s in range(2)]  # white noise class
    brown = [centroid_hz(signals.scene_audio(2, 2.0, sr, seed=s)) for s in range(2)]  # brown noise class
    assert min(white) > 3 * max(brown)


# --------------------------------------------------------------------------------------------------- media


def test_write_wav_and_flac_round_trip(tmp_path):
    stereo = signals.scene_audio(1, 0.5, 48_000, channels=2)
    for name in ("s.wav", "s.flac"):
        path = media.write_wav(tmp_path / name, stereo, 48_000)
        data, sr = sf.read(path, dtype="float32", always_2d=True)  # (samples, channels)
        assert sr == 48_000 and data.shape == (24_000, 2)
        assert np.max(np.abs(data.T - stereo)) < 1e-3  # 16-bit quantisation
    info = sf.info(media.write_wav(tmp_path / "m.wav", signals.tone(440, 0.5, 16_000), 16_000, subtype="FLOAT"))
    assert (info.channels, info.subtype, info.frames) == (1, "FLOAT", 8000)
    with pytest.raises(ValueError, match="channels, samples"):
        media.write_wav(tmp_path / "x.wav", np.zeros((100, 2)), 16_000)


def _decode(path: Path) -> dict:
    """Stream kinds, video frame times (s) and audio (channels, samples) of a media file, via PyAV."""
    out = {"types": [], "video_times_s": [], "audio": []}
    with av.open(str(path)) as container:
        out["types"] = sorted(s.type for s in container.streams)
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                out["video_times_s"].append(frame.time)
                out["size"] = (frame.width, frame.height)
            else:
                out["audio"].append(frame.to_ndarray())  # (channels, samples) planar float
                out["rate"] = frame.sample_rate
    out["audio"] = np.concatenate(out["audio"], axis=1) if out["audio"] else None
    return out


def test_write_video_with_and_without_tracks(tmp_path):
    stereo = signals.scene_audio(4, 2.0, 48_000, channels=2)
    both = _decode(media.write_video(tmp_path / "av.mp4", 2.0, 5, 96, 64, audio=stereo, color_seed=4))
    assert both["types"] == ["audio", "video"] and both["size"] == (96, 64)
    assert len(both["video_times_s"]) == 10 and np.allclose(np.diff(both["video_times_s"]), 0.2)
    assert both["rate"] == 48_000 and both["audio"].shape[0] == 2
    assert abs(both["audio"].shape[1] - 96_000) < 2048  # AAC pads to whole 1024-sample frames

    video_only = _decode(media.write_video(tmp_path / "v.mp4", 1.0, audio=None))
    assert video_only["types"] == ["video"] and video_only["audio"] is None
    audio_only = _decode(media.write_video(tmp_path / "a.m4a", 1.0, audio=stereo[:, :48_000], video=False))
    assert audio_only["types"] == ["audio"] and not audio_only["video_times_s"]

    mpeg4 = _decode(media.write_video(tmp_path / "m.mp4", 1.0, codec="mpeg4"))
    assert mpeg4["types"] == ["video"] and len(mpeg4["video_times_s"]) == 5
    assert media.pick_video_codec("no-such-codec") == "mpeg4"


def test_write_video_variable_frame_rate(tmp_path):
    vfr = _decode(media.write_video(tmp_path / "vfr.mp4", 4.0, fps=5, vfr=True, seed=3))
    gaps = np.diff(vfr["video_times_s"])
    assert len(gaps) > 3 and gaps.max() > 1.5 * gaps.min()  # irregular frame intervals


def test_video_pictures_depend_on_the_colour_seed(tmp_path):
    a = media.pattern_frame(0, 32, 16, color_seed=1)
    assert a.shape == (16, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, media.pattern_frame(0, 32, 16, color_seed=1))
    assert np.abs(a.astype(int) - media.pattern_frame(0, 32, 16, color_seed=2)).mean() > 10
    assert not np.array_equal(a, media.pattern_frame(1, 32, 16, color_seed=1))  # it moves


def _opens_with_soundfile(path: Path) -> bool:
    try:
        sf.read(path)
        return True
    except Exception:  # noqa: BLE001
        return False


def _opens_with_pyav(path: Path) -> bool:
    try:
        _decode(path)
        return True
    except Exception:  # noqa: BLE001
        return False


def test_bad_inputs_fail_to_decode(tmp_path):
    good_wav = media.write_wav(tmp_path / "good.wav", signals.tone(440, 1.0, 16_000), 16_000)
    good_flac = media.write_wav(tmp_path / "good.flac", signals.white_noise(1.0, 16_000), 16_000)
    good_mp4 = media.write_video(tmp_path / "good.mp4", 1.0, audio=signals.tone(440, 1.0, 48_000))
    assert _opens_with_soundfile(good_wav) and _opens_with_pyav(good_mp4)

    for bad in (
        media.write_corrupt(tmp_path / "corrupt.wav"),
        media.write_corrupt(tmp_path / "corrupt.mp4", seed=1),
        media.write_empty(tmp_path / "empty.wav"),
        media.write_empty(tmp_path / "empty.mp4"),
        media.write_truncated(good_mp4, tmp_path / "truncated.mp4", 0.5),
        media.write_truncated(good_flac, tmp_path / "truncated.flac", 0.5),
    ):
        assert not _opens_with_soundfile(bad), bad.name
        if bad.suffix != ".flac":
            assert not _opens_with_pyav(bad), bad.name
    assert (tmp_path / "truncated.mp4").stat().st_size == good_mp4.stat().st_size // 2
    short = media.write_truncated(good_wav, tmp_path / "truncated.wav", 0.5)  # opens, but shorter
    assert 0 < sf.info(short).frames < sf.info(good_wav).frames


def test_probe_duration_from_headers(tmp_path, media_dir):
    assert probe_duration_s(media_dir / "dog" / "a.wav") == pytest.approx(1.0)
    assert probe_duration_s(media_dir / "cat" / "c.wav") == pytest.approx(0.5)
    assert probe_duration_s(media_dir / "cat" / "d.mp4") == pytest.approx(1.0, abs=0.05)
    assert probe_duration_s(media_dir / "top.m4a") == pytest.approx(1.0, abs=0.05)
    assert probe_duration_s(media.write_corrupt(tmp_path / "c.wav")) is None
    assert probe_duration_s(media.write_empty(tmp_path / "e.mp4")) is None
    assert probe_duration_s(media.write_truncated(media_dir / "cat" / "d.mp4", tmp_path / "t.mp4", 0.3)) is None
    assert probe_duration_s(tmp_path / "missing.wav") is None


# ----------------------------------------------------------------------------------------------------- TAU


def test_read_tau_av(small_tau):
    table = read_tau_av(small_tau)
    assert table.schema.equals(MANIFEST_SCHEMA) and table.num_rows == 6
    rows = _rows(table)
    row = rows["park-london-1040-40000"]
    assert row["path"] == str(small_tau / "audio" / "park-london-1040-40000.wav")
    assert row["video_path"] == str(small_tau / "video" / "park-london-1040-40000.mp4")
    assert row["labels"] == ["park"] and row["location"] == "london-1040"
    assert row["dataset"] == "tau-av-2021" and row["duration_s"] == pytest.approx(1.0)
    assert {r["label_kind"] for r in rows.values()} == {"class"}
    assert {r["split"] for r in rows.values()} == {"train", "evaluate"}  # test list = evaluate clips
    assert all(r["fold"] == 1 for r in rows.values())
    train_locs = {r["location"] for r in rows.values() if r["split"] == "train"}
    eval_locs = {r["location"] for r in rows.values() if r["split"] == "evaluate"}
    assert train_locs and eval_locs and not train_locs & eval_locs


def test_read_tau_av_split_lists(small_tau):
    setup = small_tau / "evaluation_setup"
    shutil.rmtree(setup)
    table = read_tau_av(small_tau)
    assert set(table.column("split").to_pylist()) == {None} and set(table.column("fold").to_pylist()) == {None}
    names = sorted(p.name for p in (small_tau / "audio").iterdir())
    _write_tsv(setup / "fold1_train.csv", ["filename_audio\tfilename_video\tscene_label", f"audio/{names[0]}\t\tbus"])
    _write_tsv(setup / "fold1_test.csv", ["filename_audio\tfilename_video", f"audio/{names[1]}\t"])
    table = read_tau_av(small_tau)
    splits = dict(zip(table.column("clip_id").to_pylist(), table.column("split").to_pylist(), strict=True))
    assert splits[Path(names[0]).stem] == "train" and splits[Path(names[1]).stem] == "test"
    assert sum(s is None for s in splits.values()) == 4
    header = "filename_audio\tfilename_video\tscene_label"
    _write_tsv(setup / "fold1_evaluate.csv", [header, f"audio/{names[0]}\t\tbus"])
    with pytest.raises(ValueError, match=r"fold1_evaluate\.csv:2: .* also listed in fold1_train"):
        read_tau_av(small_tau)


def test_read_tau_av_clear_errors(small_tau):
    meta = small_tau / "meta.csv"
    lines = meta.read_text().splitlines()

    meta.write_text("\n".join([lines[0], *lines[1:3], lines[3].replace(".wav", "-gone.wav"), *lines[4:]]) + "\n")
    with pytest.raises(ValueError, match=r"meta\.csv:4: audio file 'audio/.*-gone\.wav' does not exist"):
        read_tau_av(small_tau)

    meta.write_text("\n".join([lines[0], lines[1].replace(".mp4", "-gone.mp4")]) + "\n")
    with pytest.raises(ValueError, match=r"meta\.csv:2: video file .* does not exist"):
        read_tau_av(small_tau)

    meta.write_text("\n".join([lines[0].replace("\tidentifier", ""), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"meta\.csv:1: missing column\(s\) \['identifier'\]"):
        read_tau_av(small_tau)

    meta.write_text("\n".join(line.replace("\t", ",") for line in lines) + "\n")  # comma-separated
    with pytest.raises(ValueError, match=r"meta\.csv:1: missing column"):
        read_tau_av(small_tau)

    meta.unlink()
    with pytest.raises(ValueError, match=r"meta\.csv: not found"):
        read_tau_av(small_tau)


# --------------------------------------------------------------------------------------------------- DESED


@pytest.fixture
def small_desed(tmp_path) -> Path:
    root = tmp_path / "desed"
    write_desed_demo(root, n_clips_per_subset=3, seed=1)
    return root


def test_read_desed_strong_weak_unlabeled(small_desed):
    table = read_desed(small_desed)
    assert table.schema.equals(MANIFEST_SCHEMA) and table.num_rows == 9
    rows = _rows(table)
    assert {r["split"] for r in rows.values()} == {"train/weak", "train/synthetic", "train/unlabel_in_domain"}
    assert all(r["dataset"] == "desed" and r["duration_s"] == pytest.approx(10.0) for r in rows.values())
    assert all(cid.startswith(r["split"] + "/") for cid, r in rows.items())
    assert all(Path(r["path"]).is_absolute() and r["video_path"] is None for r in rows.values())

    strong = [r for r in rows.values() if r["split"] == "train/synthetic"]
    assert rows["train/synthetic/0"]["labels"] == [] and rows["train/synthetic/0"]["events"] == []
    assert {r["label_kind"] for r in strong} == {"strong"}  # a strong clip with no event is not unlabeled
    for r in strong:
        assert r["labels"] == sorted({e["label"] for e in r["events"]})
        assert all(0 <= e["onset_s"] < e["offset_s"] <= 10.0 for e in r["events"])
    assert sum(len(r["events"]) for r in strong) > 0

    weak = [r for r in rows.values() if r["split"] == "train/weak"]
    assert all(r["labels"] and not r["events"] and set(r["labels"]) <= set(DESED_CLASSES) for r in weak)
    unlabeled = [r for r in rows.values() if r["split"] == "train/unlabel_in_domain"]
    assert len(unlabeled) == 3 and all(not r["labels"] and not r["events"] for r in unlabeled)
    assert {r["label_kind"] for r in weak} == {"weak"} and {r["label_kind"] for r in unlabeled} == {"unlabeled"}
    with pytest.raises(ValueError, match="label_kind must be one of"):
        manifest_from_records([{"clip_id": "a", "path": "/a.wav", "label_kind": "strongish"}])


def test_desed_events_are_in_the_audio(small_desed):
    row = max(read_desed(small_desed).to_pylist(), key=lambda r: len(r["events"]))
    audio, sr = sf.read(row["path"], dtype="float32")
    assert sr == 16_000 and audio.shape == (160_000,)
    active = np.zeros(audio.size, bool)
    for e in row["events"]:
        active[int(e["onset_s"] * sr) : int(e["offset_s"] * sr)] = True
    assert np.sqrt(np.mean(audio[active] ** 2)) > 3 * np.sqrt(np.mean(audio[~active] ** 2))


def test_read_desed_subset_and_tsv_locations(small_desed, tmp_path):
    weak_dir, weak_tsv = small_desed / "audio" / "train" / "weak", small_desed / "metadata" / "train" / "weak.tsv"
    sub = read_desed_subset(weak_dir, weak_tsv, split="train/weak")
    assert sub.equals(read_desed(small_desed).filter(pa.compute.equal(read_desed(small_desed)["split"], "train/weak")))
    plain = read_desed_subset(weak_dir)  # no tsv: unlabeled, split = folder name
    assert set(plain.column("split").to_pylist()) == {"weak"}
    assert all(cid.startswith("weak/") for cid in plain.column("clip_id").to_pylist())
    assert not any(plain.column("labels").to_pylist()[i] for i in range(plain.num_rows))

    # metadata/<subset>/<last part>.tsv, as DESED's validation set
    shutil.copytree(weak_dir, small_desed / "audio" / "validation")
    _write_tsv(small_desed / "metadata" / "validation" / "validation.tsv", weak_tsv.read_text().splitlines())
    rows = _rows(read_desed(small_desed))
    validation = [r for r in rows.values() if r["split"] == "validation"]
    assert len(validation) == 3 and all(r["labels"] for r in validation)


def test_read_desed_clear_errors(small_desed):
    tsv = small_desed / "metadata" / "train" / "weak.tsv"
    lines = tsv.read_text().splitlines()

    _write_tsv(tsv, [*lines, "Ymissing_0.000_10.000.wav\tDog"])
    with pytest.raises(ValueError, match=r"weak\.tsv:5: audio file 'Ymissing_0\.000_10\.000\.wav' does not exist"):
        read_desed(small_desed)
    skipped = read_desed(small_desed, on_mismatch="skip")
    assert skipped.num_rows == 9

    _write_tsv(tsv, lines[:-1])  # one audio file no longer listed
    with pytest.raises(ValueError, match=r"weak\.tsv: 1 audio file\(s\) .* not listed"):
        read_desed(small_desed)
    assert read_desed(small_desed, on_mismatch="skip").num_rows == 8

    _write_tsv(tsv, ["filename\tlabel", *lines[1:]])
    with pytest.raises(ValueError, match=r"weak\.tsv:1: unknown DESED tsv header"):
        read_desed(small_desed)

    strong = small_desed / "metadata" / "train" / "synthetic.tsv"
    _write_tsv(strong, [*strong.read_text().splitlines(), "1.wav\tsoon\t2.0\tDog"])
    _write_tsv(tsv, lines)
    with pytest.raises(ValueError, match=r"synthetic\.tsv:\d+: onset 'soon' is not a number"):
        read_desed(small_desed)
    with pytest.raises(ValueError, match=r"audio.* not found"):
        read_desed(small_desed / "audio")


# ------------------------------------------------------------------------------------- folders & manifests


def test_read_folder(media_dir):
    table = read_folder(media_dir)
    rows = _rows(table)
    assert sorted(rows) == ["cat/c", "cat/d", "dog/a", "dog/b", "top"]
    assert rows["cat/d"]["video_path"] == rows["cat/d"]["path"] == str(media_dir / "cat" / "d.mp4")
    assert rows["top"]["video_path"] is None and rows["dog/b"]["duration_s"] == pytest.approx(1.0)
    assert all(r["labels"] == [] and r["dataset"] == "folder" for r in rows.values())
    labelled = _rows(read_folder(media_dir, label_from="parent"))
    assert labelled["cat/c"]["labels"] == ["cat"] and labelled["dog/b"]["labels"] == ["dog"]
    assert labelled["top"]["labels"] == []


def test_read_folder_errors(media_dir, tmp_path):
    media.write_wav(media_dir / "dog" / "a.flac", signals.tone(440, 0.2, 16_000), 16_000)
    with pytest.raises(ValueError, match="would share clip_id 'dog/a'"):
        read_folder(media_dir)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no media files"):
        read_folder(tmp_path / "nothing")
    with pytest.raises(ValueError, match="label_from"):
        read_folder(media_dir, label_from="grandparent")


def test_read_manifest_csv(media_dir, tmp_path):
    csv = _write_tsv(
        media_dir / "list.csv",
        [
            "path,labels,split,fold,clip_id",
            "dog/a.wav,dog;barking,train,2,",
            'cat/d.mp4,"cat,indoor",evaluate,,the-cat',
            f"{media_dir / 'top.m4a'},,,,",
        ],
    )
    rows = _rows(read_manifest_file(csv))
    assert sorted(rows) == ["dog/a", "the-cat", "top"]
    assert rows["dog/a"]["path"] == str(media_dir / "dog" / "a.wav") and rows["dog/a"]["fold"] == 2
    assert rows["dog/a"]["labels"] == ["dog", "barking"] and rows["the-cat"]["labels"] == ["cat", "indoor"]
    assert rows["the-cat"]["split"] == "evaluate" and rows["top"]["labels"] == []
    assert rows["dog/a"]["duration_s"] == pytest.approx(1.0) and rows["dog/a"]["dataset"] == "manifest"

    tsv = _write_tsv(tmp_path / "list.tsv", ["path\tlabels", f"{media_dir / 'dog' / 'b.flac'}\tdog"])
    assert _rows(read_manifest_file(tsv))["media/dog/b"]["labels"] == ["dog"]


def test_read_manifest_parquet(media_dir):
    table = pa.table(
        {
            "path": ["dog/a.wav", "cat/c.wav"],
            "labels": [["dog"], ["cat", "noise"]],
            "events": [[{"onset_s": 0.1, "offset_s": 0.5, "label": "bark"}], []],
            "location": ["home", None],
            "extra": [1, 2],
        }
    )
    pq.write_table(table, media_dir / "list.parquet")
    rows = _rows(read_manifest_file(media_dir / "list.parquet"))
    assert rows["dog/a"]["events"] == [{"onset_s": 0.1, "offset_s": 0.5, "label": "bark"}]
    assert rows["cat/c"]["labels"] == ["cat", "noise"] and rows["dog/a"]["location"] == "home"
    assert rows["cat/c"]["duration_s"] == pytest.approx(0.5)


def test_read_manifest_clear_errors(media_dir):
    bad = _write_tsv(media_dir / "bad.csv", ["file,labels", "dog/a.wav,dog"])
    with pytest.raises(ValueError, match=r"bad\.csv:1: missing column\(s\) \['path'\]"):
        read_manifest_file(bad)
    bad = _write_tsv(media_dir / "bad.csv", ["path,labels", "dog/a.wav,dog", "dog/gone.wav,dog"])
    with pytest.raises(ValueError, match=r"bad\.csv:3: file 'dog/gone\.wav' does not exist"):
        read_manifest_file(bad)
    bad = _write_tsv(media_dir / "bad.csv", ["path,clip_id", "dog/a.wav,x", "dog/b.flac,x"])
    with pytest.raises(ValueError, match=r"bad\.csv: .*duplicated: \['x'\]"):
        read_manifest_file(bad)
    pq.write_table(pa.table({"file": ["dog/a.wav"]}), media_dir / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet: missing column 'path'"):
        read_manifest_file(media_dir / "bad.parquet")


# ------------------------------------------------------------------------------------------ load_manifest


def test_load_manifest_dispatch(small_tau, small_desed, media_dir):
    assert DATASETS == ("auto", "tau", "desed", "ladi", "voc", "folder", "manifest")
    _write_tsv(media_dir / "list.csv", ["path", "dog/a.wav"])
    assert detect_dataset(small_tau) == "tau" and detect_dataset(small_desed) == "desed"
    assert detect_dataset(media_dir) == "folder" and detect_dataset(media_dir / "list.csv") == "manifest"
    assert set(load_manifest(small_tau).column("dataset").to_pylist()) == {"tau-av-2021"}
    assert set(load_manifest(small_desed).column("dataset").to_pylist()) == {"desed"}
    assert load_manifest(media_dir / "list.csv").num_rows == 1
    assert load_manifest(media_dir, label_from="parent").num_rows == 5
    assert load_manifest(small_tau, dataset="folder").num_rows == 12  # 6 WAV + 6 MP4 as plain files
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_manifest(media_dir, dataset="coco")
    with pytest.raises(FileNotFoundError, match="not a VOC folder"):
        load_manifest(media_dir, dataset="voc")
    with pytest.raises(ValueError, match="no such file or folder"):
        load_manifest(media_dir / "missing")


def test_clip_ids_are_stable(small_tau, small_desed, media_dir, monkeypatch):
    _write_tsv(media_dir / "list.csv", ["path", "dog/a.wav", "cat/d.mp4"])
    for source in (small_tau, small_desed, media_dir, media_dir / "list.csv"):
        first = load_manifest(source)
        assert first.equals(load_manifest(source))
        monkeypatch.chdir(source.parent)  # a relative path gives the same ids and absolute paths
        again = load_manifest(source.name)
        assert again.equals(first)
        ids = first.column("clip_id").to_pylist()
        assert all("\\" not in c and not c.lower().endswith(MEDIA_EXTENSIONS) for c in ids)


# ---------------------------------------------------------------------------------------------- demo data


def test_demo_data_round_trip(demo):
    assert demo["tau"]["clips"] == 20 and demo["tau"]["video_codec"] in ("h264", "mpeg4")
    table = read_tau_av(demo["tau"]["root"])
    rows = table.to_pylist()
    assert len(rows) == 20 and sorted({r["labels"][0] for r in rows}) == sorted(SCENE_CLASSES)
    assert {r["split"] for r in rows} == {"train", "evaluate"}
    for scene in SCENE_CLASSES:
        mine = [r for r in rows if r["labels"] == [scene]]
        assert len({r["location"] for r in mine}) >= 2 and {r["split"] for r in mine} == {"train", "evaluate"}
    train_locs = {r["location"] for r in rows if r["split"] == "train"}
    assert not train_locs & {r["location"] for r in rows if r["split"] == "evaluate"}
    for r in rows:
        info = sf.info(r["path"])
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (48_000, 2, 480_000, "PCM_16")
        assert r["duration_s"] == 10.0
    with av.open(rows[0]["video_path"]) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (96, 64)
        assert audio.codec_context.name == "aac" and audio.codec_context.channels == 2
        assert audio.codec_context.sample_rate == 48_000
        assert container.duration / 1e6 == pytest.approx(10.0, abs=0.1)

    desed = read_desed(demo["desed"]["root"])
    assert desed.num_rows == demo["desed"]["clips"] == 12


def test_demo_data_is_deterministic(tmp_path):
    a = write_tau_demo(tmp_path / "a", 1, seconds=0.5, classes=("park",), seed=5)
    b = write_tau_demo(tmp_path / "b", 1, seconds=0.5, classes=("park",), seed=5)
    assert a["clips"] == b["clips"] == 1
    (wav_a,), (wav_b,) = (list((tmp_path / x / "audio").glob("*.wav")) for x in ("a", "b"))
    assert wav_a.read_bytes() == wav_b.read_bytes()
    assert (tmp_path / "a" / "meta.csv").read_text() == (tmp_path / "b" / "meta.csv").read_text()
