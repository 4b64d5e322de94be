"""Pure functions that turn a decoded clip into fixed-length model inputs."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from avs.decode.errors import TooShort


def to_channels(audio: np.ndarray, channels: Literal["mono", "stereo"]) -> np.ndarray:
    """(in_channels, samples) -> (1, samples) mean downmix, or (2, samples) (mono duplicated, extra dropped)."""
    if channels == "mono":
        return audio.mean(axis=0, keepdims=True) if audio.shape[0] > 1 else audio
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    return audio[:2]


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """(channels, samples) float32 resampled with torchaudio's band-limited sinc (Hann window, width 6)."""
    if from_hz == to_hz:
        return audio
    import torch  # here, not at import: decoder child processes use this module without torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), from_hz, to_hz)
    return out.numpy()


def segment_bounds(n_samples: int, segment_samples: int, hop_samples: int, min_last_fraction: float) -> list[int]:
    """Start samples of the segments; a trailing partial segment is kept (to be zero-padded) when it is at
    least ``min_last_fraction`` of a segment long."""
    starts: list[int] = []
    start = 0
    while start + segment_samples <= n_samples:
        starts.append(start)
        start += hop_samples
    if start < n_samples and (n_samples - start) >= min_last_fraction * segment_samples:
        starts.append(start)
    return starts


@dataclasses.dataclass(frozen=True)
class SegmentCentres:
    """Frame times at the centres of the audio segments of a clip (paper 001: the frame in the middle of
    each audio window), so that audio row ``segment`` i and video row ``segment`` i describe one moment."""

    segment_seconds: float
    hop_seconds: float | None = None
    min_last_fraction: float = 0.5

    def times(self, duration_s: float) -> np.ndarray:
        rate = 1000  # millisecond grid
        seg = int(round(self.segment_seconds * rate))
        hop = int(round((self.hop_seconds or self.segment_seconds) * rate))
        starts = segment_bounds(int(round(duration_s * rate)), seg, hop, self.min_last_fraction)
        return (np.asarray(starts, dtype=np.float64) + seg / 2) / rate


def segment_clip(
    audio: np.ndarray,
    sample_rate_hz: int,
    segment_seconds: float | None,
    hop_seconds: float | None = None,
    clip_seconds: float | None = None,
    min_last_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut (channels, samples) into (n_segments, channels, segment_samples) and their start times (s).

    ``clip_seconds`` first pads (zeros) or crops the clip to a fixed length; ``segment_seconds=None`` keeps
    the whole clip as one segment (then ``clip_seconds`` is required so that every row has one shape).
    """
    if clip_seconds is not None:
        target = int(round(clip_seconds * sample_rate_hz))
        if audio.shape[1] >= target:
            audio = audio[:, :target]
        else:
            audio = np.pad(audio, ((0, 0), (0, target - audio.shape[1])))
    if segment_seconds is None:
        if clip_seconds is None:
            raise ValueError("segment_seconds=None needs clip_seconds so that every clip has one shape")
        return audio[None], np.zeros(1)
    seg = int(round(segment_seconds * sample_rate_hz))
    hop = int(round((hop_seconds or segment_seconds) * sample_rate_hz))
    starts = segment_bounds(audio.shape[1], seg, hop, min_last_fraction)
    if not starts:
        raise TooShort(
            f"clip of {audio.shape[1] / sample_rate_hz:.3f} s is shorter than {min_last_fraction:g} of one "
            f"{segment_seconds:g}-s segment"
        )
    need = starts[-1] + seg
    if need > audio.shape[1]:
        audio = np.pad(audio, ((0, 0), (0, need - audio.shape[1])))
    out = np.stack([audio[:, s : s + seg] for s in starts])  # (n_segments, channels, seg)
    return out, np.asarray(starts, dtype=np.float64) / sample_rate_hz
