"""The learnable DESED-style demo set (``avs demo-data OUT --dataset sed``) and its generated sound events."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avs.cli import main as avs_main
from avs.data import read_desed
from avs.data.demo import SED_SUBSETS, write_sed_demo
from avs.features.logmel import LogMel, LogMelConfig
from avs.presets import PRESETS
from avs.testing import sound_events as se

SR = se.SAMPLE_RATE_HZ
SPLITS = {folder: kind for folder, kind, _, _ in SED_SUBSETS.values()}  # subset folder -> strong / weak / None
SIZES = {"n_synthetic": 6, "n_weak": 5, "n_unlabeled": 4, "n_validation": 5}


@pytest.fixture(scope="module")
def sed_set(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sed")
    return root, write_sed_demo(root, **SIZES, seed=3)


def _read_tsv(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines]


# -------------------------------------------------------------------------------------------------- layout
def test_layout_reads_back_with_read_desed(sed_set):
    root, info = sed_set
    table = read_desed(root)
    rows = {r["clip_id"]: r for r in table.to_pylist()}
    assert table.num_rows == info["clips"] == sum(SIZES.values())
    assert info["subsets"] == {
        "train/synthetic20/soundscapes": 6,
        "train/weak": 5,
        "train/unlabel_in_domain": 4,
        "validation": 5,
    }
    assert {r["split"] for r in rows.values()} == set(SPLITS)
    kinds = {"strong": "strong", "weak": "weak", None: "unlabeled"}
    for r in rows.values():
        assert r["label_kind"] == kinds[SPLITS[r["split"]]], r["clip_id"]
        assert r["dataset"] == "desed" and r["duration_s"] == pytest.approx(10.0)
        assert set(r["labels"]) <= set(se.SOUND_EVENT_CLASSES)
        info_wav = sf.info(r["path"])
        assert (info_wav.samplerate, info_wav.channels, info_wav.frames, info_wav.subtype) == (
            16_000,
            1,
            160_000,
            "PCM_16",
        )
    by_split = {s: [r for r in rows.values() if r["split"] == s] for s in SPLITS}
    # strong subsets: events with times, labels = their classes; clip 0 has none but is still "strong"
    for split in ("train/synthetic20/soundscapes", "validation"):
        for r in by_split[split]:
            assert r["labels"] == sorted({e["label"] for e in r["events"]})
            assert all(0.0 <= e["onset_s"] < e["offset_s"] <= 10.0 for e in r["events"])
            assert len(r["events"]) <= 3
        assert sum(len(r["events"]) for r in by_split[split]) == info["events"][split] > 0
    assert rows["train/synthetic20/soundscapes/0"]["events"] == []
    assert rows["train/synthetic20/soundscapes/0"]["label_kind"] == "strong"
    assert any(not r["events"] for r in by_split["validation"])
    # weak: 1-3 clip labels, no times; unlabeled: nothing
    assert all(1 <= len(r["labels"]) <= 3 and not r["events"] for r in by_split["train/weak"])
    assert all(not r["labels"] and not r["events"] for r in by_split["train/unlabel_in_domain"])
    # recorded clips are named like DESED's YouTube clips
    assert all(Path(r["path"]).name.startswith("Y") for r in by_split["validation"] + by_split["train/weak"])


def test_tsv_files_as_written(sed_set):
    root, info = sed_set
    meta = root / "metadata"
    strong = _read_tsv(meta / "train" / "synthetic20" / "soundscapes.tsv")
    assert strong[0] == ["filename", "onset", "offset", "event_label"]
    assert ["0.wav", "", "", ""] in strong[1:]  # a clip with no event: an empty label row
    assert sum(1 for row in strong[1:] if row[3]) == info["events"]["train/synthetic20/soundscapes"]
    weak = _read_tsv(meta / "train" / "weak.tsv")
    assert weak[0] == ["filename", "event_labels"] and len(weak) == 1 + SIZES["n_weak"]
    validation = _read_tsv(meta / "validation" / "validation.tsv")
    durations = _read_tsv(meta / "validation" / "durations.tsv")
    files = sorted(p.name for p in (root / "audio" / "validation").iterdir())
    assert durations[0] == ["filename", "duration"]
    assert sorted(row[0] for row in durations[1:]) == files and {row[1] for row in durations[1:]} == {"10.000"}
    assert sorted({row[0] for row in validation[1:]}) == files
    assert not (meta / "train" / "unlabel_in_domain.tsv").exists()


def test_labelled_events_are_audible_where_labelled(sed_set):
    """Inside each strong event the clip is louder than in its event-free stretches (>= 1.5 s from any event)."""
    root, _ = sed_set
    table = read_desed(root)
    checked = 0
    for r in table.to_pylist():
        if r["label_kind"] != "strong" or not r["events"]:
            continue
        audio, _ = sf.read(r["path"], dtype="float64")
        frame_db = 10 * np.log10(np.mean(audio.reshape(-1, 160) ** 2, axis=1) + 1e-12)  # 10-ms frames
        t_s = (np.arange(frame_db.size) + 0.5) * 0.01
        quiet = np.ones(frame_db.size, bool)
        for e in r["events"]:
            quiet &= (t_s < e["onset_s"] - 1.5) | (t_s > e["offset_s"] + 1.5)
        if quiet.sum() < 50:
            continue
        floor_db = np.median(frame_db[quiet])
        for e in r["events"]:
            inside = frame_db[(t_s >= e["onset_s"]) & (t_s <= e["offset_s"])]
            assert np.max(inside) > floor_db + 6.0, (r["clip_id"], e)
            checked += 1
    assert checked >= 3


# -------------------------------------------------------------------------------------- acoustic conditions
def _background_tilt_db(audio: np.ndarray) -> float:
    """Power at 7.2-8 kHz over 1-3 kHz, dB, of the quietest fifth of the clip's 64-ms frames (its background)."""
    frames = audio[: audio.size // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 513)
    quiet = power[np.argsort(power.sum(1))[: max(1, len(power) // 5)]].mean(0)
    f_hz = np.fft.rfftfreq(1024, 1.0 / SR)
    high, mid = quiet[(f_hz >= 7200) & (f_hz < 8000)].mean(), quiet[(f_hz >= 1000) & (f_hz < 3000)].mean()
    return float(10 * np.log10(high / mid))


def test_synthetic_and_recorded_backgrounds_differ_in_spectrum(sed_set):
    """Synthetic clips: pink background (about -6 dB from 1-3 kHz to 7.2-8 kHz). Recorded clips: brown noise
    through a 4.5-7 kHz low-pass channel, far steeper in every clip."""
    root, _ = sed_set
    tilt = {
        folder: [_background_tilt_db(sf.read(p, dtype="float64")[0]) for p in (root / "audio" / folder).glob("*.wav")]
        for folder in SPLITS
    }
    synthetic = tilt.pop("train/synthetic20/soundscapes")
    assert all(-8.0 < t < -4.0 for t in synthetic)
    for folder, values in tilt.items():
        assert max(values) < min(synthetic) - 5.0, folder


def _tail_ratio_db(condition: se.AcousticCondition, seed: int) -> float:
    """Energy 30-130 ms after a loud Dishes event ends, over the background's (2.5-4.5 s after), dB."""
    rng = np.random.default_rng(seed)
    sound = se.event_sound("Dishes", rng, SR, seconds=0.4)
    loud = dataclasses.replace(condition, snr_db=(25.0, 25.0))
    audio, events = se.render_soundscape([(SR // 2, "Dishes", sound)], loud, rng, seconds=5.0)
    offset = int(events[0][1] * SR)

    def energy(a_s: float, b_s: float) -> float:
        return float(np.mean(audio[offset + int(a_s * SR) : offset + int(b_s * SR)].astype(np.float64) ** 2))

    return 10 * np.log10(energy(0.03, 0.13) / energy(2.5, 4.5))


def test_recorded_condition_reverberates_and_synthetic_is_dry():
    synthetic = [_tail_ratio_db(se.SYNTHETIC, s) for s in range(4)]
    recorded = [_tail_ratio_db(se.RECORDED, s) for s in range(4)]
    assert max(abs(x) for x in synthetic) < 2.0  # after the event: only the background
    assert min(recorded) > 6.0  # a reverberation tail well above the background


def test_impulse_response_decays_at_its_rt60():
    rt60_s = 0.6
    ir = se.impulse_response(np.random.default_rng(0), rt60_s, SR, drr_db=0.0)
    assert ir.size == int(rt60_s * SR) and np.sum(ir**2) == pytest.approx(1.0)
    assert ir[0] ** 2 == pytest.approx(0.5, rel=0.05)  # DRR 0 dB: half the energy in the direct path
    edc_db = 10 * np.log10(np.cumsum(ir[::-1] ** 2)[::-1] + 1e-30)  # Schroeder backward integration
    a, b = int(0.05 * SR), int(0.35 * SR)  # slope between 50 ms and 350 ms
    slope_db_per_s = (edc_db[b] - edc_db[a]) / ((b - a) / SR)
    assert -60.0 / slope_db_per_s == pytest.approx(rt60_s, rel=0.2)


# ------------------------------------------------------------------------------------------ learnability
def _mean_logmel(sounds: list[np.ndarray]) -> np.ndarray:
    """(n, 256): per mel band of the dcase2020-sed log-mel, the mean over each sound's frames (minus its mean
    over bands: level-free) and the standard deviation (how much the band varies in time)."""
    params = dict(PRESETS["dcase2020-sed"]["features"][0]["params"], n_frames=None)
    extractor = LogMel(LogMelConfig(**params), SR)
    batch = np.zeros((len(sounds), 1, max(s.size for s in sounds)), np.float32)
    for i, s in enumerate(sounds):
        batch[i, 0, : s.size] = s
    with torch.no_grad():
        mel = extractor(torch.from_numpy(batch)).numpy()  # (n, 128, frames)
    feats = []
    for i, s in enumerate(sounds):
        frames = mel[i, :, : 1 + s.size // 255]  # (128, the sound's frames)
        mean = frames.mean(-1)
        feats.append(np.concatenate([mean - mean.mean(), frames.std(-1)]))
    return np.stack(feats)


def _nearest_centroid_accuracy(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray):
    mu, sd = train.mean(0), train.std(0) + 1e-6  # standardised by the training events
    train, test = (train - mu) / sd, (test - mu) / sd
    classes = np.unique(y_train)
    centroids = np.stack([train[y_train == c].mean(0) for c in classes])  # (classes, 128)
    predicted = classes[np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    return float(np.mean(predicted == y_test))


@pytest.mark.parametrize("condition", [None, se.SYNTHETIC, se.RECORDED], ids=["dry", "synthetic", "recorded"])
def test_classes_separable_by_nearest_centroid(condition):
    """A nearest-centroid classifier on the mean and spread of log-mel bands of isolated events (new events,
    new rooms) gets > 90 %: the classes differ in their spectra, so a CRNN has something to learn."""
    sounds, labels = [], []
    for i in range(16):
        for c, label in enumerate(se.SOUND_EVENT_CLASSES):
            rng = np.random.default_rng([11, i, c])
            sound = se.event_sound(label, rng, SR)
            if condition is not None:  # the event alone in a clip of that condition; its labelled stretch
                clip, _ = se.render_soundscape([(SR // 4, label, sound)], condition, rng, sound.size / SR + 0.5)
                sound = clip[SR // 4 : SR // 4 + sound.size]
            sounds.append(sound)
            labels.append(label)
    x, y = _mean_logmel(sounds), np.asarray(labels)
    half = x.shape[0] // 2
    assert _nearest_centroid_accuracy(x[:half], y[:half], x[half:], y[half:]) > 0.9


def test_event_sounds():
    rng = np.random.default_rng(0)
    for label in se.SOUND_EVENT_CLASSES:
        lo, hi = se.DURATION_RANGE_S[label]
        x = se.event_sound(label, rng, SR)
        assert x.ndim == 1 and x.size <= hi * SR + 1 and np.all(np.isfinite(x))
        active = np.abs(x) > 1e-2 * np.max(np.abs(x))
        assert np.sqrt(np.mean(x[active] ** 2)) == pytest.approx(1.0)
        assert se.event_sound(label, rng, SR, seconds=0.05).size <= 0.05 * SR + 1
    with pytest.raises(ValueError, match="unknown sound event class 'Cat'"):
        se.event_sound("Cat", rng)


# ----------------------------------------------------------------------------------------- determinism, CLI
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_seeded_determinism(tmp_path):
    sizes = {"n_synthetic": 2, "n_weak": 1, "n_unlabeled": 1, "n_validation": 2}
    write_sed_demo(tmp_path / "a", **sizes, seed=7)
    write_sed_demo(tmp_path / "b", **sizes, seed=7)
    write_sed_demo(tmp_path / "c", **sizes, seed=8)
    write_sed_demo(tmp_path / "d", **{**sizes, "n_synthetic": 3}, seed=7)
    a, b, c, d = (_files(tmp_path / x) for x in "abcd")
    assert a == b and len(a) == 6 + 4  # 6 WAVs, 4 tsvs
    wavs = [k for k in a if k.endswith(".wav")]
    assert all(a[k] != c.get(k) for k in wavs if "synthetic20" in k)  # another seed: other clips
    assert all(a[k] == d[k] for k in wavs)  # a larger set starts with the clips of a smaller one


def test_write_sed_demo_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_weak must be >= 0"):
        write_sed_demo(tmp_path, n_weak=-1)
    with pytest.raises(ValueError, match="every subset size is 0"):
        write_sed_demo(tmp_path, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="classes must be distinct names"):
        write_sed_demo(tmp_path, 1, 0, 0, 0, classes=("Dog", "Cat"))


def test_write_sed_demo_with_fewer_classes(tmp_path):
    write_sed_demo(tmp_path, 4, 3, 0, 0, seed=1, classes=("Dog", "Speech"))
    labels = {lab for r in read_desed(tmp_path).to_pylist() for lab in r["labels"]}
    assert labels <= {"Dog", "Speech"} and labels


def test_cli_demo_data_sed(tmp_path, capsys):
    rc = avs_main(
        [
            "demo-data",
            str(tmp_path),
            "--dataset",
            "sed",
            "--sed-synthetic",
            "2",
            "--sed-weak",
            "1",
            "--sed-unlabeled",
            "0",
            "--sed-validation",
            "1",
            "--seed",
            "2",
        ]
    )
    assert rc == 0 and '"sed"' in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sed"]  # no TAU / DESED sample
    table = read_desed(tmp_path / "sed")
    assert sorted(table.column("split").to_pylist()) == [
        "train/synthetic20/soundscapes",
        "train/synthetic20/soundscapes",
        "train/weak",
        "validation",
    ]
    with pytest.raises(SystemExit):
        avs_main(["demo-data", str(tmp_path), "--dataset", "tau,bogus"])
    assert "unknown demo dataset(s) ['bogus']" in capsys.readouterr().err
