"""Paper 002's (Hitachi at TRECVID DSDI 2020) losses for soft multi-label targets, §2.2 and §2.4, beyond the soft
focal loss of eqs. (1)-(2) (``avs.train.losses.binary_focal_loss``):

    w = class_balanced_weights(counts, beta=0.999)               # eq. (3): (1 - beta) / (1 - beta ** n_y)
    w = w * none_class_weights(classes, multiplier=0.1)          # Table 2 C08 / C09: none-classes x 0.1 / 0.01
    per_sample = binary_focal_loss(logits, y, 2.0, alpha=w, reduction="none")       # CB-FL, (batch,)
    per_sample = reduced_focal_loss(logits, y, th=0.5, reduction="none")            # RFL, eqs. (4)-(6)
    loss = drop_largest(per_sample).mean()                       # §2.4 outlier removal (Table 2 C11)

All take ``logits`` and soft ``target`` of shape ``(batch, classes)``; p_i = sigmoid(logit_i) and, as eq. (2),
p^_i = 1 - |y_i - p_i|. Per-element terms are summed over the classes (the paper's sum over C).

**Reduced focal loss, eq. (4) as printed** (``form="printed"``)::

    RFL = - sum_i ( w1 log p^_i + w2 ((1 - p^_i) / th) ** gamma log p^_i ),
    w1 = 1 if p_i > th else 0,    w2 = 1 if p_i <= th else 0                        eqs. (5), (6)

The printed eq. (4) has an unclosed bracket (read here as closing after the second term), switches the two
weights on the raw prediction p_i rather than on p^_i, and puts the focal factor on the *low* predictions. The
original reduced focal loss (Sergievskiy & Ponamarev 2019, the paper's [20]) switches on the probability of
the true label, p^_i here, and reduces the *easy* examples: ``-log p^`` where p^ < th, ``-((1 - p^) / th) **
gamma log p^`` where p^ >= th (``form="original"``). For a positive hard label (y = 1, p^ = p) the printed
form gives the focal weight to p <= th and plain cross-entropy to p > th, the original the reverse; with soft
labels the printed switch ignores y altogether. Both are offered; the presets use the printed one (Table 2 was
trained with it, as far as the paper says).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from avs.train.losses import Reduction, _alpha_vector, _reduce


def class_balanced_weights(counts: Sequence[float], beta: float, normalize: bool = False) -> torch.Tensor:
    """Eq. (3)'s per-class factor ``(1 - beta) / (1 - beta ** n_y)`` from the class counts n_y (Table 1), as the
    paper prints it. ``normalize=True`` rescales them to sum to the number of classes, as Cui et al. (the
    paper's [3]) do; the paper does not say it does. ``(classes,)`` float64 -> float32."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"class-balanced beta must be in [0, 1), got {beta}")
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    if n.ndim != 1 or (n <= 0).any():
        raise ValueError("class counts must be a list of positive numbers (a class with no sample has no weight)")
    w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    if normalize:
        w = w * len(w) / w.sum()
    return w.float()


def none_class_weights(
    classes: Sequence[str], multiplier: float, none_classes: Sequence[str] | None = None
) -> torch.Tensor:
    """1 per class, ``multiplier`` for the none-classes (default: the names ending in ": none", LADI's five
    "damage: none" ... "water: none"; paper 002 §2.4 (4), Table 2 C08 0.1 / C09 0.01)."""
    names = set(none_classes) if none_classes is not None else {c for c in classes if c.endswith(": none")}
    unknown = names - set(classes)
    if unknown:
        raise ValueError(f"none-classes not among the classes: {sorted(unknown)}")
    return torch.tensor([multiplier if c in names else 1.0 for c in classes], dtype=torch.float32)


def _log_phat(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log(1 - |y - sigmoid(x)|) from log-sigmoids (finite for large logits), as binary_focal_loss."""
    p = torch.sigmoid(x)
    neg_inf = torch.tensor(-math.inf, dtype=x.dtype, device=x.device)
    log_y = torch.where(y > 0, torch.log(y.clamp_min(1e-38)), neg_inf)
    log_1my = torch.where(y < 1, torch.log((1.0 - y).clamp_min(1e-38)), neg_inf)
    return torch.where(p <= y, torch.logaddexp(log_1my, F.logsigmoid(x)), torch.logaddexp(log_y, F.logsigmoid(-x)))


def reduced_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    th: float = 0.5,
    gamma: float = 2.0,
    form: Literal["printed", "original"] = "printed",
    alpha: float | torch.Tensor | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Paper 002 eqs. (4)-(6) (``form="printed"``) or the original reduced focal loss (``"original"``); see the
    module docstring. ``alpha``: per-class weights (class-balanced, none-class). Summed over classes, then
    reduced over the batch (``"none"``: ``(batch,)``)."""
    if logits.shape != target.shape or logits.ndim != 2:
        raise ValueError(
            f"logits and target must both be (batch, classes), got {tuple(logits.shape)}, {tuple(target.shape)}"
        )
    if not 0.0 < th < 1.0:
        raise ValueError(f"reduced focal loss threshold th must be in (0, 1), got {th}")
    x = logits.float()
    y = target.float().clamp(0.0, 1.0)
    p = torch.sigmoid(x)
    log_phat = _log_phat(x, y)
    focal = (torch.abs(y - p) / th) ** gamma  # ((1 - p^) / th) ** gamma
    if form == "printed":
        plain = p > th  # w1 (eq. 5); w2 (eq. 6) is its complement
    elif form == "original":
        plain = (1.0 - torch.abs(y - p)) < th  # hard examples (p^ < th): cross-entropy
    else:
        raise ValueError(f"reduced focal loss form must be 'printed' or 'original', got {form!r}")
    per_class = -torch.where(plain, log_phat, focal * log_phat)  # (batch, classes)
    alpha_vec = _alpha_vector(alpha, x.shape[1], x)
    if alpha_vec is not None:
        per_class = per_class * alpha_vec
    return _reduce(per_class.sum(dim=1), reduction)


def drop_largest(per_sample: torch.Tensor) -> torch.Tensor:
    """§2.4 outlier removal: "we always remove the max loss value in each minibatch losses from the summation of
    losses". ``(batch,)`` -> ``(batch - 1,)`` without the (first) largest; a batch of one is kept as it is."""
    if per_sample.ndim != 1:
        raise ValueError(f"drop_largest takes per-sample losses (batch,), got {tuple(per_sample.shape)}")
    if per_sample.numel() < 2:
        return per_sample
    keep = torch.ones_like(per_sample, dtype=torch.bool)
    keep[torch.argmax(per_sample.detach())] = False
    return per_sample[keep]
