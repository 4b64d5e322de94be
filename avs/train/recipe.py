"""Training recipe of paper 000 (sec. 3): optimizer, learning-rate schedule, epochs, batch sizes, loss.

What the paper states (sec. 3):
  - "we used SGD with Momentum method [28] as the optimizer";
  - "The learning rate is divided by 10 when the training model reached 5 epoch, 10 epoch and 15 epoch";
  - "Epoch: 20" for all three model families;
  - "Train batch size: 24" (log-mel CNNs, 2.1), "20" (frame CNNs, 2.2), "48" (CLIP Late Fusion Network, 2.3);
  - "Other hyper-parameters are the same as used in IBN-Net [29] GitHub repository";
  - "We trained these models with Focal Loss [30] which gamma parameter is 2.0";
  - "we used best epoch models in the validation accuracy of each model".
The paper gives no learning rate, momentum or weight decay; they come from the IBN-Net repository it points
to (github.com/XingangPan/IBN-Net, ``imagenet.py`` defaults and ``train.sh``): lr 0.1, momentum 0.9, weight
decay 1e-4, no Nesterov, lr x 0.1 at the schedule epochs. IBN-Net's 0.1 was for batch 256; the paper says
nothing about scaling it, so it is kept (``lr`` is a field: change it per run).

The schedule is per epoch: call ``scheduler.step()`` once at the end of every epoch. After 5 steps the lr is
0.01 (IBN-Net's ``adjust_learning_rate`` at the start of 0-based epoch 5 gives the same lr per epoch).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from avs.train.losses import FocalLoss


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    optimizer: Literal["sgd"] = "sgd"  # paper 000 sec. 3: SGD with momentum
    lr: float = 0.1  # IBN-Net imagenet.py default (paper 000 sec. 3 defers to IBN-Net)
    momentum: float = 0.9  # IBN-Net imagenet.py default
    weight_decay: float = 1e-4  # IBN-Net imagenet.py default
    nesterov: bool = False  # IBN-Net: plain momentum
    epochs: int = 20  # paper 000 sec. 3 (all families)
    lr_milestones: tuple[int, ...] = (5, 10, 15)  # paper 000 sec. 3: lr / 10 at epochs 5, 10, 15
    lr_gamma: float = 0.1  # "divided by 10"
    batch_size: int = 24  # paper 000 sec. 3: 24 log-mel, 20 frames, 48 CLIP (see RECIPES)
    loss: Literal["focal", "cross_entropy"] = "focal"  # paper 000 sec. 3: Focal Loss
    focal_gamma: float = 2.0  # paper 000 sec. 3: gamma = 2.0
    select_best_by: Literal["val_accuracy", "val_log_loss"] = "val_accuracy"  # paper 000 sec. 3 (ensemble inputs)

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("RecipeConfig: lr must be > 0, epochs and batch_size >= 1")
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ValueError(f"RecipeConfig.lr_milestones must be increasing, got {self.lr_milestones}")


# Per family (paper 000 sec. 3: "Train batch size: 24" / "20" / "48").
RECIPES: dict[str, RecipeConfig] = {
    "logmel": RecipeConfig(batch_size=24),  # 2.1 log-mel CNNs (best epochs around 3-5)
    "frame": RecipeConfig(batch_size=20),  # 2.2 frame CNNs (best epochs around 15-20)
    "clip": RecipeConfig(batch_size=48),  # 2.3 CLIP Late Fusion Network (best epochs around 3-5)
}


def paper000_recipe(family: Literal["logmel", "frame", "clip"]) -> RecipeConfig:
    try:
        return RECIPES[family]
    except KeyError:
        raise KeyError(f"unknown model family {family!r}; known: {sorted(RECIPES)}") from None


def make_optimizer(model: torch.nn.Module, cfg: RecipeConfig) -> torch.optim.Optimizer:
    """SGD with momentum over the trainable parameters (weight decay on all of them, as IBN-Net)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer != "sgd":
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
    )


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: RecipeConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    """``MultiStepLR(milestones=(5, 10, 15), gamma=0.1)``; step once per epoch."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)


def make_loss(cfg: RecipeConfig) -> torch.nn.Module:
    """Focal loss with ``cfg.focal_gamma`` (paper 000: 2.0), or plain cross-entropy."""
    if cfg.loss == "focal":
        return FocalLoss(gamma=cfg.focal_gamma)
    if cfg.loss == "cross_entropy":
        return torch.nn.CrossEntropyLoss()
    raise ValueError(f"unknown loss {cfg.loss!r}")
