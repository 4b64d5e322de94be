"""CLIP Late Fusion Network (paper 000, sec. 2.3, Table 1; model C04).

Three branches, one per CLIP image encoder, each (Table 1)

    Linear(d, 512) -> BatchNorm1d(512) -> ReLU() -> Dropout(p=0.2) -> Linear(512, 256)

with d = 640 (RN50x4), 512 (RN101), 512 (ViT-B/32); the three 256-d outputs are concatenated (256 * 3 = 768)
and go through Linear(768, 128) -> Linear(128, 10). Table 1 lists no activation between the last two layers
and neither is added here. With the defaults the network has 1,350,282 parameters, Table 5's "1.35M".

Input, in the order RN50x4, RN101, ViT-B-32 (open_clip names, as ``avs.features.clip_image``):
  - a mapping ``{"RN50x4": (batch, 640), "RN101": (batch, 512), "ViT-B-32": (batch, 512)}``
    (the keys are ``cfg.branch_names``; "ViT-B/32" is accepted for "ViT-B-32"),
  - a tuple / list of the three tensors in that order,
  - or one tensor ``(batch, 640 + 512 + 512)``: the three embeddings concatenated in that order.

The timm interface (``avs.models.base``): ``forward_features`` returns the concatenated branch outputs
``(batch, 256 * 3)``, the network's representation before the fusion layer. It is "unpooled" only in the
interface's sense: the inputs are one vector per segment, so there is no spatial or time axis to pool, and
``forward_head`` takes the place of pooling with Linear(768, 128) (``pre_logits=True`` returns that
``(batch, 128)`` embedding, ``num_features`` = 128) before the classifier Linear(128, 10).
``reset_classifier(n)`` replaces Linear(128, 10) by a new Linear(128, n) and keeps everything else.
The paper feeds the CLIP image embeddings as extracted (no augmentation, sec. 3); avs's CLIP extractor writes
unit-norm embeddings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from avs.models.base import register_model, replace_config


@dataclasses.dataclass(frozen=True)
class ClipLateFusionConfig:
    # Defaults: paper 000, Table 1.
    input_dims: tuple[int, ...] = (640, 512, 512)  # RN50x4, RN101, ViT-B/32 embedding sizes
    branch_names: tuple[str, ...] = ("RN50x4", "RN101", "ViT-B-32")  # open_clip names, same order
    branch_hidden: int = 512  # Linear(d, 512) -> BatchNorm1d(512)
    branch_out: int = 256  # Linear(512, 256) per branch; concatenated 256 * 3
    dropout: float = 0.2  # Dropout(p=0.2)
    fusion_hidden: int = 128  # Linear(256 * 3, 128)
    num_classes: int = 10  # Linear(128, 10)

    def __post_init__(self) -> None:
        if len(self.input_dims) != len(self.branch_names) or not self.input_dims:
            raise ValueError("ClipLateFusionConfig: input_dims and branch_names must have the same, non-zero length")
        if min(self.input_dims) < 1 or min(self.branch_hidden, self.branch_out, self.fusion_hidden) < 1:
            raise ValueError("ClipLateFusionConfig: sizes must be positive")
        if self.num_classes < 0:
            raise ValueError(f"ClipLateFusionConfig.num_classes must be >= 0, got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ClipLateFusionConfig.dropout must be in [0, 1), got {self.dropout}")


def _norm_key(name: str) -> str:
    return name.replace("/", "-")


class ClipBranch(nn.Sequential):
    """Linear(d, 512) -> BatchNorm1d(512) -> ReLU -> Dropout(0.2) -> Linear(512, 256) (one column of Table 1)."""

    def __init__(self, in_dim: int, hidden: int, out: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, out),
        )


def _make_head(in_features: int, num_classes: int) -> nn.Module:
    # (batch, 128) -> (batch, num_classes); no classifier for 0 classes, as timm
    return nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()


class ClipLateFusion(nn.Module):
    def __init__(self, cfg: ClipLateFusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.branches = nn.ModuleList(
            ClipBranch(d, cfg.branch_hidden, cfg.branch_out, cfg.dropout) for d in cfg.input_dims
        )
        self.fusion = nn.Linear(cfg.branch_out * len(cfg.input_dims), cfg.fusion_hidden)  # Linear(256*3, 128)
        self.head = _make_head(cfg.fusion_hidden, cfg.num_classes)  # Linear(128, 10)
        self.num_features = cfg.fusion_hidden
        self.num_classes = cfg.num_classes

    def split_inputs(self, x: Mapping[str, torch.Tensor] | Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
        """The three embeddings, each ``(batch, d_i)``, in ``cfg.branch_names`` order."""
        dims = self.cfg.input_dims
        if isinstance(x, torch.Tensor):
            if x.ndim != 2 or x.shape[1] != sum(dims):
                raise ValueError(f"expected (batch, {sum(dims)}) concatenated embeddings, got {tuple(x.shape)}")
            parts = list(torch.split(x, list(dims), dim=1))
        elif isinstance(x, Mapping):
            by_key = {_norm_key(k): v for k, v in x.items()}
            missing = [n for n in self.cfg.branch_names if _norm_key(n) not in by_key]
            if missing:
                raise KeyError(f"missing CLIP embeddings {missing}; got {sorted(x)}")
            parts = [by_key[_norm_key(n)] for n in self.cfg.branch_names]
        else:
            parts = list(x)
            if len(parts) != len(dims):
                raise ValueError(
                    f"expected {len(dims)} embeddings ({', '.join(self.cfg.branch_names)}), got {len(parts)}"
                )
        for name, d, part in zip(self.cfg.branch_names, dims, parts, strict=True):
            if part.ndim != 2 or part.shape[1] != d:
                raise ValueError(f"{name}: expected (batch, {d}), got {tuple(part.shape)}")
        return parts

    def forward_features(self, x) -> torch.Tensor:
        parts = self.split_inputs(x)  # [(batch, 640), (batch, 512), (batch, 512)]
        return torch.cat([branch(p) for branch, p in zip(self.branches, parts, strict=True)], dim=1)  # (batch, 768)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.fusion(x)  # (batch, 768) -> (batch, 128)
        return x if pre_logits else self.head(x)  # (batch, num_classes)

    def forward(self, x) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """A new, randomly initialised Linear(128, num_classes) (0: none, ``forward`` returns the 128-d
        embedding); branches and fusion layer are kept. ``cfg.num_classes`` follows (``load_model`` rebuilds
        this shape)."""
        cfg = replace_config(self.cfg, num_classes=num_classes)  # validates num_classes
        ref = self.fusion.weight
        self.head = _make_head(cfg.fusion_hidden, num_classes).to(device=ref.device, dtype=ref.dtype)
        self.head.train(self.training)
        self.cfg, self.num_classes = cfg, num_classes


register_model("clip-late-fusion", config=ClipLateFusionConfig)(ClipLateFusion)
