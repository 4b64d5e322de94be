"""Pure tensor functions for spectral features (no state; filterbanks are built by the modules).

Conventions follow librosa so that the numbers can be checked against it:
- ``power_to_db``  == ``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80.0)`` per item;
- ``amplitude_to_db`` == ``librosa.amplitude_to_db(S, ref=1.0, amin=1e-5, top_db=80.0)`` per item;
- ``deltas`` == ``librosa.feature.delta(X, width=9, order=n, mode="interp")`` (Savitzky-Golay).
"""

from __future__ import annotations

import functools

import numpy as np
import torch


def power_to_db(
    power: torch.Tensor, *, amin: float = 1e-10, ref: float = 1.0, top_db: float | None = 80.0, item_dims: int = 2
) -> torch.Tensor:
    """10 log10(max(amin, S) / ref), clamped to ``max - top_db`` over the last ``item_dims`` axes.

    power: (..., n_mels, frames), power units (|X|^2).  Returns decibels, same shape.
    """
    if amin <= 0:
        raise ValueError("amin must be positive")
    db = 10.0 * torch.log10(torch.clamp(power, min=amin)) - 10.0 * np.log10(max(amin, ref))
    if top_db is not None:
        if top_db < 0:
            raise ValueError("top_db must be non-negative")
        peak = db.flatten(start_dim=db.ndim - item_dims).amax(dim=-1)  # (...,)
        floor = (peak - top_db).reshape(*peak.shape, *([1] * item_dims))
        db = torch.maximum(db, floor)
    return db


def amplitude_to_db(
    amplitude: torch.Tensor, *, amin: float = 1e-5, ref: float = 1.0, top_db: float | None = 80.0, item_dims: int = 2
) -> torch.Tensor:
    """20 log10(max(amin, |S|) / ref), clamped to ``max - top_db`` (librosa.amplitude_to_db)."""
    return power_to_db(amplitude.abs() ** 2, amin=amin * amin, ref=ref * ref, top_db=top_db, item_dims=item_dims)


@functools.lru_cache(maxsize=64)
def savgol_operator(n_frames: int, width: int = 9, order: int = 1) -> np.ndarray:
    """(n_frames, n_frames) matrix D with ``delta(x) = D @ x`` along time, as librosa.feature.delta.

    librosa applies ``scipy.signal.savgol_filter(x, width, deriv=order, polyorder=order, mode="interp")``;
    the filter is linear, so filtering the identity gives its matrix (edges included, exactly).
    """
    from scipy.signal import savgol_filter

    if width < 3 or width % 2 == 0:
        raise ValueError("delta width must be an odd integer >= 3")
    if n_frames < width:
        raise ValueError(
            f"delta width {width} needs at least {width} frames, got {n_frames}: "
            "use a longer segment or a smaller width"
        )
    eye = np.eye(n_frames, dtype=np.float64)
    return savgol_filter(eye, width, deriv=order, polyorder=order, mode="interp", axis=0)


@functools.lru_cache(maxsize=64)
def delta_operator(n_frames: int, width: int, order: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``savgol_operator(...).T`` as a tensor of ``dtype`` on ``device``, made once per key: (frames, frames),
    right-multiplied by (..., frames) features. Not an inference tensor, so autograd can use it too."""
    with torch.inference_mode(False):
        op = torch.as_tensor(savgol_operator(n_frames, width, order).T, dtype=dtype, device=device)
        return op.contiguous()


def deltas(features: torch.Tensor, *, width: int = 9, order: int = 1) -> torch.Tensor:
    """Time derivative of ``features`` (..., frames), librosa.feature.delta(width, order, mode="interp")."""
    op_t = delta_operator(features.shape[-1], width, order, features.dtype, features.device)
    return features @ op_t  # (..., frames) @ (frames, frames): stays on the features' device, no copy per call


def num_frames(n_samples: int, n_fft: int, hop_length: int, center: bool) -> int:
    """Number of STFT frames for a signal of ``n_samples`` samples."""
    if center:
        return 1 + n_samples // hop_length
    if n_samples < n_fft:
        raise ValueError(f"signal of {n_samples} samples is shorter than n_fft={n_fft} with center=False")
    return 1 + (n_samples - n_fft) // hop_length


def fix_frames(features: torch.Tensor, n_frames: int | None) -> torch.Tensor:
    """Crop or zero-pad the last (time) axis to ``n_frames`` frames (None: unchanged)."""
    if n_frames is None or features.shape[-1] == n_frames:
        return features
    if features.shape[-1] > n_frames:
        return features[..., :n_frames]
    return torch.nn.functional.pad(features, (0, n_frames - features.shape[-1]), value=float(features.min()))
