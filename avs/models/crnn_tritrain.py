"""Paper 004's tri-training SED network (Park et al., DCASE 2019 Task 4, §3 and Figure 2): one forward, every head.

    net = create_model("crnn-tritrain", num_classes=10)                # 004 §4.2 input: (batch, 640, 128) log-mel
    out = net(x, alpha=0.5)                                            # training mode: the domain head runs too
    out["f1"], out["f2"], out["ft"]                                   # (strong (b, 160, 10), weak (b, 10)) each
    out["domain"]                                                      # logits: (b, 160) Adv.time | (b,) Adv.whole

Parts (Figure 2):
  - **F**, the shared feature extractor: "seven CNN blocks and two bi-directional gated recurrent units"
    (004 §3). The paper gives no sizes; it builds on [19]'s CRNN, and avs uses the CRNN of paper 003's
    reference code (``avs.models.crnn``: filters 16-128, 3x3 kernels, batch norm, GLU, dropout, average pooling
    /4 in time, 2 x 128 Bi-GRU), here with ``num_classes=0``: F(x) = ``(batch, frames / 4, 256)``.
  - **F1, F2** (the labelers) and **Ft** (the final classifier), one ``SEDHead`` each: a first fully connected
    layer ``Linear(256, head_hidden)`` + ReLU + dropout (the "first layer" whose weights paper 004 eq. (8)
    keeps apart between F1 and F2; the paper gives no size, 128 is chosen), then the strong head (sigmoid per
    frame) and attention pooling to clip probabilities (as paper 003's CRNN: softmax over classes, clamped,
    weighting the frames). Each outputs frame-level and clip-level multi-label probabilities (004 §3).
  - **D**, the domain classifier, behind the gradient reversal layer (``avs.models.gradient_reversal``,
    strength ``alpha``): a per-frame ``Linear(256, domain_hidden)`` + ReLU + dropout, then
    ``domain="time"`` (Adv.time, 004 §3.1): ``Linear(domain_hidden, 1)`` per frame -> ``(batch, frames_out)``
    logits; ``domain="whole"`` (Adv.whole): the whole ``(frames_out, domain_hidden)`` map flattened ->
    ``Linear(frames_out x domain_hidden, 1)`` -> ``(batch,)`` logits (one decision per clip, so Adv.whole
    needs clips of ``n_frames`` frames); ``domain="none"``: no D (the baseline and plain tri-training).

``forward(x, alpha=1.0, with_domain=None)`` -> ``{"f1", "f2", "ft": (strong, weak), "domain": logits | None}``
(``labelers=False``: no F1 / F2, their entries are absent). D runs in training mode (``with_domain=None``) or
when asked; inference (``avs predict``) reads ``out["ft"]``.

The avs model interface: ``forward_features`` = F's output ``(batch, frames_out, 256)``; ``forward_head(feats,
pre_logits=False, ...)`` = the dict above (``pre_logits``: F's features after the dropout);
``get_classifier()`` = the ``ModuleDict`` of the class-sized heads ``{"f1", "f2", "ft"}`` (attribute ``heads``:
``classifier_prefixes`` -> ``("heads.",)``); ``reset_classifier(n)`` builds new heads, keeps F and D.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from avs.models.base import register_model, replace_config
from avs.models.crnn import CRNN, CRNNConfig, reference_init
from avs.models.gradient_reversal import grad_reverse

__all__ = ["DomainHead", "SEDHead", "TriTrainCRNN", "TriTrainCRNNConfig", "orthogonality"]

LABELERS = ("f1", "f2")


@dataclasses.dataclass(frozen=True)
class TriTrainCRNNConfig:
    in_chans: int = 1
    num_classes: int = 10  # DCASE 2019 Task 4's 10 classes (004 §4.1)
    n_mels: int = 128  # 004 §4.2 "128-bin"
    n_frames: int = 640  # 004 §4.2 "640 frames" (Adv.whole's D is sized for this many)
    # F: 004 §3 "seven CNN blocks and two Bi-GRU" with no sizes; paper 003's reference CRNN (avs.models.crnn)
    filters: tuple[int, ...] = (16, 32, 64, 128, 128, 128, 128)
    pooling: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2))
    dropout: float = 0.5  # as paper 003's CRNN (004 is silent)
    rnn_hidden: int = 128
    rnn_layers: int = 2
    head_hidden: int = 128  # first layer of F1, F2, Ft (004 eq. 8 acts on F1's and F2's); 004 gives no size
    labelers: bool = True  # False: no F1 / F2 (004's "own baseline" and Adv.* rows train F + Ft (+ D) only)
    domain: Literal["none", "whole", "time"] = "time"  # 004 §3.1 Adv.whole / Adv.time; none: no D
    domain_hidden: int = 128  # 004 gives no size
    init: Literal["reference", "pytorch"] = "reference"  # paper 003's reference init or PyTorch's (avs.models.crnn)

    def __post_init__(self) -> None:
        if self.domain not in ("none", "whole", "time"):
            raise ValueError(f"TriTrainCRNNConfig.domain must be none, whole or time, got {self.domain!r}")
        if min(self.head_hidden, self.domain_hidden) < 1:
            raise ValueError("TriTrainCRNNConfig: head_hidden and domain_hidden must be positive")
        self.trunk_config()  # validates the CRNN fields

    def trunk_config(self) -> CRNNConfig:
        return CRNNConfig(
            in_chans=self.in_chans,
            num_classes=0,
            n_mels=self.n_mels,
            n_frames=self.n_frames,
            filters=tuple(self.filters),
            kernel_size=(3,) * len(self.filters),
            padding=(1,) * len(self.filters),
            stride=(1,) * len(self.filters),
            pooling=tuple(tuple(p) for p in self.pooling),
            dropout=self.dropout,
            rnn_hidden=self.rnn_hidden,
            rnn_layers=self.rnn_layers,
            init=self.init,
        )


class SEDHead(nn.Module):
    """First layer (Linear + ReLU + dropout), then frame probabilities and attention-pooled clip probabilities."""

    def __init__(self, width: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.dropout = nn.Dropout(dropout)
        self.strong = nn.Linear(hidden, num_classes)
        self.attention = nn.Linear(hidden, num_classes)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (batch, frames, width)
        h = self.dropout(torch.relu(self.fc1(feats)))
        strong = torch.sigmoid(self.strong(h))  # (batch, frames, classes)
        att = torch.clamp(torch.softmax(self.attention(h), dim=-1), min=1e-7, max=1)  # over classes, as 003
        weak = (strong * att).sum(1) / att.sum(1)  # (batch, classes)
        return strong, weak


class DomainHead(nn.Module):
    """Domain logits (real = 1, synthetic = 0) per frame (``time``) or per clip of ``frames`` frames (``whole``)."""

    def __init__(self, width: int, hidden: int, mode: str, frames: int, dropout: float) -> None:
        super().__init__()
        self.mode, self.frames = mode, frames
        self.fc1 = nn.Linear(width, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden if mode == "time" else hidden * frames, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (batch, frames, width)
        h = self.dropout(torch.relu(self.fc1(feats)))  # (batch, frames, hidden)
        if self.mode == "time":
            return self.out(h).squeeze(-1)  # (batch, frames)
        if h.shape[1] != self.frames:
            raise ValueError(f"Adv.whole's domain classifier is sized for {self.frames} frames, got {h.shape[1]}")
        return self.out(h.flatten(1)).squeeze(-1)  # (batch,)


def orthogonality(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Paper 004 eq. (8)'s |(W1/|W1|)^T (W2/|W2|)|: the sum of the absolute entries of the product of the two
    first-layer weight matrices, each scaled to unit Frobenius norm. PyTorch's weights are ``(hidden, in)`` =
    the paper's W^T, so the product is ``W1 @ W2^T`` ``(hidden1, hidden2)``: the inner products between every
    unit of F1 and every unit of F2 (0 when their input weights are orthogonal)."""
    a = w1 / torch.linalg.matrix_norm(w1)
    b = w2 / torch.linalg.matrix_norm(w2)
    return (a @ b.T).abs().sum()


class TriTrainCRNN(nn.Module):
    def __init__(self, cfg: TriTrainCRNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        trunk_cfg = cfg.trunk_config()
        self.trunk = CRNN(trunk_cfg)  # F: forward_features -> (batch, frames_out, 2 * rnn_hidden)
        self.num_features = 2 * cfg.rnn_hidden
        self.frames_out = trunk_cfg.output_frames()
        self.dropout = nn.Dropout(cfg.dropout)  # after the GRU, as 003's CRNN
        self.heads = self._make_heads(cfg.num_classes)
        self.domain = (
            None
            if cfg.domain == "none"
            else DomainHead(self.num_features, cfg.domain_hidden, cfg.domain, self.frames_out, cfg.dropout)
        )
        if self.domain is not None and cfg.init == "reference":
            self.domain.apply(reference_init)
        self.num_classes = cfg.num_classes

    def _make_heads(self, num_classes: int) -> nn.ModuleDict:
        names = (*LABELERS, "ft") if self.cfg.labelers else ("ft",)
        heads = nn.ModuleDict()
        if num_classes > 0:
            for name in names:
                heads[name] = SEDHead(self.num_features, self.cfg.head_hidden, num_classes, self.cfg.dropout)
        if self.cfg.init == "reference":
            heads.apply(reference_init)  # Linear N(0, 0.01), biases 0 (paper 003's reference init)
        return heads

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk.forward_features(x)  # (batch, frames_out, 256)

    def forward_head(
        self, feats: torch.Tensor, pre_logits: bool = False, alpha: float = 1.0, with_domain: bool | None = None
    ):
        h = self.dropout(feats)
        if pre_logits or self.num_classes == 0:
            return h
        out: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None] = {
            name: head(h) for name, head in self.heads.items()
        }
        run_domain = self.training if with_domain is None else with_domain
        # D sees F's features through the GRL (before the heads' dropout, as F's output)
        out["domain"] = self.domain(grad_reverse(feats, alpha)) if run_domain and self.domain is not None else None
        return out

    def forward(self, x: torch.Tensor, alpha: float = 1.0, with_domain: bool | None = None):
        return self.forward_head(self.forward_features(x), alpha=alpha, with_domain=with_domain)

    def labeler_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first-layer weights ``(head_hidden, 256)`` of F1 and F2 (eq. 8)."""
        return self.heads["f1"].fc1.weight, self.heads["f2"].fc1.weight

    def get_classifier(self) -> nn.ModuleDict:
        return self.heads

    def reset_classifier(self, num_classes: int) -> None:
        cfg = replace_config(self.cfg, num_classes=num_classes)
        self.cfg = cfg
        ref = next(self.trunk.parameters())
        self.heads = self._make_heads(num_classes).to(device=ref.device, dtype=ref.dtype)
        self.heads.train(self.training)
        self.num_classes = num_classes


register_model("crnn-tritrain", config=TriTrainCRNNConfig)(TriTrainCRNN)
