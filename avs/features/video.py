"""Video feature extractors: stored frames, CLIP image embeddings, zero-shot CLIP probabilities.

A video extractor is built once per worker and called on the frames of a batch of clips:

    ext = create_extractor("clip", ClipEncoderConfig(model="ViT-B-32"), sample_rate_hz=0)
    out = ext(frames, cache)    # frames: (n, H, W, 3) uint8 RGB; out: (n, *ext.output_shape()) or n bytes

``cache`` is a dict shared by the extractors of one call, so that "clip" and "clip-zeroshot" with the same
encoder embed each frame once.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np

from avs.classes import SCENE_CLASSES
from avs.features.base import register_extractor
from avs.features.clip_image import ClipEncoderConfig

# The ten scene classes of TAU Urban Audio-Visual Scenes 2021 (paper 000 §1; DCASE2021 Task 1B).
TAU_CLASSES = SCENE_CLASSES


class VideoExtractor:
    modality = "video"
    dtype = "float32"  # "float32": fixed-size float rows; "binary": one bytes value per row

    def __init__(self, cfg: Any, sample_rate_hz: int = 0) -> None:
        self.cfg = cfg
        self.device = "cpu"

    def to(self, device: str) -> VideoExtractor:
        self.device = str(device)
        return self

    def eval(self) -> VideoExtractor:
        return self

    def output_shape(self, n_channels: int = 0, n_samples: int = 0) -> tuple[int, ...]:
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """Extra facts for the shard metadata (class names, embedding size, ...)."""
        return {}

    def check(self) -> None:
        """Fail fast (in the driver, before any work) when something the extractor needs is missing."""

    def __call__(self, frames: np.ndarray, cache: dict | None = None) -> Any:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class FramesConfig:
    size: tuple[int, int] = (448, 448)  # (height, width); paper 000 §3 frame CNNs: 448 x 448; paper 002: 360 x 360
    jpeg_quality: int = 90  # stored as JPEG (4:2:0), decoded by PIL / torchvision when training


@register_extractor("frames", config=FramesConfig)
class Frames(VideoExtractor):
    """Frames resized to ``size`` (PIL bicubic) and stored as JPEG bytes, so training reads shards, not videos."""

    dtype = "binary"

    def output_shape(self, n_channels: int = 0, n_samples: int = 0) -> tuple[int, ...]:
        return (*self.cfg.size, 3)

    def __call__(self, frames: np.ndarray, cache: dict | None = None) -> list[bytes]:
        from PIL import Image

        h, w = self.cfg.size
        out = []
        for frame in frames:  # (H, W, 3) uint8
            img = Image.fromarray(frame)
            if img.size != (w, h):
                img = img.resize((w, h), Image.BICUBIC)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=self.cfg.jpeg_quality)
            out.append(buf.getvalue())
        return out


_EMBEDDERS: dict[tuple[ClipEncoderConfig, str], Any] = {}


def shared_embedder(cfg: ClipEncoderConfig, device: str) -> Any:
    """One ``ClipImageEmbedder`` per (encoder config, device) in this process."""
    from avs.features.clip_image import ClipImageEmbedder

    key = (cfg, device)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = ClipImageEmbedder(cfg, device)
    return _EMBEDDERS[key]


def _embed(cfg: ClipEncoderConfig, device: str, frames: np.ndarray, cache: dict | None) -> np.ndarray:
    key = ("clip", cfg)
    if cache is not None and key in cache:
        return cache[key]
    emb = shared_embedder(cfg, device)(frames)  # (n, dim) float32, unit norm
    if cache is not None:
        cache[key] = emb
    return emb


@register_extractor("clip", config=ClipEncoderConfig)
class ClipEmbedding(VideoExtractor):
    """Unit-norm CLIP image embeddings (paper 000 §2.3: RN50x4 640-d, RN101 512-d, ViT-B/32 512-d)."""

    def output_shape(self, n_channels: int = 0, n_samples: int = 0) -> tuple[int, ...]:
        from avs.features.clip_image import clip_embed_dim

        return (clip_embed_dim(self.cfg.model),)

    def metadata(self) -> dict[str, Any]:
        return {"model": self.cfg.model, "random_weights": self.cfg.random_weights}

    def check(self) -> None:
        from avs.features.clip_image import resolve_weights

        resolve_weights(self.cfg)  # MissingWeightsError naming every place looked in

    def load(self) -> None:
        shared_embedder(self.cfg, self.device)

    def __call__(self, frames: np.ndarray, cache: dict | None = None) -> np.ndarray:
        return _embed(self.cfg, self.device, frames, cache)


@dataclasses.dataclass(frozen=True)
class ZeroShotConfig:
    encoder: ClipEncoderConfig = ClipEncoderConfig()
    classes: tuple[str, ...] = TAU_CLASSES  # class names; "_" reads as a space in the prompt
    template: str = "a photo of a {}."  # paper 000 Table 2 C01-C03: "original labels as sentences"


@register_extractor("clip-zeroshot", config=ZeroShotConfig)
class ClipZeroShot(VideoExtractor):
    """Per-frame class probabilities of zero-shot CLIP (paper 000 Table 2, C01-C03)."""

    def __init__(self, cfg: ZeroShotConfig, sample_rate_hz: int = 0) -> None:
        super().__init__(cfg, sample_rate_hz)
        self._classifier = None

    def output_shape(self, n_channels: int = 0, n_samples: int = 0) -> tuple[int, ...]:
        return (len(self.cfg.classes),)

    def metadata(self) -> dict[str, Any]:
        return {
            "classes": list(self.cfg.classes),
            "model": self.cfg.encoder.model,
            "random_weights": self.cfg.encoder.random_weights,
            "template": self.cfg.template,
        }

    def check(self) -> None:
        from avs.features.clip_image import resolve_weights

        resolve_weights(self.cfg.encoder)

    def load(self) -> None:
        from avs.features.clip_image import ZeroShotClassifier

        embedder = shared_embedder(self.cfg.encoder, self.device)
        self._classifier = ZeroShotClassifier(embedder, embedder.tokenizer, self.cfg.classes, self.cfg.template)

    def __call__(self, frames: np.ndarray, cache: dict | None = None) -> np.ndarray:
        if self._classifier is None:
            self.load()
        emb = _embed(self.cfg.encoder, self.device, frames, cache)
        probs = self._classifier(emb)  # (n, n_classes), rows sum to 1; a tensor when frames were a tensor
        return probs if isinstance(probs, np.ndarray) else probs.float().cpu().numpy()
