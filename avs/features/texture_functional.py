"""Pure tensor functions for McDermott–Simoncelli sound-texture statistics (paper 001, section 3.2).

Filterbanks follow the Sound Texture Synthesis Toolbox (McDermott & Simoncelli 2011,
``make_erb_cos_filters.m`` / ``make_constQ_cos_filters.m``) and its Python port used by Owens et al. (2016,
ref. [24] of paper 001): filters are real, non-negative frequency responses sampled on the ``rfft`` grid
of the whole signal and applied by multiplying spectra (circular convolution over the whole clip).

Shapes: ``(n_filters, n_samples // 2 + 1)`` for filters, ``(batch, bands, time)`` for envelopes.
Filter construction runs once per signal length in float64; the per-batch functions run on any device.
"""

from __future__ import annotations

import math

import torch


def freq_to_erb(freq_hz: torch.Tensor | float) -> torch.Tensor:
    """ERB-number scale of the toolbox: ``9.265 * ln(1 + f / (24.7 * 9.265))``."""
    f = torch.as_tensor(freq_hz, dtype=torch.float64)
    return 9.265 * torch.log1p(f / (24.7 * 9.265))


def erb_to_freq(n_erb: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`freq_to_erb` (Hz)."""
    e = torch.as_tensor(n_erb, dtype=torch.float64)
    return 24.7 * 9.265 * torch.expm1(e / 9.265)


def rfft_freqs_hz(n_samples: int, sample_rate_hz: float) -> torch.Tensor:
    """(n_samples // 2 + 1,) float64 frequencies of the rfft bins."""
    return torch.fft.rfftfreq(n_samples, d=1.0 / sample_rate_hz, dtype=torch.float64)


def _half_cosine(x: torch.Tensor, lo: float, hi: float, center: float, width: float) -> torch.Tensor:
    """``cos((x - center) / width * pi)`` where ``lo < x < hi`` (strict, as the toolbox), else 0."""
    inside = (x > lo) & (x < hi)
    return torch.where(inside, torch.cos((x - center) / width * math.pi), torch.zeros_like(x))


def erb_cos_filters(
    n_samples: int,
    sample_rate_hz: float,
    n_filters: int,
    f_min_hz: float,
    f_max_hz: float,
    edge_filters: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cochlear filterbank: half-cosine responses on the ERB scale, adjacent filters overlapping by 50 %.

    With ``edge_filters`` (toolbox ``make_erb_cos_filters(len, sr, n_filters - 2, f_min, f_max)``) there are
    ``n_cos = n_filters - 2`` half-cosine band-passes plus a low-pass (1 below ``f_min``, falling to 0 at
    the peak of the first cosine filter) and a high-pass (rising from the peak of the last cosine filter,
    1 above ``f_max``), each ``sqrt(1 - neighbour**2)``, so the squared responses sum to 1 (perfect
    reconstruction). Without it all ``n_filters`` filters are half-cosine band-passes.

    ``n_cos + 2`` cutoffs are equally spaced in ERB number from ``f_min_hz`` to ``min(f_max_hz, Nyquist)``;
    cosine filter k spans cutoffs k..k+2 (open interval) and peaks at cutoff k+1 (its centre): every
    filter is 2 ERB-spacings wide (the bandwidth in Hz grows with frequency like the auditory ERB).

    Returns ``filters`` (n_filters, n_samples // 2 + 1) float64 and ``centre_hz`` (n_filters,) float64;
    the centre of the low-pass is reported as ``f_min_hz`` and that of the high-pass as the top cutoff.
    """
    freqs = rfft_freqs_hz(n_samples, sample_rate_hz)  # (n_freqs,)
    n_cos = n_filters - 2 if edge_filters else n_filters
    if n_cos < 1:
        raise ValueError(f"need at least one cosine filter, got n_filters={n_filters}, edge_filters={edge_filters}")
    hi = min(float(f_max_hz), float(freqs[-1]))  # toolbox: clip the top to the highest rfft frequency
    if not 0 <= f_min_hz < hi:
        raise ValueError(f"need 0 <= f_min_hz < f_max_hz (<= Nyquist), got {f_min_hz}, {f_max_hz}")
    erb_lo, erb_hi = float(freq_to_erb(f_min_hz)), float(freq_to_erb(hi))
    cutoffs = erb_to_freq(torch.linspace(erb_lo, erb_hi, n_cos + 2, dtype=torch.float64))  # (n_cos + 2,)
    erb_freqs = freq_to_erb(freqs)
    cos_filts = []
    for k in range(n_cos):
        lo, hi_k = float(cutoffs[k]), float(cutoffs[k + 2])
        e_lo, e_hi = float(freq_to_erb(lo)), float(freq_to_erb(hi_k))
        inside = (freqs > lo) & (freqs < hi_k)
        resp = torch.cos((erb_freqs - (e_lo + e_hi) / 2) / (e_hi - e_lo) * math.pi)
        cos_filts.append(torch.where(inside, resp, torch.zeros_like(resp)))
    cos = torch.stack(cos_filts)  # (n_cos, n_freqs)
    if not edge_filters:
        return cos, cutoffs[1:-1].clone()
    low = torch.where(freqs < cutoffs[1], torch.sqrt(torch.clamp(1 - cos[0] ** 2, min=0)), torch.zeros_like(freqs))
    high = torch.where(
        freqs > cutoffs[n_cos], torch.sqrt(torch.clamp(1 - cos[-1] ** 2, min=0)), torch.zeros_like(freqs)
    )
    filters = torch.cat([low[None], cos, high[None]])  # (n_cos + 2, n_freqs)
    centre_hz = torch.cat([cutoffs[:1], cutoffs[1:-1], cutoffs[-1:]])
    return filters, centre_hz


def modulation_cos_filters(
    n_samples: int, sample_rate_hz: float, n_filters: int, f_min_hz: float, f_max_hz: float, q: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant-Q half-cosine modulation filters (toolbox ``make_constQ_cos_filters.m``, Owens' ``mod_filters``).

    Centres are equally spaced in log frequency from ``f_min_hz`` to ``f_max_hz`` (with the defaults 0.5 Hz
    to 200 Hz and 10 filters: ratio (200 / 0.5) ** (1 / 9) = 1.95, about an octave). Filter k is
    ``cos((f - cf_k) / (2 * cf_k / q) * pi)`` on the open interval ``cf_k ± cf_k / q`` (with q = 1: from
    0 Hz, excluded, to 2 cf_k). The bank is divided by the root of its mean summed squared response over
    centres 4 .. n-3 (so it has about unit power gain where the filters tile), as Owens et al. do.

    Returns ``filters`` (n_filters, n_samples // 2 + 1) float64 and ``centre_hz`` (n_filters,) float64.
    Filters with no rfft bin in their band (very short envelopes) are all zero.
    """
    freqs = rfft_freqs_hz(n_samples, sample_rate_hz)
    hi = min(float(f_max_hz), sample_rate_hz / 2)
    if not 0 < f_min_hz < hi:
        raise ValueError(f"need 0 < mod f_min_hz < mod f_max_hz (<= Nyquist), got {f_min_hz}, {f_max_hz}")
    centre_hz = torch.exp2(torch.linspace(math.log2(f_min_hz), math.log2(hi), n_filters, dtype=torch.float64))
    filts = []
    for cf in centre_hz.tolist():
        bw = cf / q
        filts.append(_half_cosine(freqs, cf - bw, cf + bw, cf, 2 * bw))
    filters = torch.stack(filts)  # (n_filters, n_freqs)
    energy = (filters**2).sum(0)  # (n_freqs,)
    middle = (freqs >= centre_hz[min(3, n_filters - 1)]) & (freqs <= centre_hz[max(n_filters - 4, 0)])
    if middle.any() and energy[middle].mean() > 0:
        filters = filters / torch.sqrt(energy[middle].mean())
    return filters, centre_hz


def hilbert_weights(n_samples: int) -> torch.Tensor:
    """(n_samples // 2 + 1,) float64 weights turning an rfft spectrum into the analytic signal's spectrum.

    DC (and Nyquist for even lengths) keep weight 1, positive frequencies get 2; ``ifft(w * X, n)`` then
    zero-pads the negative frequencies, which gives ``x + i H(x)`` (as ``scipy.signal.hilbert``).
    """
    w = torch.full((n_samples // 2 + 1,), 2.0, dtype=torch.float64)
    w[0] = 1.0
    if n_samples % 2 == 0:
        w[-1] = 1.0
    return w


def fft_resample(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Fourier resampling of real ``x`` along the last axis to ``n_out`` samples (``scipy.signal.resample``)."""
    n_in = x.shape[-1]
    if n_out == n_in:
        return x
    m = min(n_in, n_out)
    spec = torch.fft.rfft(x)[..., : m // 2 + 1]
    if m % 2 == 0:  # the unpaired bin at m // 2
        scale = torch.ones(spec.shape[-1], dtype=x.dtype, device=x.device)
        scale[m // 2] = 2.0 if n_out < n_in else 0.5
        spec = spec * scale
    return torch.fft.irfft(spec, n=n_out) * (n_out / n_in)


def subband_envelopes(
    audio: torch.Tensor,
    filters_analytic: torch.Tensor,
    n_env: int,
    compression: float,
    max_chunk_elements: int = 1 << 20,
) -> torch.Tensor:
    """Compressed, downsampled Hilbert envelopes of the cochlear subbands.

    ``audio`` (batch, samples) float32; ``filters_analytic`` (bands, samples // 2 + 1) = filter responses
    times :func:`hilbert_weights`. For each band: ``|ifft(X * H_k, n)|`` (full-rate Hilbert envelope),
    ``** compression`` (basilar-membrane compression), then Fourier resampling to ``n_env`` samples and
    clamping at 0 (resampling ringing can dip below 0). Bands are processed in chunks of at most
    ``max_chunk_elements`` complex samples (batch * bands * samples) to bound memory.
    Returns (batch, bands, n_env) float32.
    """
    batch, n = audio.shape
    spec = torch.fft.rfft(audio.float())  # (batch, n_freqs)
    n_bands = filters_analytic.shape[0]
    per_band = max(1, batch * n)
    chunk = max(1, min(n_bands, max_chunk_elements // per_band))
    out = []
    for k0 in range(0, n_bands, chunk):
        sub_spec = spec[:, None, :] * filters_analytic[None, k0 : k0 + chunk]  # (batch, chunk, n_freqs)
        analytic = torch.fft.ifft(sub_spec, n=n)  # (batch, chunk, samples) complex
        env = (analytic.real.square() + analytic.imag.square()).pow_(compression / 2)  # |a| ** compression
        out.append(fft_resample(env, n_env).clamp_min(0.0))  # (batch, chunk, n_env)
    return torch.cat(out, dim=1)


def correlation_pairs(n_bands: int, offsets: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Band index pairs (j, j + d) grouped by offset d: all pairs for offsets[0], then offsets[1], ...

    For 32 bands and offsets (1, 2, 3, 5): 31 + 30 + 29 + 27 = 117 pairs.
    """
    js, ks = [], []
    for d in offsets:
        for j in range(n_bands - d):
            js.append(j)
            ks.append(j + d)
    return torch.tensor(js, dtype=torch.long), torch.tensor(ks, dtype=torch.long)


def texture_statistics(
    envs: torch.Tensor,
    mod_filters: torch.Tensor,
    pair_j: torch.Tensor,
    pair_k: torch.Tensor,
    eps: float,
    mod_power_norm: str = "sqrt_var",
) -> torch.Tensor:
    """Summary statistics of subband envelopes ``envs`` (batch, bands, time) -> (batch, n_stats).

    Order: means (bands), normalised std ``sqrt(var / (eps + mean**2))`` (bands), Pearson correlations of
    the pairs (n_pairs), normalised modulation powers (bands * n_mod, band-major), loudness (1).
    Moments are population moments (1 / T) over all envelope samples (no temporal window).

    Modulation power ``b_ij = mean_t((c_i * m_j)(t) ** 2)`` (circular filtering by ``mod_filters``
    (n_mod, time // 2 + 1) in the frequency domain), normalised by ``mod_power_norm``:
    ``"sqrt_var"``: ``sqrt(b_ij / (eps + var_i))`` (Owens et al.'s code), ``"var"``: ``b_ij / (eps + var_i)``
    (toolbox ``stat_mod_power_win``), ``"sqrt_mean2"``: ``sqrt(b_ij / (eps + mean_i**2))`` (paper 001's
    formula read literally). Loudness: ``median_t sqrt(sum_i c_i(t)**2)`` (numpy median: the mean of the
    two middle values for an even count). Correlations of a band with zero variance are 0.
    Computed in float64 (float32 on devices without it); returned as float32.
    """
    dtype = torch.float32 if envs.device.type == "mps" else torch.float64
    c = envs.to(dtype)
    batch, n_bands, n_t = c.shape
    mean = c.mean(-1)  # (batch, bands)
    centred = c - mean[..., None]
    var = (centred**2).mean(-1)  # (batch, bands)
    std_norm = torch.sqrt(var / (eps + mean**2))

    cov = (centred[:, pair_j] * centred[:, pair_k]).mean(-1)  # (batch, n_pairs)
    denom = torch.sqrt(var[:, pair_j] * var[:, pair_k])
    tiny = torch.finfo(dtype).tiny
    corr = torch.where(denom > tiny, cov / denom.clamp_min(tiny), torch.zeros_like(cov))

    mod_spec = torch.fft.rfft(c)[:, :, None, :] * mod_filters.to(dtype)[None, None]  # (b, bands, n_mod, f)
    mod_pow = (torch.fft.irfft(mod_spec, n=n_t) ** 2).mean(-1)  # (batch, bands, n_mod)
    if mod_power_norm == "sqrt_var":
        mod = torch.sqrt(mod_pow / (eps + var[..., None]))
    elif mod_power_norm == "var":
        mod = mod_pow / (eps + var[..., None])
    elif mod_power_norm == "sqrt_mean2":
        mod = torch.sqrt(mod_pow / (eps + mean[..., None] ** 2))
    else:
        raise ValueError(f"mod_power_norm must be 'sqrt_var', 'var' or 'sqrt_mean2', got {mod_power_norm!r}")

    norms = torch.sqrt((c**2).sum(1))  # (batch, time)
    srt = norms.sort(-1).values
    loudness = 0.5 * (srt[:, (n_t - 1) // 2] + srt[:, n_t // 2])  # (batch,)

    stats = torch.cat([mean, std_norm, corr, mod.reshape(batch, -1), loudness[:, None]], dim=1)
    return stats.float()
