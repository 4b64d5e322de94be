"""torchvision AlexNet and ResNet-18 with the avs model interface: paper 001's frame CNNs (the sound-cluster
pretext task and its Pascal VOC transfer, §3 / Table 1, Fig. 3).

    model = create_model("frame-alexnet", num_classes=15)                  # random weights: the pretext start
    model = create_model("frame-resnet18", weights="imagenet")             # torchvision's ImageNet weights, local
    fmap = model.forward_features(x)      # x (batch, 3, H, W) -> AlexNet conv5 (batch, 256, H', W') / ResNet layer4
    logits = model(x)                     # (batch, num_classes)

    name            torchvision     pooled features    classifier      "Head" of paper 001 (the FC part)
    frame-alexnet   alexnet         4096 (fc7)         fc8: classifier  fc_layers. (fc6, fc7) + classifier.
    frame-resnet18  resnet18        512                fc: classifier   classifier.

Weights (``weights``): ``random`` (the default: paper 001 learns from scratch on sound clusters), ``imagenet``
(torchvision's IMAGENET1K_V1 file, looked up in torch hub's ``checkpoints/`` folder or ``cache_dir``, never
downloaded: ``MissingWeightsError`` names where it looked), or ``checkpoint`` (a local state dict / avs
checkpoint). A pretext run's weights go into a transfer run with ``avs train --init-from RUN --init-drop head``
(the 15-cluster classifier replaced by a 20-class one). The input is resized to ``input_size`` (224 x 224, as
torchvision's ImageNet models; None: as given) in ``forward_features``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import torch
import torch.nn.functional as F

from avs.models.base import MissingWeightsError, register_model, replace_config

ARCHS = ("alexnet", "resnet18")
# conv1 ... conv5 -> the module of ``features`` whose output is that stage's rectified map (paper 001 Fig. 2 looks
# at conv3; Zeiler & Fergus rank images by rectified activations): the ReLU after each of AlexNet's five Conv2d
# layers (torchvision's ReLUs are in place, so a hook on the Conv2d itself would see its output rectified later
# anyway); ResNet-18's stem (conv, bn, relu) and its four stages conv2_x ... conv5_x (He et al. Table 1)
CONV_LAYERS = {
    "alexnet": {"conv1": 1, "conv2": 4, "conv3": 7, "conv4": 9, "conv5": 11},
    "resnet18": {"conv1": 2, "conv2": 4, "conv3": 5, "conv4": 6, "conv5": 7},
}


@dataclasses.dataclass(frozen=True)
class TorchvisionCNNConfig:
    arch: Literal["alexnet", "resnet18"] = "alexnet"
    num_classes: int = 15  # paper 001: k = 15 sound clusters (Tables 1-2)
    weights: Literal["random", "imagenet"] = "random"  # paper 001's pretext start is random
    checkpoint: str | None = None  # a local weights file; wins over ``weights``
    cache_dir: str | None = None  # replaces torch hub's checkpoints/ folder for the ImageNet file
    dropout: float = 0.5  # AlexNet's fc6 / fc7 dropout (torchvision's default)
    input_size: tuple[int, int] | None = (224, 224)  # (H, W) the frame is resized to in forward

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"TorchvisionCNNConfig.arch must be one of {ARCHS}, got {self.arch!r}")
        if self.num_classes < 0 or not 0 <= self.dropout < 1:
            raise ValueError("TorchvisionCNNConfig: num_classes >= 0 and 0 <= dropout < 1")
        if self.weights not in ("random", "imagenet"):
            raise ValueError(f"TorchvisionCNNConfig.weights must be random or imagenet, got {self.weights!r}")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 32):
            raise ValueError(f"TorchvisionCNNConfig.input_size must be (H, W) >= 32, got {self.input_size}")


@dataclasses.dataclass(frozen=True)
class FrameAlexNetConfig(TorchvisionCNNConfig):
    arch: Literal["alexnet", "resnet18"] = "alexnet"


@dataclasses.dataclass(frozen=True)
class FrameResNet18Config(TorchvisionCNNConfig):
    arch: Literal["alexnet", "resnet18"] = "resnet18"


def imagenet_weights_file(arch: str, cache_dir: str | None = None) -> str:
    """The local file of torchvision's IMAGENET1K_V1 weights of ``arch``; never downloads."""
    import torchvision.models as tvm

    enum = {"alexnet": tvm.AlexNet_Weights, "resnet18": tvm.ResNet18_Weights}[arch]
    url = enum.IMAGENET1K_V1.url
    folder = cache_dir or os.path.join(torch.hub.get_dir(), "checkpoints")
    path = os.path.join(folder, os.path.basename(url))
    if not os.path.isfile(path):
        raise MissingWeightsError(
            f"torchvision {arch} ImageNet weights are not on this machine (nothing is downloaded): looked for "
            f"{path}. Copy {url} there (or set cache_dir), pass checkpoint=PATH, or use weights=random."
        )
    return path


class TorchvisionCNN(torch.nn.Module):
    """AlexNet / ResNet-18 as trunk (``features``) + FC layers (AlexNet's fc6-fc7: ``fc_layers``; ResNet: none) +
    ``classifier``."""

    def __init__(self, cfg: TorchvisionCNNConfig) -> None:
        super().__init__()
        import torchvision.models as tvm

        from avs.models import checkpoint as ckpt

        self.cfg = cfg
        if cfg.arch == "alexnet":
            net = tvm.alexnet(weights=None, dropout=cfg.dropout)
            self.features = net.features  # conv1-conv5 + pools: (batch, 256, H', W')
            self.pool = net.avgpool  # adaptive (6, 6)
            self.fc_layers = torch.nn.Sequential(*list(net.classifier.children())[:-1])  # dropout fc6 relu ... fc7 relu
            self.num_features = 4096
            self._tv_head = "classifier.6."  # torchvision's fc8
        else:
            net = tvm.resnet18(weights=None)
            self.features = torch.nn.Sequential(
                net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
            )
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc_layers = torch.nn.Identity()
            self.num_features = 512
            self._tv_head = "fc."
        self.classifier = torch.nn.Linear(self.num_features, cfg.num_classes) if cfg.num_classes else None
        self.num_classes = cfg.num_classes
        self.weights_source = "random"
        path = None
        if cfg.checkpoint:
            from avs.features.clip_image import local_checkpoint

            path = local_checkpoint(cfg.checkpoint, f"torchvision {cfg.arch}")
        elif cfg.weights == "imagenet":
            path = imagenet_weights_file(cfg.arch, cfg.cache_dir)
        if path is not None:
            if ckpt.is_avs_checkpoint(path):
                ckpt.load_checkpoint(path, self)
            else:
                self._load_torchvision(ckpt.read_state_dict(path))
            self.weights_source = path

    def _load_torchvision(self, state: dict[str, torch.Tensor]) -> None:
        """A torchvision state dict -> this layout (the 1000-class ImageNet classifier is not loaded)."""
        mine = {}
        for key, value in state.items():
            if key.startswith(self._tv_head):
                continue
            if self.cfg.arch == "alexnet":
                if key.startswith("classifier."):
                    key = "fc_layers." + key[len("classifier.") :]
            else:
                parts = key.split(".", 1)
                order = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
                if parts[0] in order:
                    key = f"features.{order.index(parts[0])}.{parts[1]}"
            mine[key] = value
        missing, unexpected = self.load_state_dict(mine, strict=False)
        bad = [k for k in missing if not k.startswith("classifier.")]
        if bad or unexpected:
            raise ValueError(
                f"torchvision {self.cfg.arch} weights do not fit: missing {bad[:3]}, unexpected {unexpected[:3]}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, 3, H, W) -> resized to input_size -> (batch, C, H', W')
        size = self.cfg.input_size
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        return self.features(x)

    def forward_head(self, fmap: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        emb = self.fc_layers(torch.flatten(self.pool(fmap), 1))  # (batch, num_features)
        if pre_logits or self.classifier is None:
            return emb
        return self.classifier(emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> torch.nn.Module:
        return self.classifier if self.classifier is not None else torch.nn.Identity()

    def conv_layer(self, name: str) -> torch.nn.Module:
        """``conv1`` ... ``conv5``: the module whose output is that stage's feature map ``(batch, C, h, w)``."""
        table = CONV_LAYERS[self.cfg.arch]
        if name not in table:
            raise ValueError(f"{self.cfg.arch} has conv layers {sorted(table)}, not {name!r}")
        return self.features[table[name]]

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = torch.nn.Linear(self.num_features, num_classes) if num_classes else None
        self.num_classes = num_classes
        self.cfg = replace_config(self.cfg, num_classes=num_classes)


@register_model("frame-alexnet", config=FrameAlexNetConfig)
def _alexnet(cfg: TorchvisionCNNConfig) -> TorchvisionCNN:
    return TorchvisionCNN(cfg)


@register_model("frame-resnet18", config=FrameResNet18Config)
def _resnet18(cfg: TorchvisionCNNConfig) -> TorchvisionCNN:
    return TorchvisionCNN(cfg)
