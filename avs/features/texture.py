"""Sound-texture statistics (502-d) of paper 001, section 3.2 (after Owens et al. 2016 [24] and
McDermott & Simoncelli 2011 [21]).

Pipeline per clip (defaults = the paper / toolbox settings):

1. resample to ``audio_sr_hz`` = 20 kHz (toolbox ``audio_sr``; torchaudio sinc resampling) and cut to a
   multiple of ``audio_sr_hz / env_sr_hz`` = 50 samples (as Owens et al.);
2. 32 cochlear subbands by multiplying the whole-clip rfft with the filterbank of
   :func:`~avs.features.texture_functional.erb_cos_filters`: 30 half-cosine band-passes equally spaced on
   the ERB-number scale between 20 Hz and 10 kHz (each 2 ERB-spacings wide, 50 % overlap, centres from
   ~52 Hz to ~8.8 kHz) plus the toolbox's complementary low-pass (< ~52 Hz) and high-pass (> ~8.8 kHz);
3. Hilbert envelope ``|s * f_i + i H(s * f_i)|`` at the full rate (one inverse FFT per band), raised to the
   power 0.3, then Fourier-resampled to ``env_sr_hz`` = 400 Hz (order as in the toolbox and Owens' code:
   compress, then downsample; the paper lists them the other way round);
4. statistics (:func:`~avs.features.texture_functional.texture_statistics`), laid out as ``TEXTURE_FIELDS``.

Paper ambiguities, resolved here:
- "32 band-pass filters": the toolbox's ``make_erb_cos_filters(N=30)`` returns 32 filters (30 cosine +
  low-pass + high-pass), which is what Owens et al.'s code keeps (``edge_filters=True``);
  ``edge_filters=False`` gives 32 half-cosine band-passes instead.
- correlations: the paper's rho_jk has no 1/T; we use the Pearson correlation (Owens' ``np.corrcoef``).
- modulation normalisation: the text says "normalized by the variance", the formula divides by mu_i^2;
  the default ``mod_power_norm="sqrt_var"`` is ``sqrt(b_ij / sigma_i^2)`` (Owens' code); "var" is the
  toolbox's ``b_ij / sigma_i^2``; "sqrt_mean2" is the formula as printed.
- modulation bank: 10 constant-Q (Q = 1) half-cosine filters, log-spaced centres 0.5 .. 200 Hz (~1 octave
  apart), as Owens' ``mod_filters`` (the toolbox default is 20 filters with Q = 2).
- loudness: ``median_t ||c(t)||_2`` over all 32 compressed 400-Hz envelopes, not normalised.
- correlation order: grouped by offset (all |j-k| = 1 pairs, then 2, 3, 5); Owens' code interleaves them
  band by band (j, then offsets) -- the same 117 values in another order.
- level: the input is not normalised (Owens' code peak-normalises the clip first), so ``mean`` and
  ``loudness`` scale with level ** 0.3 while the other statistics are level-invariant; envelopes are clamped
  at 0 after resampling (Owens' code clips them to [-1, 1], which only matters for normalised input).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import torch
import torchaudio

from avs.features import texture_functional as TF
from avs.features.base import AudioExtractor, register_extractor


@dataclasses.dataclass(frozen=True)
class TextureConfig:
    audio_sr_hz: int = 20_000  # input is resampled to this rate (toolbox audio_sr; [24])
    n_subbands: int = 32  # paper 001 sec. 3.2: 32 subband envelopes
    edge_filters: bool = True  # 30 cosine band-passes + low-pass + high-pass (toolbox N=30, [24])
    f_min_hz: float = 20.0  # toolbox low_audio_f (the paper is silent)
    f_max_hz: float = 10_000.0  # toolbox hi_audio_f = Nyquist at 20 kHz (the paper is silent)
    env_sr_hz: int = 400  # paper 001 sec. 3.2: envelopes downsampled to 400 Hz
    compression: float = 0.3  # paper 001 sec. 3.2: envelopes raised to the power 0.3
    corr_offsets: tuple[int, ...] = (1, 2, 3, 5)  # paper 001 sec. 3.2: |j - k| in {1, 2, 3, 5}
    n_mod_bands: int = 10  # paper 001 sec. 3.2: 10 modulation filters per subband
    mod_f_min_hz: float = 0.5  # Owens et al. [24] mod_filters / toolbox low_mod_f
    mod_f_max_hz: float = 200.0  # Owens et al. [24] / toolbox hi_mod_f (Nyquist at 400 Hz)
    mod_q: float = 1.0  # Owens et al. [24] (toolbox: 2 with 20 filters)
    mod_power_norm: Literal["sqrt_var", "var", "sqrt_mean2"] = "sqrt_var"  # see module docstring
    eps: float = 1.1920929e-07  # float32 machine epsilon, as Owens et al.; keeps silence finite

    def __post_init__(self) -> None:
        if self.audio_sr_hz % self.env_sr_hz:
            raise ValueError(f"audio_sr_hz ({self.audio_sr_hz}) must be a multiple of env_sr_hz ({self.env_sr_hz})")
        if any(d < 1 or d >= self.n_subbands for d in self.corr_offsets):
            raise ValueError(f"corr_offsets must lie in [1, n_subbands), got {self.corr_offsets}")


class TextureField(NamedTuple):
    name: str
    start: int
    length: int
    description: str


def texture_fields(cfg: TextureConfig = TextureConfig()) -> tuple[TextureField, ...]:
    """Layout of the statistics vector for ``cfg``, field by field (start index, length)."""
    n = cfg.n_subbands
    specs = [
        ("mean", n, "mu_i: mean of compressed envelope i, bands low to high"),
        ("std_norm", n, "sigma_i / mu_i: normalised standard deviation, sqrt(var / (eps + mu^2))"),
    ]
    for d in cfg.corr_offsets:
        specs.append((f"corr_d{d}", n - d, f"Pearson correlation of envelopes (j, j+{d}), j = 0 .. {n - d - 1}"))
    specs.append(
        (
            "mod_power",
            n * cfg.n_mod_bands,
            f"normalised modulation power, band-major: index = start + i * {cfg.n_mod_bands} + m "
            f"(subband i, modulation band m, centres {cfg.mod_f_min_hz:g} .. {cfg.mod_f_max_hz:g} Hz)",
        )
    )
    specs.append(("loudness", 1, "median over time of the L2 norm across subbands of the envelopes"))
    fields, start = [], 0
    for name, length, desc in specs:
        fields.append(TextureField(name, start, length, desc))
        start += length
    return tuple(fields)


# Default layout (502 = 32 + 32 + (31 + 30 + 29 + 27) + 320 + 1):
#   mean 0:32, std_norm 32:64, corr_d1 64:95, corr_d2 95:125, corr_d3 125:154, corr_d5 154:181,
#   mod_power 181:501, loudness 501.
TEXTURE_FIELDS = texture_fields()
TEXTURE_DIM = sum(f.length for f in TEXTURE_FIELDS)


@register_extractor("texture", config=TextureConfig)
class TextureExtractor(AudioExtractor):
    """(batch, samples) float32 at ``sample_rate_hz`` -> (batch, 502) float32 texture statistics.

    Frequency-domain filterbanks depend on the FFT length, so they are built on first use for each input
    length and kept as non-persistent buffers (moved by ``.to(device)``); at most ``max_cached_lengths``
    lengths are kept. ``max_chunk_elements`` bounds the size of the full-rate complex subband tensor.
    """

    max_cached_lengths = 8
    max_chunk_elements: int | None = None  # None: 2**20 on CPU (cache-friendly, fastest), 2**26 on GPUs

    def __init__(self, cfg: TextureConfig, sample_rate_hz: int) -> None:
        super().__init__(cfg, sample_rate_hz)
        self.fields = texture_fields(cfg)
        self.n_stats = sum(f.length for f in self.fields)
        pair_j, pair_k = TF.correlation_pairs(cfg.n_subbands, cfg.corr_offsets)
        self.register_buffer("pair_j", pair_j, persistent=False)
        self.register_buffer("pair_k", pair_k, persistent=False)
        self._cached: list[str] = []  # buffer names, oldest first

    def mono_shape(self, n_samples: int) -> tuple[int, ...]:
        return (self.n_stats,)

    # ---- lengths and filterbanks -------------------------------------------------------------------------
    def _resampled_length(self, n_samples: int) -> int:
        sr, new = self.sample_rate_hz, self.cfg.audio_sr_hz
        return n_samples if sr == new else -(-n_samples * new // sr)  # torchaudio.functional.resample

    def analysis_lengths(self, n_samples: int) -> tuple[int, int]:
        """(samples analysed at audio_sr_hz, envelope samples at env_sr_hz) for an input of n_samples."""
        factor = self.cfg.audio_sr_hz // self.cfg.env_sr_hz
        n_env = self._resampled_length(n_samples) // factor
        return n_env * factor, n_env

    def cochlear_filters(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_subbands, n // 2 + 1) float64 filter responses and (n_subbands,) centre frequencies (Hz)."""
        c = self.cfg
        return TF.erb_cos_filters(n, c.audio_sr_hz, c.n_subbands, c.f_min_hz, c.f_max_hz, c.edge_filters)

    def modulation_filters(self, n_env: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        return TF.modulation_cos_filters(n_env, c.env_sr_hz, c.n_mod_bands, c.mod_f_min_hz, c.mod_f_max_hz, c.mod_q)

    def _filters(self, n: int, n_env: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached (cochlear filters x Hilbert weights, modulation filters) for an analysed length ``n``."""
        name_c, name_m = f"_cochlear_{n}", f"_modulation_{n}"
        if name_c not in self._cached:
            coch = self.cochlear_filters(n)[0] * TF.hilbert_weights(n)  # (bands, n // 2 + 1)
            self.register_buffer(name_c, coch.float().to(device), persistent=False)
            self.register_buffer(name_m, self.modulation_filters(n_env)[0].to(device), persistent=False)
            self._cached.append(name_c)
            while len(self._cached) > self.max_cached_lengths:
                old = self._cached.pop(0)
                delattr(self, old)
                delattr(self, old.replace("_cochlear_", "_modulation_"))
        coch, mod = getattr(self, name_c), getattr(self, name_m)
        if coch.device != device:  # the module was not moved to the input's device: move the cached filters
            coch, mod = coch.to(device), mod.to(device)
            self.register_buffer(name_c, coch, persistent=False)
            self.register_buffer(name_m, mod, persistent=False)
        return coch, mod

    # ---- forward ----------------------------------------------------------------------------------------
    def forward_mono(self, audio: torch.Tensor) -> torch.Tensor:
        # audio: (batch, samples) at self.sample_rate_hz
        if audio.ndim != 2:
            raise ValueError(f"expected (batch, samples), got {tuple(audio.shape)}")
        c = self.cfg
        x = audio.float()
        if self.sample_rate_hz != c.audio_sr_hz:
            x = torchaudio.functional.resample(x, self.sample_rate_hz, c.audio_sr_hz)
        n, n_env = self.analysis_lengths(audio.shape[-1])
        if n_env < 4:
            raise ValueError(
                f"segment too short for texture statistics: {audio.shape[-1]} samples at {self.sample_rate_hz} Hz "
                f"gives {n_env} envelope samples at {c.env_sr_hz} Hz (need >= 4)"
            )
        x = x[:, :n]  # (batch, n) at audio_sr_hz
        coch, mod = self._filters(n, n_env, x.device)
        chunk = self.max_chunk_elements or (1 << 20 if x.device.type == "cpu" else 1 << 26)
        envs = TF.subband_envelopes(x, coch, n_env, c.compression, chunk)  # (batch, bands, n_env)
        return TF.texture_statistics(envs, mod, self.pair_j, self.pair_k, c.eps, c.mod_power_norm)  # (b, 502)
