"""A plain numpy / scipy float64 implementation of the sound-texture statistics (one clip at a time),
to check ``avs.features.texture`` against and to time it against (benchmarks/bench_texture.py).

It uses avs's filterbanks (the statistics, not the filter design, are what it checks) and the default
``TextureConfig`` (20 kHz input, 400 Hz envelopes, compression 0.3, offsets 1, 2, 3, 5, 10 modulation bands).
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from avs.features import texture_functional as TF


def texture_reference(x: np.ndarray, sample_rate_hz: int = 20_000) -> np.ndarray:
    """(samples,) float -> (502,) float64: means, std/mean, correlations, modulation powers, loudness."""
    n = len(x)
    n_env = n * 400 // sample_rate_hz  # envelope samples at 400 Hz
    filts = TF.erb_cos_filters(n, sample_rate_hz, 32, 20.0, 10_000.0)[0].numpy()  # (32, freqs)
    sub = np.fft.irfft(np.fft.rfft(x.astype(np.float64))[None] * filts, n=n, axis=-1)  # (32, n) subbands
    env = np.abs(scipy.signal.hilbert(sub, axis=-1)) ** 0.3  # compressed Hilbert envelopes
    c = np.maximum(scipy.signal.resample(env, n_env, axis=-1), 0)  # (32, n_env) at 400 Hz
    mu, var = c.mean(1), c.var(1)
    eps = np.finfo(np.float32).eps
    corr = [np.corrcoef(c[j], c[j + d])[0, 1] for d in (1, 2, 3, 5) for j in range(32 - d)]
    mfilt = TF.modulation_cos_filters(n_env, 400, 10, 0.5, 200.0, 1.0)[0].numpy()  # (10, freqs)
    bands = np.fft.irfft(np.fft.rfft(c)[:, None] * mfilt[None], n=n_env, axis=-1)  # (32, 10, n_env)
    mod = np.sqrt((bands**2).mean(-1) / (eps + var[:, None]))
    loud = np.median(np.sqrt((c**2).sum(0)))
    return np.concatenate([mu, np.sqrt(var / (eps + mu**2)), corr, mod.ravel(), [loud]])
