"""Training augmentations of paper 000 (sec. 3), all settings in a frozen ``AugmentConfig``.

Audio (sec. 3, "Experimental setting for 2.1": "Resized to 256x100x3, Random Gain, Frequency Masking [24]";
Mixup and time warping / masking were not used). They act on the batched 3-channel log-mel tensor
``(batch, 3, n_mels, frames)`` (log-mel in dB, delta, delta-delta; ``avs.features.logmel``):

  - random gain: a per-item gain g ~ U(gain_db_range) dB; on a dB log-mel a gain of g dB adds g to the
    static channel (channel 0) and leaves the deltas (derivatives of that channel) unchanged.
  - frequency masking (SpecAugment [24]): ``num_freq_masks`` bands per item, each f ~ U{0..F} mel bins wide
    starting at f0 ~ U{0..n_mels - f}, the same band on all three channels, filled with the item's
    per-channel mean (``freq_mask_value="mean"``) or a constant.
  The paper gives no values for either; the defaults (+-6 dB; F = 27, two masks: SpecAugment's LD policy)
  are avs's choice and are marked as such.

Frames (sec. 3, "Experimental setting for 2.2"): "Resized to 448x448x3, RandomAffine, ColorJitter, GaussianBlur,
Random Erasing [26]. In RandomAffine augmentation, we set degrees as [-10, 10], translate as (0.1, 0.1), and scale
as (0.5, 1.5). In GaussianBlur augmentation, we set the kernel size as (11, 11). Other augmentations' parameters are
the default ones of PyTorch". torchvision's defaults are kept for the rest: ColorJitter() with all factors 0 (it
changes nothing, faithfully), GaussianBlur sigma (0.1, 2.0), RandomErasing p 0.5, scale (0.02, 0.33), ratio
(0.3, 3.3), value 0. The torchvision v2 transforms draw one set of random parameters per call, so the frame
transform is applied per image (``augment_frames`` loops over a batch); ``Normalize`` uses ImageNet mean / std
(timm's ImageNet weights of paper 000).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class AudioAugmentConfig:
    gain_db_range: tuple[float, float] = (-6.0, 6.0)  # dB; paper 000 sec. 3 "Random Gain", range not given (avs)
    gain_p: float = 1.0  # probability an item gets a gain
    freq_mask_param: int = 27  # F, widest mask in mel bins; paper cites SpecAugment [24], no value (avs: LD's 27)
    num_freq_masks: int = 2  # SpecAugment LD policy m_F = 2 (avs's choice)
    freq_mask_value: Literal["mean"] | float = "mean"  # fill: per-item, per-channel mean, or a constant
    static_channel: int = 0  # which channel holds the dB log-mel (gain applies there only)


@dataclasses.dataclass(frozen=True)
class FrameAugmentConfig:
    size: tuple[int, int] = (448, 448)  # (H, W): paper 000 sec. 3 "Resized to 448 x 448 x 3"
    affine_degrees: tuple[float, float] = (-10.0, 10.0)  # paper 000 sec. 3
    affine_translate: tuple[float, float] = (0.1, 0.1)  # paper 000 sec. 3
    affine_scale: tuple[float, float] = (0.5, 1.5)  # paper 000 sec. 3
    # ColorJitter: "the default ones of PyTorch" (paper 000 sec. 3) = 0 for all four, a no-op.
    jitter_brightness: float = 0.0
    jitter_contrast: float = 0.0
    jitter_saturation: float = 0.0
    jitter_hue: float = 0.0
    blur_kernel: tuple[int, int] = (11, 11)  # paper 000 sec. 3
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # torchvision default
    erasing_p: float = 0.5  # torchvision default (Random Erasing [26])
    erasing_scale: tuple[float, float] = (0.02, 0.33)  # torchvision default
    erasing_ratio: tuple[float, float] = (0.3, 3.3)  # torchvision default
    erasing_value: float = 0.0  # torchvision default
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # "scene": paper 000's pipeline above; "aerial": paper 002 §3 (1) "RandomHorizontalFlip, RandomVerticalFlip,
    # RandomRotation, and ColorJitter with PyTorch default parameters" (flips p 0.5, jitter 0: a no-op)
    recipe: Literal["scene", "aerial"] = "scene"
    rotation_degrees: float = 180.0  # aerial: RandomRotation has no default; 180 (chosen: a photo from above has
    # no upright, so every angle is as likely)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    audio: AudioAugmentConfig = AudioAugmentConfig()
    frames: FrameAugmentConfig = FrameAugmentConfig()


# ------------------------------------------------------------------------------------------------ audio


def apply_gain_db(x: torch.Tensor, gain_db: torch.Tensor, static_channel: int = 0) -> torch.Tensor:
    """Add ``gain_db`` (batch,) dB to the dB log-mel channel of ``x`` (batch, chans, n_mels, frames)."""
    out = x.clone()
    out[:, static_channel] += gain_db.to(device=x.device, dtype=x.dtype).view(-1, 1, 1)
    return out


def freq_mask(
    x: torch.Tensor, starts: torch.Tensor, widths: torch.Tensor, value: Literal["mean"] | float = "mean"
) -> torch.Tensor:
    """Mask mel bands ``[start, start + width)`` of each item on all channels.

    x: (batch, chans, n_mels, frames); starts, widths: (batch, n_masks) integer tensors.
    """
    n_mels = x.shape[2]
    bins = torch.arange(n_mels, device=x.device).view(1, 1, n_mels)  # (1, 1, n_mels)
    starts = starts.to(x.device).unsqueeze(-1)
    widths = widths.to(x.device).unsqueeze(-1)
    masked = ((bins >= starts) & (bins < starts + widths)).any(dim=1)  # (batch, n_mels)
    masked = masked[:, None, :, None]  # (batch, 1, n_mels, 1), same band on every channel
    if value == "mean":
        return torch.where(masked, x.mean(dim=(2, 3), keepdim=True), x)  # per-item, per-channel mean
    return torch.where(masked, float(value), x)


def augment_audio(
    x: torch.Tensor, cfg: AudioAugmentConfig = AudioAugmentConfig(), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random gain then frequency masking on ``(batch, chans, n_mels, frames)``; new random values per item."""
    if x.ndim != 4:
        raise ValueError(f"expected (batch, chans, n_mels, frames), got {tuple(x.shape)}")
    batch, _, n_mels, _ = x.shape
    lo, hi = cfg.gain_db_range
    gain = lo + (hi - lo) * torch.rand(batch, generator=generator)
    if cfg.gain_p < 1.0:
        gain = gain * (torch.rand(batch, generator=generator) < cfg.gain_p)
    x = apply_gain_db(x, gain, cfg.static_channel)
    if cfg.num_freq_masks > 0 and cfg.freq_mask_param > 0:
        shape = (batch, cfg.num_freq_masks)
        widths = torch.floor(torch.rand(shape, generator=generator) * (min(cfg.freq_mask_param, n_mels) + 1)).long()
        starts = torch.floor(torch.rand(shape, generator=generator) * (n_mels - widths + 1)).long()
        x = freq_mask(x, starts, widths, cfg.freq_mask_value)
    return x


class AudioAugment(torch.nn.Module):
    """``augment_audio`` as a module: active in ``train()`` mode, identity in ``eval()``."""

    def __init__(self, cfg: AudioAugmentConfig = AudioAugmentConfig()) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return augment_audio(x, self.cfg) if self.training else x


# ------------------------------------------------------------------------------------------------ frames


def frame_train_transform(cfg: FrameAugmentConfig = FrameAugmentConfig()):
    """torchvision v2 pipeline for one uint8 image ``(3, H, W)`` -> float ``(3, *cfg.size)``, normalised.

    Resize -> RandomAffine -> ColorJitter -> GaussianBlur -> (to float) -> RandomErasing -> Normalize
    (paper 000 sec. 3 order; RandomErasing works on the float tensor and erases with ``erasing_value``
    before normalisation, as torchvision's ToTensor -> RandomErasing pipelines do).
    """
    from torchvision.transforms import v2

    if cfg.recipe == "aerial":  # paper 002 §3 (1): resize, flips, rotation, colour jitter
        return v2.Compose(
            [
                v2.Resize(list(cfg.size), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.RandomVerticalFlip(),
                v2.RandomRotation(cfg.rotation_degrees),
                v2.ColorJitter(cfg.jitter_brightness, cfg.jitter_contrast, cfg.jitter_saturation, cfg.jitter_hue),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
            ]
        )
    return v2.Compose(
        [
            v2.Resize(list(cfg.size), antialias=True),
            v2.RandomAffine(
                degrees=list(cfg.affine_degrees), translate=list(cfg.affine_translate), scale=list(cfg.affine_scale)
            ),
            v2.ColorJitter(cfg.jitter_brightness, cfg.jitter_contrast, cfg.jitter_saturation, cfg.jitter_hue),
            v2.GaussianBlur(kernel_size=list(cfg.blur_kernel), sigma=list(cfg.blur_sigma)),
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomErasing(
                p=cfg.erasing_p, scale=list(cfg.erasing_scale), ratio=list(cfg.erasing_ratio), value=cfg.erasing_value
            ),
            v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
        ]
    )


def frame_eval_transform(cfg: FrameAugmentConfig = FrameAugmentConfig()):
    """Validation / test transform: resize to ``cfg.size``, scale to [0, 1], normalise (no randomness)."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.Resize(list(cfg.size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
        ]
    )


def augment_frames(frames: torch.Tensor, transform) -> torch.Tensor:
    """Apply a per-image ``transform`` to each image of ``frames`` (batch, 3, H, W) uint8 or (batch, H, W, 3).

    Channels-last input (as decoded frames are stored) is moved to channels-first first. Returns
    ``(batch, 3, *size)`` float32.
    """
    if frames.ndim != 4:
        raise ValueError(f"expected a batch of images, got {tuple(frames.shape)}")
    if frames.shape[1] != 3 and frames.shape[-1] == 3:
        frames = frames.permute(0, 3, 1, 2)  # (batch, H, W, 3) -> (batch, 3, H, W)
    return torch.stack([transform(img) for img in frames])
