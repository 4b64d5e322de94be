"""Exponential moving average of a model's weights (the mean teacher of paper 003).

    teacher = ema_copy(student)                  # after the DDP wrap, so every rank starts from rank 0's weights
    update_ema(teacher, student, step, decay=0.999)   # after every optimizer step

alpha = min(1 - 1 / (step + 1), decay), as the DCASE 2020 baseline (``update_ema_variables``): early steps
follow the student closely, later ones average over ~1 / (1 - decay) steps. Parameters are averaged;
buffers (batch-norm running statistics) are copied from the student unless ``copy_buffers=False``.
"""

from __future__ import annotations

import copy

import torch


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or the module itself)."""
    return getattr(model, "module", model)


def ema_copy(student: torch.nn.Module) -> torch.nn.Module:
    teacher = copy.deepcopy(unwrap(student))
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def ema_alpha(step: int, decay: float) -> float:
    return min(1.0 - 1.0 / (step + 1), decay)


@torch.no_grad()
def update_ema(
    teacher: torch.nn.Module, student: torch.nn.Module, step: int, decay: float, copy_buffers: bool = True
) -> float:
    """teacher <- alpha teacher + (1 - alpha) student, in place; returns alpha."""
    alpha = ema_alpha(step, decay)
    src = unwrap(student)
    for t, s in zip(teacher.parameters(), src.parameters(), strict=True):
        t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)
    if copy_buffers:
        for t, s in zip(teacher.buffers(), src.buffers(), strict=True):
            t.copy_(s)
    return alpha
