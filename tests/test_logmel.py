"""Log-mel + deltas against librosa (the numbers of paper 000 §2.1 and the SED presets)."""

import importlib

import numpy as np
import pytest
import torch

from avs.features.base import create_extractor
from avs.features.logmel import LogMelConfig
from avs.presets import PRESETS
from avs.testing import signals


class _LazyLibrosa:
    """librosa imported at first use (and failing there if missing): the CUDA test below needs only torch, and
    runs on GPU machines that lack librosa's numba (../shared/gpu/gpu_smoke.sh offline)."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module("librosa"), name)


librosa = _LazyLibrosa()
SR = 48_000
T1B = LogMelConfig(n_fft=4096, hop_length=512, n_mels=256)  # avs default padding: constant (librosa >= 0.10)
T1B_PRESET = PRESETS["dcase2021-t1b"]["features"][0]["params"]  # reflect padding (librosa < 0.10, paper 000)


def _inputs(sr: int, seconds: float = 1.0):
    return {
        "noise": signals.white_noise(seconds, sr, seed=1),
        "pink": signals.pink_noise(seconds, sr, seed=2),
        "chirp": signals.chirp(100.0, sr / 2.5, seconds, sr),
        "speech": signals.speech_like_bursts(seconds, sr, seed=3),
    }


def _librosa_t1b(y: np.ndarray, **pad) -> np.ndarray:
    # no pad argument: the installed librosa's default (>= 0.10: "constant")
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=4096, hop_length=512, n_mels=256, **pad)
    S = librosa.power_to_db(mel)
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


@pytest.mark.parametrize("kind", ["noise", "pink", "chirp", "speech"])
def test_t1b_preset_pads_by_reflection_as_paper_librosa(kind):
    # paper 000 used librosa < 0.10, whose stft padded centred frames by reflection
    assert T1B_PRESET["pad_mode"] == "reflect"
    y = _inputs(SR)[kind].astype(np.float32)
    ext = create_extractor("logmel", T1B_PRESET, sample_rate_hz=SR)
    ours = ext(torch.from_numpy(y)[None, None]).numpy()[0]  # (3, 256, 94)
    assert ours.shape == (3, 256, 94)
    _assert_close_db(ours, _librosa_t1b(y, pad_mode="reflect"))


def test_padding_changes_only_the_edge_frames():
    # 1-s segment, n_fft 4096, hop 512: frames 0-3 and 90-93 reach into the padding (4 + 4 of 94)
    y = _inputs(SR)["pink"].astype(np.float32)  # sound up to both ends (the speech bursts start in silence)
    x = torch.from_numpy(y)[None, None]
    reflect = create_extractor("logmel", T1B_PRESET, sample_rate_hz=SR)(x)[0, 0].numpy()
    constant = create_extractor("logmel", {**T1B_PRESET, "pad_mode": "constant"}, sample_rate_hz=SR)(x)[0, 0].numpy()
    changed = np.flatnonzero(np.abs(reflect - constant).max(axis=0) > 1e-3)
    assert changed.tolist() == [0, 1, 2, 3, 90, 91, 92, 93]
    # and librosa agrees on which option is which
    _assert_close_db(constant[None], _librosa_t1b(y, pad_mode="constant")[:1])
    _assert_close_db(reflect[None], _librosa_t1b(y, pad_mode="reflect")[:1])


def test_reflect_padding_needs_more_than_half_a_window():
    ext = create_extractor("logmel", T1B_PRESET, sample_rate_hz=SR)
    with pytest.raises(ValueError, match="pad_mode='reflect' needs more than"):
        ext(torch.zeros(1, 1, 2048))
    with pytest.raises(ValueError, match="pad_mode"):
        LogMelConfig(pad_mode="edge")


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


def test_dcase2020_sed_preset_matches_the_baseline_code():
    params = PRESETS["dcase2020-sed"]["features"][0]["params"]
    sr = PRESETS["dcase2020-sed"]["audio"]["sample_rate_hz"]
    y = signals.speech_like_bursts(10.0, sr, seed=7).astype(np.float32)
    ext = create_extractor("logmel", params, sample_rate_hz=sr)
    ours = ext(torch.from_numpy(y)[None, None]).numpy()[0]
    # turpaultn/dcase20_task4 baseline/data_utils/Desed.py calculate_mel_spec (config: 2048 / 255 / 128 mels,
    # fmin 0, fmax 8000), line by line
    spec = librosa.stft(y, n_fft=2048, hop_length=255, window=np.hamming(2048), center=True, pad_mode="reflect")
    mel = librosa.feature.melspectrogram(S=np.abs(spec), sr=sr, n_mels=128, fmin=0.0, fmax=8000.0, htk=False, norm=None)
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
    # paper 004 (2019): librosa of its time, whose stft padded centred frames by reflection
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=345, n_mels=128, pad_mode="reflect")
    ref = librosa.power_to_db(mel)
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
