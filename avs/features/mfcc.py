"""MFCC extractor (torchaudio), equal to ``librosa.feature.mfcc`` with the same settings.

Pipeline: optional FFT brick-wall low-pass at ``lowpass_hz`` (input rate) -> optional resampling to
``target_sample_rate_hz`` (torchaudio sinc resampling) -> power mel spectrogram (torchaudio
``MelSpectrogram``: Slaney mel scale and area norm by default, power 2) -> ``10 log10(max(S, amin))`` with
the floor ``max - top_db`` taken per item (as ``librosa.power_to_db`` on one clip; torchaudio's
``AmplitudeToDB`` on a (batch, mels, frames) tensor would take the max over the whole batch) -> DCT-II
with orthonormal scaling (``torchaudio.functional.create_dct(norm="ortho")``), first ``n_mfcc`` rows.

Output per channel: (n_mfcc, frames), or (n_mfcc * frames,) with ``flatten`` (coefficient-major:
index = coefficient * frames + frame). frames = 1 + n // hop_length with ``center`` (even n_fft),
1 + (n - n_fft) // hop_length without, where n is the length after resampling.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torchaudio

from avs.features.base import AudioExtractor, register_extractor


@dataclasses.dataclass(frozen=True)
class MFCCConfig:
    n_mfcc: int = 20  # librosa default
    n_fft: int = 2048  # librosa default
    win_length: int | None = None  # None: n_fft
    hop_length: int | None = None  # None: win_length // 4 (librosa)
    window: Literal["hann", "hamming"] = "hann"  # periodic windows, as scipy.signal.get_window / librosa
    n_mels: int = 128  # librosa default
    f_min: float = 0.0
    f_max: float | None = None  # None: Nyquist of the analysed rate
    center: bool = True
    pad_mode: Literal["constant", "reflect"] = "constant"  # centred frames: zeros (librosa >= 0.10) | reflect (< 0.10)
    mel_scale: Literal["slaney", "htk"] = "slaney"  # librosa default (htk=False)
    mel_norm: Literal["slaney"] | None = "slaney"  # librosa default: area-normalised triangles
    top_db: float | None = 80.0  # librosa.power_to_db default, per item
    amin: float = 1e-10  # librosa.power_to_db default
    lowpass_hz: float | None = None  # FFT brick-wall low-pass before anything else; None: off
    target_sample_rate_hz: int | None = None  # resample to this rate after the low-pass; None: keep the rate
    flatten: bool = False

    def __post_init__(self) -> None:
        if self.window not in ("hann", "hamming"):
            raise ValueError(f"window must be 'hann' or 'hamming', got {self.window!r}")
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) must be <= n_mels ({self.n_mels})")
        if self.pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {self.pad_mode!r}")


# Paper 001, sec. 3.2 ("Mel-Frequency Cepstral Coefficients"), after Owens et al. [24]: 3.75-s windows
# (sec. 3.1) "low-pass filter ... at 5 kHz and then sample at 10 kHz", "20 triangular bandpass filters"
# (n_mels = 20; the DCT formula sums k = 1..20 filter outputs), 20 coefficients, "frames 12.8 ms apart"
# (128 samples at 10 kHz) with a "256 Hamming window" (256 samples = 25.6 ms, n_fft 256), flattened;
# "we use MFCC from Librosa", so the other settings are librosa's of the paper's time (librosa < 0.10:
# Slaney mel, power 2, top_db 80, centred frames padded by reflection -- librosa >= 0.10 pads with zeros).
# Shape: a 3.75-s window is 37 500 samples at 10 kHz -> 1 + 37500 // 128 = 293 centred frames
# -> (20, 293) -> flattened 5 860 values. The paper reports 20 x 155 = 3 100, which no reading of its own
# numbers gives: 155 frames at 12.8 ms cover 1.98 s, not 3.75 s (exactly 155 frames come from a 2.0-s
# window with uncentred frames, 1 + (20000 - 256) // 128, or a 1.98-s one centred); over 3.75 s, 155 frames
# need a hop of 24.2-24.3 ms (242-243 samples at 10 kHz), which matches neither the stated 12.8 ms nor
# librosa's default hop (512 samples: 23.2 ms at 22.05 kHz -> 1 + 82687 // 512 = 162 frames). The stated
# window, hop and clip length are kept; 3 100 values come from ``segment_seconds`` 1.98 (centred frames).
# The 5-kHz low-pass is an FFT brick-wall at the input rate (zeroing bins above 5 kHz; a no-op when the
# input is already at 10 kHz), followed by torchaudio's band-limited sinc resampling to 10 kHz.
OWENS_MFCC = MFCCConfig(
    n_mfcc=20,
    n_fft=256,
    win_length=256,
    hop_length=128,
    window="hamming",
    n_mels=20,
    f_min=0.0,
    f_max=None,  # 5 kHz = Nyquist at 10 kHz
    center=True,
    pad_mode="reflect",  # librosa < 0.10 (paper 001, 2021)
    lowpass_hz=5000.0,
    target_sample_rate_hz=10_000,
    flatten=True,
)
OWENS_MFCC_SHAPE = (20 * 293,)  # for a 3.75-s window (37 500 samples at 10 kHz), see above


def fft_lowpass(audio: torch.Tensor, sample_rate_hz: float, cutoff_hz: float) -> torch.Tensor:
    """Brick-wall low-pass of (..., samples): zero the rfft bins above ``cutoff_hz`` (circular, zero phase)."""
    n = audio.shape[-1]
    if cutoff_hz >= sample_rate_hz / 2 or n == 0:
        return audio
    spec = torch.fft.rfft(audio)
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate_hz, device=audio.device)
    return torch.fft.irfft(spec * (freqs <= cutoff_hz), n=n)


@register_extractor("mfcc", config=MFCCConfig)
class MFCC(AudioExtractor):
    """(batch, samples) float32 -> (batch, n_mfcc, frames) or (batch, n_mfcc * frames) with ``flatten``."""

    def __init__(self, cfg: MFCCConfig, sample_rate_hz: int) -> None:
        super().__init__(cfg, sample_rate_hz)
        self.analysis_sr_hz = int(cfg.target_sample_rate_hz or sample_rate_hz)
        self.win_length = cfg.win_length or cfg.n_fft
        self.hop_length = cfg.hop_length or self.win_length // 4
        window_fn = torch.hann_window if cfg.window == "hann" else torch.hamming_window
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.analysis_sr_hz,
            n_fft=cfg.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            f_min=cfg.f_min,
            f_max=cfg.f_max if cfg.f_max is not None else self.analysis_sr_hz / 2,
            n_mels=cfg.n_mels,
            window_fn=window_fn,
            power=2.0,
            center=cfg.center,
            pad_mode=cfg.pad_mode,
            norm=cfg.mel_norm,
            mel_scale=cfg.mel_scale,
        )
        self.register_buffer("dct", torchaudio.functional.create_dct(cfg.n_mfcc, cfg.n_mels, "ortho"))  # (mels, mfcc)

    def analysed_length(self, n_samples: int) -> int:
        """Samples after resampling (torchaudio.functional.resample gives ceil(n * new / orig))."""
        sr, new = self.sample_rate_hz, self.analysis_sr_hz
        return n_samples if sr == new else -(-n_samples * new // sr)

    def n_frames(self, n_samples: int) -> int:
        n, n_fft = self.analysed_length(n_samples), self.cfg.n_fft
        if self.cfg.center:
            return 1 + (n + 2 * (n_fft // 2) - n_fft) // self.hop_length
        if n < n_fft:
            raise ValueError(f"segment of {n} samples is shorter than n_fft={n_fft} (center=False)")
        return 1 + (n - n_fft) // self.hop_length

    def mono_shape(self, n_samples: int) -> tuple[int, ...]:
        frames = self.n_frames(n_samples)
        return (self.cfg.n_mfcc * frames,) if self.cfg.flatten else (self.cfg.n_mfcc, frames)

    def forward_mono(self, audio: torch.Tensor) -> torch.Tensor:
        # audio: (batch, samples) at self.sample_rate_hz
        c = self.cfg
        x = audio.float()
        if c.lowpass_hz is not None:
            x = fft_lowpass(x, self.sample_rate_hz, c.lowpass_hz)
        if self.analysis_sr_hz != self.sample_rate_hz:
            x = torchaudio.functional.resample(x, self.sample_rate_hz, self.analysis_sr_hz)
        mel = self.melspec(x)  # (batch, n_mels, frames) power
        # (batch, 1, mels, frames): torchaudio takes the top_db floor per leading item of a 4-d tensor
        db = torchaudio.functional.amplitude_to_DB(mel[:, None], 10.0, c.amin, 0.0, c.top_db)[:, 0]
        mfcc = torch.einsum("bmt,mk->bkt", db, self.dct)  # (batch, n_mfcc, frames)
        return mfcc.reshape(mfcc.shape[0], -1) if c.flatten else mfcc
