"""Optimizers and learning-rate schedules by name, each schedule stepped per step or per epoch.

    opt = build_optimizer(model.parameters(), OptimizerConfig("adamw", lr=1e-3, weight_decay=0.05))
    sched = Schedule(opt, ScheduleConfig("onecycle", interval="step", total=10_000))
    ... sched.after_step()     # every optimizer step (steps a per-step schedule)
    ... sched.after_epoch()    # every epoch end (steps a per-epoch schedule)

Names: optimizers ``sgd`` | ``adam`` | ``adamw``; schedules ``constant`` | ``multistep`` | ``onecycle`` |
``exp_rampup`` (exp(-5 (1 - t / T)^2) up to 1, then 1: the DCASE 2020 baseline's ramp, paper 003) |
``cosine``. ``total`` counts the schedule's own unit (steps or epochs).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any, Literal

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "multistep", "onecycle", "exp_rampup", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.01  # base (or, for onecycle, peak) learning rate
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam / adamw
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.name!r} is not one of {OPTIMIZERS}")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: Literal["constant", "multistep", "onecycle", "exp_rampup", "cosine"] = "constant"
    interval: Literal["step", "epoch"] = "epoch"  # what one schedule step is
    milestones: tuple[int, ...] = ()  # multistep: where the rate is multiplied by gamma
    gamma: float = 0.1  # multistep
    total: int = 0  # onecycle / cosine: length; exp_rampup: the ramp's length T (in `interval` units)
    total_epochs: float | None = None  # instead of total, for per-step schedules: a length in epochs (the loop
    # turns it into steps once it knows the steps per epoch, ``with_steps_per_epoch``)
    pct_start: float = 0.3  # onecycle: fraction of `total` spent rising
    min_lr: float = 0.0  # cosine: the rate at the end

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule {self.name!r} is not one of {SCHEDULES}")
        if self.interval not in ("step", "epoch"):
            raise ValueError(f"schedule interval must be 'step' or 'epoch', got {self.interval!r}")
        if self.name in ("onecycle", "cosine", "exp_rampup") and self.total <= 0 and not self.total_epochs:
            raise ValueError(f"schedule {self.name!r} needs total > 0 ({self.interval}s) or total_epochs")
        if self.total_epochs is not None and self.total_epochs <= 0:
            raise ValueError(f"schedule total_epochs must be > 0, got {self.total_epochs}")

    def with_steps_per_epoch(self, steps_per_epoch: int) -> ScheduleConfig:
        """``total_epochs`` as ``total`` in this schedule's units (steps or epochs)."""
        if self.total_epochs is None:
            return self
        per = steps_per_epoch if self.interval == "step" else 1
        return dataclasses.replace(self, total=max(1, round(self.total_epochs * per)), total_epochs=None)


def build_optimizer(params: Iterable[Any], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def exp_rampup(t: float, length: float) -> float:
    """exp(-5 (1 - t / length)^2) for t < length, else 1 (sigmoid-shaped ramp, DCASE 2020 baseline)."""
    if t >= length:
        return 1.0
    phase = 1.0 - max(0.0, t) / length
    return math.exp(-5.0 * phase * phase)


def build_scheduler(opt: torch.optim.Optimizer, cfg: ScheduleConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    if cfg.name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if cfg.name == "onecycle":
        peaks = [g["lr"] for g in opt.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=cfg.total, pct_start=cfg.pct_start)
    if cfg.name == "exp_rampup":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: exp_rampup(t, cfg.total))
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.total, eta_min=cfg.min_lr)


class Schedule:
    """A scheduler that knows its interval: the loop calls both hooks and the right one steps it."""

    def __init__(self, opt: torch.optim.Optimizer, cfg: ScheduleConfig) -> None:
        self.cfg = cfg
        self.scheduler = build_scheduler(opt, cfg)

    def after_step(self) -> None:
        if self.cfg.interval == "step":
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.cfg.interval == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
