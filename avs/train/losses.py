"""Focal losses: multi-class softmax (paper 000) and soft multi-label sigmoid (paper 002).

Pure functions on tensors plus thin ``nn.Module`` wrappers holding the settings.

Multi-class (paper 000, sec. 3: "We trained these models with Focal Loss [30] which gamma parameter is 2.0"),
Lin et al. (2017) with softmax probabilities ``p = softmax(logits)``::

    FL = - alpha_t * (1 - p_t) ** gamma * log(p_t)          (hard target t)
    FL = - sum_c alpha_c * y_c * (1 - p_c) ** gamma * log(p_c)   (soft / one-hot targets y)

gamma = 0 and no alpha give cross-entropy.

Soft multi-label (paper 002, sec. 2.2, eq. (1)-(2)), with ``p_i = sigmoid(logit_i)`` and soft labels y_i::

    p^_i = 1 - |y_i - p_i|,      FL = - sum_i (1 - p^_i) ** gamma * log(p^_i)

For hard labels this is the usual sigmoid focal loss (torchvision ``sigmoid_focal_loss`` with alpha < 0).
``log(p^)`` is computed from log-sigmoids (no log of a rounded probability), so large logits stay finite.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Reduction = Literal["mean", "sum", "none"]


def _reduce(loss: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _alpha_vector(alpha: float | torch.Tensor | None, n_classes: int, ref: torch.Tensor) -> torch.Tensor | None:
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        return torch.full((n_classes,), float(alpha), dtype=ref.dtype, device=ref.device)
    alpha = torch.as_tensor(alpha, dtype=ref.dtype, device=ref.device)
    if alpha.shape != (n_classes,):
        raise ValueError(f"alpha must be a float or a ({n_classes},) tensor, got shape {tuple(alpha.shape)}")
    return alpha


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | torch.Tensor | None = None,
    reduction: Reduction = "mean",
    ignore_index: int = -100,
) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017) for single-label multi-class training (paper 000, sec. 3: gamma 2).

    logits: ``(batch, classes)``; target: ``(batch,)`` class indices (``ignore_index`` rows are skipped) or
    ``(batch, classes)`` probabilities (one-hot or soft). ``alpha``: a float or a ``(classes,)`` tensor of class
    weights (None = 1). ``reduction="mean"`` averages over the counted rows; ``"none"`` gives ``(batch,)``.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (batch, classes), got {tuple(logits.shape)}")
    n_classes = logits.shape[1]
    logp = F.log_softmax(logits.float(), dim=1)  # (batch, classes)
    alpha_vec = _alpha_vector(alpha, n_classes, logp)
    if target.ndim == 1:
        valid = target != ignore_index
        safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
        logp_t = logp.gather(1, safe_target[:, None])[:, 0]  # (batch,)
        loss = -((1.0 - logp_t.exp()).clamp_min(0.0) ** gamma) * logp_t
        if alpha_vec is not None:
            loss = loss * alpha_vec[safe_target]
        loss = loss * valid
        if reduction == "mean":
            return loss.sum() / valid.sum().clamp_min(1)
        return _reduce(loss, reduction)
    if target.shape != logits.shape:
        raise ValueError(f"soft target must be (batch, classes) = {tuple(logits.shape)}, got {tuple(target.shape)}")
    weight = (1.0 - logp.exp()).clamp_min(0.0) ** gamma
    per_class = -target.float() * weight * logp  # (batch, classes)
    if alpha_vec is not None:
        per_class = per_class * alpha_vec
    return _reduce(per_class.sum(dim=1), reduction)


def _log_add(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    return torch.logaddexp(log_a, log_b)


def binary_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | torch.Tensor | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Sigmoid focal loss for (soft) multi-label targets, paper 002 eq. (1)-(2).

    logits, target: ``(batch, classes)``; target values in [0, 1] (soft labels from several annotators).
    ``p^ = 1 - |y - sigmoid(logit)|``; loss per element ``-(1 - p^)**gamma * log(p^)``, summed over classes
    (eq. (1) sums over C), then reduced over the batch (``"none"``: ``(batch,)``). ``alpha``: optional class
    weight, a float or a ``(classes,)`` tensor, multiplying each class term (paper 002's class-balanced and
    none-class weightings are such weights).
    """
    if logits.shape != target.shape or logits.ndim != 2:
        raise ValueError(
            f"logits and target must both be (batch, classes), got {tuple(logits.shape)}, {tuple(target.shape)}"
        )
    x = logits.float()
    y = target.float().clamp(0.0, 1.0)
    p = torch.sigmoid(x)
    neg_inf = torch.tensor(-math.inf, dtype=x.dtype, device=x.device)
    log_y = torch.where(y > 0, torch.log(y.clamp_min(1e-38)), neg_inf)
    log_1my = torch.where(y < 1, torch.log((1.0 - y).clamp_min(1e-38)), neg_inf)
    # p <= y: p^ = (1 - y) + p;   p > y: p^ = y + (1 - p)
    log_phat = torch.where(p <= y, _log_add(log_1my, F.logsigmoid(x)), _log_add(log_y, F.logsigmoid(-x)))
    one_minus_phat = torch.abs(y - p)
    per_class = -(one_minus_phat**gamma) * log_phat  # (batch, classes)
    alpha_vec = _alpha_vector(alpha, x.shape[1], x)
    if alpha_vec is not None:
        per_class = per_class * alpha_vec
    return _reduce(per_class.sum(dim=1), reduction)


class FocalLoss(nn.Module):
    """``focal_loss`` with its settings held (paper 000, sec. 3: gamma = 2.0)."""

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | torch.Tensor | None = None,
        reduction: Reduction = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.alpha_scalar = float(alpha) if isinstance(alpha, (int, float)) else None
        self.register_buffer(
            "alpha",
            None if alpha is None or self.alpha_scalar is not None else torch.as_tensor(alpha, dtype=torch.float32),
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha_scalar if self.alpha_scalar is not None else self.alpha
        return focal_loss(logits, target, self.gamma, alpha, self.reduction, self.ignore_index)


class BinaryFocalLoss(nn.Module):
    """``binary_focal_loss`` with its settings held (paper 002, eq. (1)-(2); gamma 2.0 in its Table 2)."""

    def __init__(
        self, gamma: float = 2.0, alpha: float | torch.Tensor | None = None, reduction: Reduction = "mean"
    ) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.reduction = reduction
        self.alpha_scalar = float(alpha) if isinstance(alpha, (int, float)) else None
        self.register_buffer(
            "alpha",
            None if alpha is None or self.alpha_scalar is not None else torch.as_tensor(alpha, dtype=torch.float32),
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha_scalar if self.alpha_scalar is not None else self.alpha
        return binary_focal_loss(logits, target, self.gamma, alpha, self.reduction)


def bce_probs(p: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Binary cross-entropy of *probabilities* (the CRNNs' sigmoid outputs, as paper 003's reference trains
    them with ``BCELoss``), in float32 with autocast off: CUDA autocast refuses ``binary_cross_entropy``
    inside an autocast region ("unsafe to autocast"), whatever the dtype of its inputs."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return F.binary_cross_entropy(p.float(), target.float(), reduction=reduction)
