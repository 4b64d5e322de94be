"""CRNN sound event detector of paper 003 (Turpault & Serizel 2020, the DCASE 2020 task 4 baseline).

    model = create_model("crnn-dcase2020")                  # 10 DESED classes, 1,112,420 parameters
    strong, weak = model(logmel)                            # (batch, 628, 128) -> (batch, 157, 10), (batch, 10)

Paper 003 §3.2 describes the network; its footnote 3 points to the reference code
(github.com/turpaultn/dcase20_task4, ``baseline/``); where the paper and the code differ, this module follows
the code. "file:line" below are lines of that repository (master, commit e2f61d7): ``models/CRNN.py``,
``models/CNN.py``, ``models/RNN.py``, ``main.py``, ``config.py`` and ``utilities/utils.py``.

Architecture (main.py:237-244 builds ``CRNN(n_in_channel=1, nclass=10, attention=True, n_RNN_cell=128,
n_layers_RNN=2, activation="glu", dropout=0.5, kernel_size=7*[3], padding=7*[1], stride=7*[1],
nb_filters=[16, 32, 64, 128, 128, 128, 128], pooling=[[2, 2], [2, 2], [1, 2], [1, 2], [1, 2], [1, 2], [1, 2]])``):

  - 7 conv blocks (CNN.py:43-67), each
        Conv2d(3x3, stride 1, padding 1) -> BatchNorm2d(eps=1e-3, momentum=0.99) -> GLU -> Dropout(0.5)
        -> AvgPool2d(pooling[i])
    The GLU of the reference (CNN.py:5-16) is not torch's GLU: ``Linear(C, C)(x over channels) * sigmoid(x)``.
    The dropout is the model's 0.5: CRNN.py:22 passes ``dropout`` positionally as the CNN's ``conv_dropout``.
    The pooling is average pooling (CNN.py:67), although §3.2 says "max-pooling"; the code is followed.
    BatchNorm momentum 0.99 is in PyTorch's convention (the new batch statistic's weight), as in CNN.py:49.
  - time pooling 2 * 2 = 4 (main.py:245 ``pooling_time_ratio = 4``), frequency 2**7 = 128 -> 1:
    (batch, 1, 628, 128) -> (batch, 128, 157, 1) -> (batch, 157, 128) (CRNN.py:80-82).
  - a 2-layer bidirectional GRU, 128 units per direction, no inter-layer dropout (RNN.py:12, CRNN.py:13
    default ``dropout_recurrent=0``) -> (batch, 157, 256); then Dropout(0.5) (CRNN.py:36, 86).
  - heads (CRNN.py:37-41, 87-95): strong = sigmoid(Linear(256, 10)) per frame; with attention the clip
    probabilities are ``weak = sum_t(strong * a) / sum_t(a)``, ``a = clamp(softmax_classes(Linear(256, 10)),
    1e-7, 1)`` (the softmax runs over the classes, dim=-1, as CRNN.py:41; the sum over time, CRNN.py:93).
    Without attention (``attention=False``) weak = mean_t(strong) (CRNN.py:95).

Input: normalised log-mel ``(batch, frames, mels)`` as the reference's features (config.py:28-37: 16 kHz,
2048-sample window, hop 255, 128 mels; 10 s -> ceil(160000 / 255) = 628 frames), or ``(batch, 1, frames,
mels)``, the reference's own layout (its ``ToTensor(unsqueeze_axis=0)``, utilities/Transforms.py:170-194 with
main.py:234 ``add_axis_conv = 0``, adds the channel). Any number of frames >= 4 works (frames_out = frames // 4);
the mel axis must pool down to one bin (128 mels with the default pooling), else the GRU input would not be
``filters[-1]`` wide (the reference warns, CRNN.py:76-79, and then fails in the GRU).

Outputs are probabilities (the reference trains them with BCELoss), not logits: ``forward(x) -> (strong,
weak)``, strong ``(batch, frames_out, num_classes)``, weak ``(batch, num_classes)``, both in [0, 1].

The avs model interface (``avs.models.base``), for a sequence model:
  - ``forward_features(x)``: the unpooled per-frame representation, the BGRU output ``(batch, frames_out,
    256)`` (before the post-RNN dropout).
  - ``forward_head(x, pre_logits=False)``: dropout, then the two heads -> ``(strong, weak)``; with
    ``pre_logits=True`` the ``(batch, frames_out, 256)`` features after the dropout (no time pooling: the
    weak head pools with class-dependent attention weights, there is no single pooled embedding).
    ``num_features`` = 256.
  - ``get_classifier()``: an ``nn.ModuleDict`` ``{"dense": strong head, "dense_softmax": attention head}``
    (the attribute ``head``), so ``avs.models.init_from.classifier_prefixes(model)`` = ``("head.",)`` covers
    both class-sized layers. ``reset_classifier(n)`` replaces both with new ``Linear(256, n)`` layers
    (reference init) and keeps the CNN and the GRU; ``n = 0`` leaves no head and ``forward`` returns the
    ``(batch, frames_out, 256)`` features.

Weight init: the reference applies ``utilities/utils.py:40-59 weights_init`` to the model after building it
(main.py:310): Conv2d weights Xavier-uniform with gain sqrt(2), biases 0; BatchNorm weights N(1, 0.02), biases
0; GRU matrices (every parameter with more than one dimension) orthogonal, GRU biases left at PyTorch's
default; every Linear (the GLU's, both heads) weights N(0, 0.01), biases 0. This module does the same
(``reference_init``), also for the heads ``reset_classifier`` builds.

Reference checkpoints: the reference's ``CRNN.state_dict`` (CRNN.py:54-58) saves only ``cnn``, ``rnn`` and
``dense``: the attention layer ``dense_softmax`` is never saved, and a reloaded reference model
(TestModel.py:26-35 ``_load_crnn``) has an untrained, PyTorch-default attention layer.
``state_dict_from_reference`` flattens such a nested state dict into this module's names; load it with
``strict=False`` (or ``init_from``) and the attention head keeps its fresh initialisation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from avs.models.base import register_model, replace_config

__all__ = ["CRNN", "CRNNConfig", "GLU", "reference_init", "state_dict_from_reference"]


@dataclasses.dataclass(frozen=True)
class CRNNConfig:
    # Defaults: paper 003 §3.2 and the reference code (file:line of turpaultn/dcase20_task4 baseline/, e2f61d7).
    in_chans: int = 1  # main.py:233 n_channel = 1 (one log-mel channel)
    num_classes: int = 10  # main.py:238 nclass=len(cfg.classes): the 10 DESED classes (§3.1)
    n_mels: int = 128  # config.py:34 n_mels = 128; §3.2 "128 mel bands"
    # config.py:35 max_frames = ceil(10 s * 16000 / 255) = 628: the clip length the reference trains on
    # (documentation and ``output_frames``; the network accepts any number of frames)
    n_frames: int = 628
    filters: tuple[int, ...] = (16, 32, 64, 128, 128, 128, 128)  # main.py:243 nb_filters; §3.2
    kernel_size: tuple[int, ...] = (3, 3, 3, 3, 3, 3, 3)  # main.py:242 n_layers * [3]; §3.2 "3x3"
    padding: tuple[int, ...] = (1, 1, 1, 1, 1, 1, 1)  # main.py:242 n_layers * [1]
    stride: tuple[int, ...] = (1, 1, 1, 1, 1, 1, 1)  # main.py:242 n_layers * [1]
    # main.py:244 pooling (time, freq) per block, AvgPool2d (CNN.py:67; §3.2 says max-pooling, code followed)
    pooling: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2))
    dropout: float = 0.5  # main.py:241; in every conv block (CRNN.py:22 -> CNN conv_dropout) and after the GRU
    bn_eps: float = 1e-3  # CNN.py:49 BatchNorm2d(nOut, eps=0.001, momentum=0.99)
    bn_momentum: float = 0.99  # CNN.py:49 (PyTorch convention: weight of the new batch statistic)
    rnn_hidden: int = 128  # main.py:238 n_RNN_cell=128; §3.2 "2 layers of 128 bidirectional gated recurrent units"
    rnn_layers: int = 2  # main.py:239 n_layers_RNN=2
    rnn_dropout: float = 0.0  # CRNN.py:13 dropout_recurrent=0 (main.py does not set it); RNN.py:12
    attention: bool = True  # main.py:238 attention=True; §3.2 "attention pooling layer"
    attention_min: float = 1e-7  # CRNN.py:92 torch.clamp(sof, min=1e-7, max=1)
    # main.py:310 crnn.apply(weights_init) ("reference"); "pytorch" keeps PyTorch's default initialisation. On
    # avs's generated DESED-style set the reference's N(0, 0.01) GLU / head weights left the loss flat for 300
    # Adam steps (frame-F1 0), PyTorch's default reached frame-F1 0.65 in 25 (scripts/demo_sed.sh uses it)
    init: Literal["reference", "pytorch"] = "reference"

    def __post_init__(self) -> None:
        n = len(self.filters)
        if n == 0 or any(len(t) != n for t in (self.kernel_size, self.padding, self.stride, self.pooling)):
            raise ValueError("CRNNConfig: filters, kernel_size, padding, stride and pooling need one entry per block")
        if any(len(p) != 2 or min(p) < 1 for p in self.pooling):
            raise ValueError(f"CRNNConfig.pooling: (time, freq) pairs >= 1 expected, got {self.pooling}")
        if min(self.filters) < 1 or min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError("CRNNConfig: filters, kernel sizes and strides must be positive, paddings >= 0")
        if min(self.in_chans, self.n_mels, self.n_frames, self.rnn_hidden, self.rnn_layers) < 1:
            raise ValueError("CRNNConfig: in_chans, n_mels, n_frames, rnn_hidden and rnn_layers must be positive")
        if self.num_classes < 0:
            raise ValueError(f"CRNNConfig.num_classes must be >= 0, got {self.num_classes}")
        for name in ("dropout", "rnn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"CRNNConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.init not in ("reference", "pytorch"):
            raise ValueError(f"CRNNConfig.init must be 'reference' or 'pytorch', got {self.init!r}")
        if not 0.0 < self.attention_min < 1.0:
            raise ValueError(f"CRNNConfig.attention_min must be in (0, 1), got {self.attention_min}")
        if self.cnn_output_size(self.n_frames, self.n_mels)[1] != 1:
            raise ValueError(
                f"CRNNConfig: {self.n_mels} mel bins pool to {self.cnn_output_size(self.n_frames, self.n_mels)[1]}"
                " frequency bins, the GRU needs exactly 1 (CRNN.py:28 sizes its input as filters[-1])"
            )

    def cnn_output_size(self, frames: int, mels: int) -> tuple[int, int]:
        """(frames, freq) after the conv blocks: each conv then floor division by its AvgPool2d."""
        for k, p, s, (pt, pf) in zip(self.kernel_size, self.padding, self.stride, self.pooling, strict=True):
            frames = ((frames + 2 * p - k) // s + 1) // pt
            mels = ((mels + 2 * p - k) // s + 1) // pf
        return frames, mels

    def output_frames(self, frames: int | None = None) -> int:
        """Frames of the strong output for ``frames`` input frames (default ``n_frames``: 628 -> 157)."""
        return self.cnn_output_size(self.n_frames if frames is None else frames, self.n_mels)[0]


class GLU(nn.Module):
    """The reference's gated unit (CNN.py:5-16): ``Linear(C, C)`` over the channel axis times ``sigmoid(x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, C, T, F)
        lin = self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return lin * torch.sigmoid(x)


def _make_cnn(cfg: CRNNConfig) -> nn.Sequential:
    # Module names as the reference's CNN.cnn (CNN.py:46-67), so its state-dict keys carry over unchanged.
    cnn = nn.Sequential()
    for i, n_out in enumerate(cfg.filters):
        n_in = cfg.in_chans if i == 0 else cfg.filters[i - 1]
        cnn.add_module(f"conv{i}", nn.Conv2d(n_in, n_out, cfg.kernel_size[i], cfg.stride[i], cfg.padding[i]))
        cnn.add_module(f"batchnorm{i}", nn.BatchNorm2d(n_out, eps=cfg.bn_eps, momentum=cfg.bn_momentum))
        cnn.add_module(f"glu{i}", GLU(n_out))
        cnn.add_module(f"dropout{i}", nn.Dropout(cfg.dropout))
        cnn.add_module(f"pooling{i}", nn.AvgPool2d(tuple(cfg.pooling[i])))
    return cnn


def _make_head(cfg: CRNNConfig, num_classes: int) -> nn.ModuleDict:
    # CRNN.py:37 dense (strong), CRNN.py:40 dense_softmax (attention); none for 0 classes
    width = 2 * cfg.rnn_hidden
    head = nn.ModuleDict()
    if num_classes > 0:
        head["dense"] = nn.Linear(width, num_classes)
        if cfg.attention:
            head["dense_softmax"] = nn.Linear(width, num_classes)
    return head


@torch.no_grad()
def reference_init(module: nn.Module) -> None:
    """``utilities/utils.py:40-59 weights_init`` for one module; use as ``model.apply(reference_init)``."""
    if isinstance(module, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight, gain=math.sqrt(2))
        module.bias.zero_()
    elif isinstance(module, nn.BatchNorm2d):
        module.weight.normal_(1.0, 0.02)
        module.bias.zero_()
    elif isinstance(module, nn.GRU):
        for weight in module.parameters():
            if weight.ndim > 1:
                nn.init.orthogonal_(weight)
    elif isinstance(module, nn.Linear):
        module.weight.normal_(0.0, 0.01)
        module.bias.zero_()


class CRNN(nn.Module):
    def __init__(self, cfg: CRNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cnn = _make_cnn(cfg)
        self.rnn = nn.GRU(  # RNN.py:12 (BidirectionalGRU), input width filters[-1] (CRNN.py:28)
            cfg.filters[-1],
            cfg.rnn_hidden,
            num_layers=cfg.rnn_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.rnn_dropout,
        )
        self.dropout = nn.Dropout(cfg.dropout)  # CRNN.py:36
        self.head = _make_head(cfg, cfg.num_classes)
        self.num_features = 2 * cfg.rnn_hidden
        self.num_classes = cfg.num_classes
        if cfg.init == "reference":
            self.apply(reference_init)  # main.py:310 crnn.apply(weights_init)

    def _as_image(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3 and self.cfg.in_chans == 1:
            x = x.unsqueeze(1)  # (batch, frames, mels) -> (batch, 1, frames, mels), as Transforms.py ToTensor
        if x.ndim != 4 or x.shape[1] != self.cfg.in_chans:
            want = "(batch, frames, mels) or " if self.cfg.in_chans == 1 else ""
            raise ValueError(f"CRNN: expected {want}(batch, {self.cfg.in_chans}, frames, mels), got {tuple(x.shape)}")
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel -> BGRU output ``(batch, frames_out, 2 * rnn_hidden)`` (CRNN.py:71-85)."""
        x = self.cnn(self._as_image(x))  # (batch, C, frames_out, freq)
        if x.shape[-1] != 1:
            raise ValueError(
                f"CRNN: the conv blocks left {x.shape[-1]} frequency bins, the GRU needs 1 "
                f"(input with {self.cfg.n_mels} mel bins expected)"
            )
        x = x.squeeze(-1).permute(0, 2, 1)  # (batch, frames_out, C), CRNN.py:81-82
        x, _ = self.rnn(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False):
        """Dropout then the heads -> ``(strong, weak)`` probabilities (CRNN.py:86-96); ``pre_logits=True``
        (or no head): the ``(batch, frames_out, num_features)`` features after the dropout."""
        x = self.dropout(x)
        if pre_logits or self.num_classes == 0:
            return x
        strong = torch.sigmoid(self.head["dense"](x))  # (batch, frames_out, num_classes)
        if self.cfg.attention:
            sof = torch.softmax(self.head["dense_softmax"](x), dim=-1)  # over the classes, CRNN.py:41
            sof = torch.clamp(sof, min=self.cfg.attention_min, max=1)
            weak = (strong * sof).sum(1) / sof.sum(1)  # (batch, num_classes)
        else:
            weak = strong.mean(1)
        return strong, weak

    def forward(self, x: torch.Tensor):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.ModuleDict:
        """Both class-sized layers: ``{"dense": strong head, "dense_softmax": attention head}``."""
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """New, randomly initialised (reference init) strong and attention heads with ``num_classes`` outputs
        (0: none, ``forward`` returns the per-frame features); the CNN and the GRU are kept. ``cfg.num_classes``
        follows (``load_model`` rebuilds this shape)."""
        cfg = replace_config(self.cfg, num_classes=num_classes)  # validates num_classes
        ref = self.rnn.weight_ih_l0
        head = _make_head(cfg, num_classes)
        if cfg.init == "reference":
            head.apply(reference_init)
        self.head = head.to(device=ref.device, dtype=ref.dtype)
        self.head.train(self.training)
        self.cfg, self.num_classes = cfg, num_classes


def state_dict_from_reference(state: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """This module's state dict from the reference's nested one ``{"cnn": ..., "rnn": ..., "dense": ...}``
    (CRNN.py:54-58; e.g. ``torch.load(path, weights_only=True)["model"]["state_dict"]`` of a reference
    checkpoint, when it loads safely). The reference never saves ``dense_softmax``: load the result with
    ``strict=False``; the attention head keeps its initialisation."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state["cnn"].items():
        out[f"cnn.{key}"] = value
    for key, value in state["rnn"].items():  # BidirectionalGRU.rnn.* -> nn.GRU directly
        out[f"rnn.{key.removeprefix('rnn.')}"] = value
    for part in ("dense", "dense_softmax"):
        for key, value in state.get(part, {}).items():
            out[f"head.{part}.{key}"] = value
    return out


register_model("crnn-dcase2020", config=CRNNConfig)(CRNN)
