"""The gradient reversal layer (Ganin & Lempitsky 2015, paper 004's [23]) and its usual weight schedule.

    z = grad_reverse(features, alpha)       # forward: identity; backward: -alpha x the incoming gradient
    alpha = ganin_alpha(progress)           # 2 / (1 + exp(-10 p)) - 1, p in [0, 1] the training progress

A domain classifier D behind the layer learns to tell the domains apart (its own gradient is untouched),
while the features below receive the *reversed* gradient of D's loss: the update of paper 004 eq. (5),
theta_F <- theta_F - mu (dL_y/dtheta_F - alpha dL_d/dtheta_F).
"""

from __future__ import annotations

import math

import torch

__all__ = ["GradReverse", "ganin_alpha", "grad_reverse"]


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.alpha = float(alpha)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return -ctx.alpha * grad, None


def grad_reverse(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient flowing back through it is multiplied by ``-alpha``."""
    return GradReverse.apply(x, alpha)


def ganin_alpha(progress: float, gamma: float = 10.0) -> float:
    """2 / (1 + exp(-gamma p)) - 1 (Ganin & Lempitsky 2015 §5.2.2, gamma 10): 0 at the start, -> 1 at the end,
    so the domain classifier's noisy early gradient does not disturb the features."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
