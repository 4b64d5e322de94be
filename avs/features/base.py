"""Extractor registry and the audio-extractor interface.

An audio extractor is a ``torch.nn.Module`` built once per worker from its frozen config (filterbanks are
buffers, computed in ``__init__``) and called on batches:

    extractor = create_extractor("logmel", LogMelConfig(...), sample_rate_hz=48_000)
    feats = extractor(audio)          # audio: (batch, channels, samples) float32, any device
                                      # feats: (batch, *extractor.output_shape(channels, samples))

Mono input (channels == 1) gives features without a channel axis; with more channels every channel is
processed alone and the channel axis leads: (batch, channels, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from avs.registry import Registry

EXTRACTORS = Registry("extractor")


def register_extractor(name: str, *, config: type) -> Callable:
    """Class decorator: ``@register_extractor("logmel", config=LogMelConfig)``."""
    return EXTRACTORS.register(name, config=config)


def create_extractor(name: str, cfg: Any = None, *, sample_rate_hz: int = 0) -> Any:
    _import_builtin_extractors()
    return EXTRACTORS.create(name, cfg, sample_rate_hz=sample_rate_hz)


def extractor_modality(name: str) -> str:
    """ "audio" or "video": which decode branch feeds the extractor."""
    _import_builtin_extractors()
    return getattr(EXTRACTORS.get(name).factory, "modality", "audio")


def extractor_config(name: str, cfg: Any = None) -> Any:
    """The frozen config an extractor would be built with (defaults filled in)."""
    _import_builtin_extractors()
    return EXTRACTORS.make_config(name, cfg)


def _import_builtin_extractors() -> None:
    # Importing the modules registers them; kept lazy so `avs.features.base` stays light.
    import avs.features.logmel  # noqa: F401
    import avs.features.mfcc  # noqa: F401
    import avs.features.texture  # noqa: F401
    import avs.features.video  # noqa: F401


class AudioExtractor(torch.nn.Module):
    """Base class: subclasses implement ``forward_mono`` on (batch, samples) and ``mono_shape``."""

    modality = "audio"

    def __init__(self, cfg: Any, sample_rate_hz: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.sample_rate_hz = int(sample_rate_hz)

    def mono_shape(self, n_samples: int) -> tuple[int, ...]:
        """Shape of one channel's features for a segment of ``n_samples`` samples."""
        raise NotImplementedError

    def forward_mono(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) float32 -> (batch, *mono_shape(samples))."""
        raise NotImplementedError

    def output_shape(self, n_channels: int, n_samples: int) -> tuple[int, ...]:
        inner = self.mono_shape(n_samples)
        return inner if n_channels == 1 else (n_channels, *inner)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # audio: (batch, channels, samples)
        if audio.ndim != 3:
            raise ValueError(f"expected audio of shape (batch, channels, samples), got {tuple(audio.shape)}")
        batch, channels, samples = audio.shape
        feats = self.forward_mono(audio.reshape(batch * channels, samples))
        feats = feats.reshape(batch, channels, *feats.shape[1:])
        return feats[:, 0] if channels == 1 else feats
