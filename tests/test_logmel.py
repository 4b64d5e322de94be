"""Log-mel + deltas against librosa (the numbers of paper 000 §2.1 and the SED presets)."""

import librosa
import numpy as np
import pytest
import torch

from avs.features.base import create_extractor
from avs.features.logmel import LogMelConfig
from avs.presets import PRESETS
from avs.testing import signals

SR = 48_000
T1B = LogMelConfig(n_fft=4096, hop_length=512, n_mels=256)


def _inputs(sr: int, seconds: float = 1.0):
    return {
        "noise": signals.white_noise(seconds, sr, seed=1),
        "pink": signals.pink_noise(seconds, sr, seed=2),
        "chirp": signals.chirp(100.0, sr / 2.5, seconds, sr),
        "speech": signals.speech_like_bursts(seconds, sr, seed=3),
    }


def _librosa_t1b(y: np.ndarray) -> np.ndarray:
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=4096, hop_length=512, n_mels=256))
    return np.stack([S, librosa.feature.delta(S), librosa.feature.delta(S, order=2)])


def _assert_close_db(ours: np.ndarray, ref: np.ndarray, tol: float = 0.01) -> None:
    # Compare on bins above -80 dB relative to the maximum (the quiet floor is clamped anyway).
    mask = ref[0] > ref[0].max() - 80.0
    for ch in range(ref.shape[0]):
        err = np.abs(ours[ch] - ref[ch])[mask].max()
        assert err < tol, f"channel {ch}: max |diff| {err:.4g} dB"


@pytest.mark.parametrize("kind", ["noise", "pink", "chirp", "speech"])
def test_t1b_logmel_and_deltas_match_librosa_mono(kind):
    y = _inputs(SR)[kind].astype(np.float32)
    ext = create_extractor("logmel", T1B, sample_rate_hz=SR)
    ours = ext(torch.from_numpy(y)[None, None]).numpy()[0]  # (3, 256, 94)
    assert ours.shape == (3, 256, 94)
    _assert_close_db(ours, _librosa_t1b(y))


def test_stereo_channels_match_librosa_each():
    left, right = signals.chirp(200.0, 12_000.0, 1.0, SR), signals.white_noise(1.0, SR, seed=5)
    stereo = np.stack([left, right]).astype(np.float32)
    ext = create_extractor("logmel", T1B, sample_rate_hz=SR)
    ours = ext(torch.from_numpy(stereo)[None]).numpy()[0]  # (2, 3, 256, 94)
    assert ours.shape == (2, 3, 256, 94)
    _assert_close_db(ours[0], _librosa_t1b(left))
    _assert_close_db(ours[1], _librosa_t1b(right))
    # the mono downmix the pipeline feeds equals librosa.to_mono
    mono = librosa.to_mono(stereo)
    down = ext(torch.from_numpy(stereo.mean(axis=0, keepdims=True))[None]).numpy()[0]
    _assert_close_db(down, _librosa_t1b(mono))


def test_batch_equals_single_items():
    ys = np.stack([v for v in _inputs(SR).values()]).astype(np.float32)[:, None]  # (4, 1, 48000)
    ext = create_extractor("logmel", T1B, sample_rate_hz=SR)
    batch = ext(torch.from_numpy(ys))
    for i in range(len(ys)):
        single = ext(torch.from_numpy(ys[i : i + 1]))
        torch.testing.assert_close(batch[i : i + 1], single, atol=1e-3, rtol=0)


def test_silence_is_finite_and_floored():
    ext = create_extractor("logmel", T1B, sample_rate_hz=SR)
    out = ext(torch.zeros(1, 1, SR))
    assert torch.isfinite(out).all()
    assert float(out[0, 0].max()) == pytest.approx(-100.0)  # 10 log10(amin=1e-10)


def test_dcase2020_sed_preset_matches_librosa_amplitude_to_db():
    params = PRESETS["dcase2020-sed"]["features"][0]["params"]
    sr = PRESETS["dcase2020-sed"]["audio"]["sample_rate_hz"]
    y = signals.speech_like_bursts(10.0, sr, seed=7).astype(np.float32)
    ext = create_extractor("logmel", params, sample_rate_hz=sr)
    ours = ext(torch.from_numpy(y)[None, None]).numpy()[0]
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=sr,
        n_fft=2048,
        hop_length=255,
        window="hamming",
        center=True,
        pad_mode="reflect",
        power=1.0,
        n_mels=128,
        norm=None,
    )
    ref = librosa.amplitude_to_db(mel)
    assert ours.shape == (128, 628) == ref.shape
    mask = ref > ref.max() - 80
    assert np.abs(ours - ref)[mask].max() < 0.01


def test_dcase2019_tritrain_preset_shape_and_values():
    params = PRESETS["dcase2019-tritrain"]["features"][0]["params"]
    sr = 22_050
    y = signals.pink_noise(10.0, sr, seed=9).astype(np.float32)
    ext = create_extractor("logmel", params, sample_rate_hz=sr)
    ours = ext(torch.from_numpy(y)[None, None]).numpy()[0]
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=345, n_mels=128))
    assert ours.shape == (128, 640) == ref.shape
    mask = ref > ref.max() - 80
    assert np.abs(ours - ref)[mask].max() < 0.01


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="power"):
        LogMelConfig(power=3.0)
    with pytest.raises(ValueError, match="unknown option"):
        create_extractor("logmel", {"n_mel": 64}, sample_rate_hz=SR)
    with pytest.raises(KeyError, match="registered"):
        create_extractor("nope", {}, sample_rate_hz=SR)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    ys = np.stack([v for v in _inputs(SR).values()]).astype(np.float32)[:, None]
    ext = create_extractor("logmel", T1B, sample_rate_hz=SR)
    cpu = ext(torch.from_numpy(ys))
    gpu = ext.to("cuda")(torch.from_numpy(ys).cuda()).cpu()
    mask = cpu[:, 0] > cpu[:, 0].amax(dim=(1, 2), keepdim=True) - 80
    assert (cpu[:, 0] - gpu[:, 0]).abs()[mask].max() < 0.01
