"""MFCC extractor: equal to librosa.feature.mfcc with the same settings; the paper-001 preset's shape."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch
import torchaudio

from avs.features.base import extractor_config
from avs.features.mfcc import MFCC, OWENS_MFCC, OWENS_MFCC_SHAPE, MFCCConfig, fft_lowpass
from avs.presets import PRESETS
from avs.testing import signals

SR = 16_000


def _clips(seconds: float = 1.0, sr: int = SR) -> dict[str, np.ndarray]:
    return {
        "noise": signals.white_noise(seconds, sr, seed=1),
        "pink": 0.01 * signals.pink_noise(seconds, sr, seed=2),  # quiet: the top_db floor is per item
        "chirp": signals.chirp(100.0, 0.45 * sr, seconds, sr, method="log"),
        "tone": signals.tone(440.0, seconds, sr),
    }


def _librosa_mfcc(y: np.ndarray, sr: int, cfg: MFCCConfig) -> np.ndarray:
    return librosa.feature.mfcc(
        y=y,
        sr=sr,
        n_mfcc=cfg.n_mfcc,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=cfg.window,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max,
        center=cfg.center,
        pad_mode=cfg.pad_mode,
    )


@pytest.mark.parametrize(
    "cfg",
    [
        MFCCConfig(n_fft=1024, hop_length=256),
        MFCCConfig(n_mfcc=13, n_fft=512, win_length=400, hop_length=160, window="hamming", n_mels=40, f_max=7600.0),
        MFCCConfig(n_mfcc=20, n_fft=256, hop_length=128, window="hamming", n_mels=20, f_min=50.0, center=False),
        MFCCConfig(n_fft=1024, hop_length=256, pad_mode="reflect"),
        MFCCConfig(n_fft=512, win_length=400, hop_length=160, window="hamming", n_mels=40, pad_mode="reflect"),
    ],
    ids=["hann", "hamming-short-window", "no-center", "hann-reflect", "hamming-short-window-reflect"],
)
def test_matches_librosa(cfg: MFCCConfig) -> None:
    clips = _clips()
    ex = MFCC(cfg, sample_rate_hz=SR)
    ours = ex(torch.from_numpy(np.stack(list(clips.values())))[:, None]).numpy()  # (4, n_mfcc, frames)
    for i, (name, y) in enumerate(clips.items()):
        ref = _librosa_mfcc(y, SR, cfg)
        assert ours[i].shape == ref.shape == ex.mono_shape(y.size), name
        err = np.abs(ours[i] - ref).max() / (ref.max() - ref.min())
        assert err < 1e-4, (name, err)


def test_default_padding_is_librosa_default() -> None:
    # MFCCConfig() pads centred frames with zeros, as librosa >= 0.10 when no pad_mode is given
    y = _clips()["chirp"]
    ours = MFCC(MFCCConfig(), SR)(torch.from_numpy(y)[None, None])[0].numpy()
    ref = librosa.feature.mfcc(y=y, sr=SR)
    assert MFCCConfig().pad_mode == "constant"
    assert np.abs(ours - ref).max() / np.ptp(ref) < 1e-4
    with pytest.raises(ValueError, match="pad_mode"):
        MFCCConfig(pad_mode="wrap")


def test_flatten_is_coefficient_major_and_batch_equals_single() -> None:
    clips = list(_clips().values())
    cfg = MFCCConfig(n_fft=512, hop_length=256)
    full = MFCC(cfg, SR)(torch.from_numpy(np.stack(clips))[:, None])
    flat = MFCC(dataclasses.replace(cfg, flatten=True), SR)(torch.from_numpy(np.stack(clips))[:, None])
    torch.testing.assert_close(flat, full.reshape(len(clips), -1))
    single = MFCC(cfg, SR)(torch.from_numpy(clips[1])[None, None])
    torch.testing.assert_close(single[0], full[1], rtol=1e-5, atol=1e-4)


def test_owens_preset_shape_and_pipeline() -> None:
    # 3.75-s windows at 10 kHz: 37 500 samples -> 1 + 37500 // 128 = 293 frames x 20 coefficients
    assert OWENS_MFCC_SHAPE == (5860,)
    for sr in (10_000, 20_000, 44_100):
        assert MFCC(OWENS_MFCC, sr).mono_shape(int(3.75 * sr)) == OWENS_MFCC_SHAPE
    x = signals.pink_noise(3.75, 20_000, seed=4)
    out = MFCC(OWENS_MFCC, 20_000)(torch.from_numpy(x)[None, None])
    assert out.shape == (1, 5860) and torch.isfinite(out).all()
    # equals librosa on the signal low-passed at 5 kHz and resampled to 10 kHz
    y10 = torchaudio.functional.resample(fft_lowpass(torch.from_numpy(x)[None], 20_000, 5000.0), 20_000, 10_000)
    cfg10 = dataclasses.replace(OWENS_MFCC, lowpass_hz=None, target_sample_rate_hz=None, f_max=5000.0)
    ref = _librosa_mfcc(y10[0].numpy(), 10_000, cfg10).reshape(-1)  # (20 * 293,) coefficient-major
    assert np.abs(out[0].numpy() - ref).max() / np.ptp(ref) < 1e-3


def test_owens_preset_pads_by_reflection_as_paper_librosa() -> None:
    # paper 001 "we use MFCC from Librosa" (< 0.10): centred frames padded by reflection
    assert OWENS_MFCC.pad_mode == "reflect"
    assert extractor_config("mfcc", PRESETS["owens-mfcc"]["features"][0]["params"]) == OWENS_MFCC
    y = signals.pink_noise(3.75, 10_000, seed=5).astype(np.float32)  # already at 10 kHz: no resampling
    x = torch.from_numpy(y)[None, None]
    ours = MFCC(OWENS_MFCC, 10_000)(x)[0].numpy().reshape(20, 293)
    ref = librosa.feature.mfcc(
        y=y, sr=10_000, n_mfcc=20, n_fft=256, hop_length=128, window="hamming", n_mels=20, pad_mode="reflect"
    )
    assert np.abs(ours - ref).max() / np.ptp(ref) < 1e-4
    # zero padding (librosa >= 0.10) changes the frames that reach past either end: 1 + 1 of 293
    const = MFCC(dataclasses.replace(OWENS_MFCC, pad_mode="constant"), 10_000)(x)[0].numpy().reshape(20, 293)
    assert np.flatnonzero(np.abs(const - ours).max(axis=0) > 1e-3).tolist() == [0, 292]


def test_lowpass_removes_energy_above_cutoff() -> None:
    x = torch.from_numpy(signals.tone(1000.0, 1.0, SR) + signals.tone(6000.0, 1.0, SR))[None]
    y = fft_lowpass(x, SR, 3000.0)
    torch.testing.assert_close(y, torch.from_numpy(signals.tone(1000.0, 1.0, SR))[None], atol=1e-4, rtol=0)
    assert fft_lowpass(x, SR, SR / 2) is x  # at or above Nyquist: nothing to do


def test_silence_is_finite() -> None:
    out = MFCC(OWENS_MFCC, 10_000)(torch.zeros(2, 1, 37_500))
    assert out.shape == (2, 5860) and torch.isfinite(out).all()
