"""Sound-texture statistics (paper 001, sec. 3.2): what the numbers mean, not only their shapes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from avs.features import texture_functional as TF
from avs.features.texture import TEXTURE_DIM, TEXTURE_FIELDS, TextureConfig, TextureExtractor, texture_fields
from avs.testing import signals
from avs.testing.texture_reference import texture_reference

SR = 20_000
SECONDS = 3.75
N = int(SR * SECONDS)  # 75 000 samples
F = {f.name: slice(f.start, f.start + f.length) for f in TEXTURE_FIELDS}
CORR = slice(F["corr_d1"].start, F["corr_d5"].stop)


@pytest.fixture(scope="module")
def ex() -> TextureExtractor:
    return TextureExtractor(TextureConfig(), sample_rate_hz=SR)


def _stats(ex: TextureExtractor, *clips: np.ndarray) -> np.ndarray:
    return ex(torch.from_numpy(np.stack(clips))[:, None]).numpy().astype(np.float64)  # (batch, 502)


def _mod(stats: np.ndarray) -> np.ndarray:
    return stats[..., F["mod_power"]].reshape(*stats.shape[:-1], 32, 10)  # (..., subband, mod band)


def _am_noise(rate_hz: float, seed: int) -> np.ndarray:
    t = np.arange(N) / SR
    gate = 0.5 * (1 - np.cos(2 * np.pi * rate_hz * t))  # full-depth sinusoidal modulation
    return (signals.white_noise(SECONDS, SR, seed=seed) * gate).astype(np.float32)


def test_layout_and_shape(ex: TextureExtractor) -> None:
    assert [f.name for f in TEXTURE_FIELDS] == [
        "mean",
        "std_norm",
        "corr_d1",
        "corr_d2",
        "corr_d3",
        "corr_d5",
        "mod_power",
        "loudness",
    ]
    assert [f.length for f in TEXTURE_FIELDS] == [32, 32, 31, 30, 29, 27, 320, 1]
    assert all(a.start + a.length == b.start for a, b in zip(TEXTURE_FIELDS[:-1], TEXTURE_FIELDS[1:], strict=True))
    assert TEXTURE_DIM == 502 == TEXTURE_FIELDS[-1].start + 1
    assert ex.output_shape(1, N) == (502,) and ex.output_shape(2, N) == (2, 502)
    out = ex(torch.from_numpy(signals.pink_noise(SECONDS, SR, seed=3))[None, None])
    assert out.shape == (1, 502) and out.dtype == torch.float32
    small = texture_fields(TextureConfig(n_subbands=16, n_mod_bands=6))
    assert sum(f.length for f in small) == 16 + 16 + (15 + 14 + 13 + 11) + 16 * 6 + 1


def test_filterbank_tiles_the_spectrum_on_an_erb_scale() -> None:
    filts, centre_hz = TF.erb_cos_filters(N, SR, 32, 20.0, 10_000.0)
    assert filts.shape == (32, N // 2 + 1)
    np.testing.assert_allclose((filts**2).sum(0).numpy(), 1.0, atol=1e-12)  # perfect reconstruction
    erb = TF.freq_to_erb(centre_hz).numpy()
    np.testing.assert_allclose(np.diff(erb), np.diff(erb)[0], rtol=1e-9)  # equal ERB spacing
    assert centre_hz[0] == 20.0 and abs(float(centre_hz[-1]) - 10_000.0) < 1e-6
    mod, mod_hz = TF.modulation_cos_filters(1500, 400, 10, 0.5, 200.0, 1.0)
    np.testing.assert_allclose(np.diff(np.log2(mod_hz.numpy())), np.log2(400) / 9)  # ~octave spacing
    assert (mod[:, 0] == 0).all()  # no modulation filter passes the envelope mean (DC)


def test_matches_numpy_scipy_reference(ex: TextureExtractor) -> None:
    """Same pipeline written with numpy / scipy.signal.hilbert / scipy.signal.resample in float64."""
    x = signals.pink_noise(SECONDS, SR, seed=5) + 0.2 * signals.tone(700.0, SECONDS, SR)
    ours = _stats(ex, x.astype(np.float32))[0]

    ref = texture_reference(x, SR)
    np.testing.assert_allclose(ours, ref, rtol=2e-3, atol=2e-4)


def test_modulation_power_peaks_at_the_modulation_rate(ex: TextureExtractor) -> None:
    rates = (4.0, 32.0)
    mod = _mod(_stats(ex, *[_am_noise(r, seed=i) for i, r in enumerate(rates)]))  # (2, 32, 10)
    centres = TF.modulation_cos_filters(1500, 400, 10, 0.5, 200.0, 1.0)[1].numpy()
    peaks = mod[:, 4:30].mean(1).argmax(-1)  # per clip, averaged over mid-frequency subbands
    expected = [int(np.argmin(np.abs(np.log(centres / r)))) for r in rates]
    assert expected == [3, 6]  # 3.7 Hz and 27 Hz bands
    assert peaks.tolist() == expected
    # most individual subbands agree too
    assert (mod[0, 4:30].argmax(-1) == 3).mean() > 0.8 and (mod[1, 4:30].argmax(-1) == 6).mean() > 0.8


def test_comodulated_noise_is_correlated_across_bands(ex: TextureExtractor) -> None:
    rng = np.random.default_rng(0)
    slow = scipy.signal.resample(rng.standard_normal(int(SECONDS * 8)), N)  # ~4 Hz-wide random envelope
    shared = np.exp(1.5 * slow / slow.std())  # one envelope for all subbands
    comod = (signals.white_noise(SECONDS, SR, seed=1) * shared / shared.max()).astype(np.float32)
    white = signals.white_noise(SECONDS, SR, seed=2)
    s = _stats(ex, comod, white)
    band = slice(2, 30)  # the band-pass filters away from the low/high-pass edge filters
    corr_comod, corr_white = s[0, CORR], s[1, CORR]
    assert corr_comod.mean() > 0.8 and np.median(corr_comod) > 0.85
    assert corr_white.mean() < 0.2
    assert np.abs(s[1, F["corr_d5"]]).max() < 0.15  # bands 5 apart share no frequencies
    assert (s[0, F["std_norm"]][band] > 2 * s[1, F["std_norm"]][band]).all()  # deeper envelope fluctuations


def test_normalised_statistics_are_level_invariant(ex: TextureExtractor) -> None:
    x = signals.pink_noise(SECONDS, SR, seed=7) + 0.3 * _am_noise(8.0, seed=8)
    s = _stats(ex, x.astype(np.float32), (0.1 * x).astype(np.float32))
    for name in ("std_norm", "corr_d1", "corr_d2", "corr_d3", "corr_d5", "mod_power"):
        np.testing.assert_allclose(s[1, F[name]], s[0, F[name]], rtol=1e-3, atol=1e-4, err_msg=name)
    # level-dependent ones follow the 0.3 power compression exactly
    np.testing.assert_allclose(s[1, F["mean"]], 0.1**0.3 * s[0, F["mean"]], rtol=1e-4)
    np.testing.assert_allclose(s[1, -1], 0.1**0.3 * s[0, -1], rtol=1e-4)


@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 4000.0])
def test_tone_energy_in_nearest_subband(ex: TextureExtractor, freq_hz: float) -> None:
    means = _stats(ex, signals.tone(freq_hz, SECONDS, SR))[0, F["mean"]]
    centre_hz = ex.cochlear_filters(N)[1].numpy()
    nearest = int(np.argmin(np.abs(centre_hz - freq_hz)))
    assert int(np.argmax(means)) == nearest
    assert means[nearest] > 3 * np.delete(means, [nearest - 1, nearest, nearest + 1]).max()


def test_batch_equals_single_and_silence_is_finite(ex: TextureExtractor) -> None:
    clips = [signals.pink_noise(SECONDS, SR, seed=s) for s in (11, 12)] + [signals.silence(SECONDS, SR)]
    both = _stats(ex, *clips)
    for i, clip in enumerate(clips):
        np.testing.assert_allclose(_stats(ex, clip)[0], both[i], rtol=1e-5, atol=1e-6)
    assert np.isfinite(both).all()
    np.testing.assert_array_equal(both[2], 0.0)  # silence: zero envelopes, zero statistics


def test_other_sample_rate_and_length() -> None:
    ex16 = TextureExtractor(TextureConfig(), sample_rate_hz=16_000)
    x = signals.tone(1000.0, 2.0, 16_000)
    assert ex16.analysis_lengths(x.size) == (40_000, 800)
    means = _stats(ex16, x)[0, F["mean"]]
    centre_hz = ex16.cochlear_filters(40_000)[1].numpy()
    assert int(np.argmax(means)) == int(np.argmin(np.abs(centre_hz - 1000.0)))
    with pytest.raises(ValueError, match="too short"):
        ex16(torch.zeros(1, 1, 100))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(ex: TextureExtractor) -> None:
    x = torch.from_numpy(np.stack([signals.pink_noise(SECONDS, SR, seed=s) for s in range(3)]))[:, None]
    cpu = ex(x)
    gpu = TextureExtractor(TextureConfig(), sample_rate_hz=SR).cuda()(x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)
