"""timm CNN classifiers: log-mel CNNs and frame CNNs of paper 000 (sec. 2.1, 2.2, Table 2), any timm backbone.

    model = create_model("logmel-resnest50d")                     # ImageNet weights from the local cache
    model = create_model("timm-cnn", backbone="resnet10t", random_init=True, input_size=None)   # tests
    logits = model(x)                                              # x: (batch, 3, H, W) -> (batch, num_classes)
    fmap = model.forward_features(x)                               # (batch, C, H', W'): the unpooled feature map
    emb = model.forward_head(fmap, pre_logits=True)                # (batch, num_features): pooled
    model.reset_classifier(20)                                     # new random 20-class head, trunk kept

Registered names (paper 000, Table 2 / Table 5; the timm weights are the ones timm had in 2021):

    name                           timm backbone                    input (H, W)   paper
    logmel-regnetx-064             regnetx_064.pycls_in1k           (256, 100)     A01 "RegNet-6.4F"
    logmel-resnest50d              resnest50d.in1k                  (256, 100)     A02 "ResNeSt-50d"
    logmel-tf-efficientnet-b1-ns   tf_efficientnet_b1.ns_jft_in1k   (256, 100)     A03 "TF-Efficientnet-B1-NS"
    frame-regnetx-064              regnetx_064.pycls_in1k           (448, 448)     V01 "RegNet-6.4F"
    frame-resnest50d               resnest50d.in1k                  (448, 448)     V02 "ResNeSt-50d"
    frame-hrnet-w18                hrnet_w18.ms_in1k                (448, 448)     V03 "HRNet-W18"
    timm-cnn                       any (``backbone`` is required)   as configured

"RegNet-6.4F" is RegNetX-6.4GF (timm ``regnetx_064``), not RegNetY: Table 5 gives V01 24.60M parameters, and
``regnetx_064`` with a 10-class head has 24.601M (``regnety_064``: 29.30M). The same check holds for V02
(``resnest50d``: 25.455M, paper 25.45M) and V03 (``hrnet_w18``: 19.27M, paper 19.27M); see tests/test_models.py.

Log-mel input (paper 000, sec. 3, "Resized to 256 x 100 x 3"): the 3-channel log-mel + delta + delta-delta
tensor ``(batch, 3, n_mels, frames)`` of a 1-s segment (256 mels x 94 frames at 48 kHz, hop 512) is resized in
``forward_features`` to ``input_size`` = (256 mels, 100 frames) with ``F.interpolate(mode="bilinear",
align_corners=False, antialias=True)`` whenever its last two dims differ. Frame models resize the same way to
(448, 448) (paper sec. 3: "Resized to 448 x 448 x 3"); ``input_size=None`` turns resizing off.

Weights (never downloaded; never silently random):
  1. ``checkpoint``: a local file. An avs checkpoint (``avs.models.checkpoint.save_checkpoint``) is loaded into
     the whole model, strictly; any other file (a timm / ImageNet state dict, ``.safetensors`` or a
     ``torch.load(weights_only=True)``-readable ``.pth/.bin``) initialises the backbone as timm's pretrained
     weights do (classifier replaced when ``num_classes`` differs, stem adapted when ``in_chans`` differs).
  2. else, with ``pretrained=True``, timm's pretrained tag (the tag in ``backbone`` or timm's default tag),
     found in the local caches only: the Hugging Face hub cache (``HF_HUB_CACHE``, default
     ``~/.cache/huggingface/hub``; ``model.safetensors`` then ``pytorch_model.bin`` of the tag's hub repo),
     then torch hub's ``checkpoints/`` folder for the tag's URL file; ``cache_dir`` replaces both.
     Missing -> ``MissingWeightsError`` naming the model, the tag and every place looked in.
  3. random weights only with ``random_init=True`` (tests, smoke runs).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import torch
import torch.nn.functional as F

from avs.models.base import MissingWeightsError, register_model, replace_config

LOGMEL_INPUT_SIZE = (256, 100)  # (mels, frames): paper 000 sec. 3, "Resized to 256 x 100 x 3"
FRAME_INPUT_SIZE = (448, 448)  # (height, width): paper 000 sec. 3, "Resized to 448 x 448 x 3"


@dataclasses.dataclass(frozen=True)
class TimmClassifierConfig:
    backbone: str  # timm model name, optionally with a pretrained tag: "tf_efficientnet_b1.ns_jft_in1k"
    num_classes: int = 10  # TAU Audio-Visual Urban Scenes 2021: 10 scenes (paper 000, sec. 1)
    in_chans: int = 3  # log-mel + delta + delta-delta, or RGB
    pretrained: bool = True  # timm pretrained tag from the local cache (paper 000 sec. 3: ImageNet weights)
    checkpoint: str | None = None  # local weights file; wins over ``pretrained``
    random_init: bool = False  # random weights: only when asked for explicitly
    drop_rate: float = 0.0  # dropout before the classifier (timm ``drop_rate``)
    input_size: tuple[int, int] | None = None  # (H, W) the input is resized to in forward; None = as given
    resize_mode: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    cache_dir: str | None = None  # replaces the HF hub cache and torch hub's checkpoints/ folder

    def __post_init__(self) -> None:
        if not self.backbone:
            raise ValueError("TimmClassifierConfig.backbone must name a timm model")
        if self.random_init and self.checkpoint:
            raise ValueError("TimmClassifierConfig: random_init=True and a checkpoint contradict each other")
        if self.num_classes < 0 or self.in_chans < 1:
            raise ValueError("TimmClassifierConfig: num_classes must be >= 0 and in_chans >= 1")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            raise ValueError(f"TimmClassifierConfig.input_size must be (H, W) > 0, got {self.input_size}")
        if self.resize_mode not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(f"TimmClassifierConfig.resize_mode: unknown mode {self.resize_mode!r}")


# Paper 000 presets: one config class per registered name, so `create_model(name)` needs no arguments.


@dataclasses.dataclass(frozen=True)
class LogmelRegNetX064Config(TimmClassifierConfig):
    backbone: str = "regnetx_064.pycls_in1k"  # A01 "RegNet-6.4F" (= RegNetX-6.4GF, see module docstring)
    input_size: tuple[int, int] | None = LOGMEL_INPUT_SIZE


@dataclasses.dataclass(frozen=True)
class LogmelResNeSt50dConfig(TimmClassifierConfig):
    backbone: str = "resnest50d.in1k"  # A02 "ResNeSt-50d"
    input_size: tuple[int, int] | None = LOGMEL_INPUT_SIZE


@dataclasses.dataclass(frozen=True)
class LogmelTfEfficientNetB1NsConfig(TimmClassifierConfig):
    backbone: str = "tf_efficientnet_b1.ns_jft_in1k"  # A03 "TF-Efficientnet-B1-NS" (Noisy Student)
    input_size: tuple[int, int] | None = LOGMEL_INPUT_SIZE


@dataclasses.dataclass(frozen=True)
class FrameRegNetX064Config(TimmClassifierConfig):
    backbone: str = "regnetx_064.pycls_in1k"  # V01 "RegNet-6.4F", 24.60M parameters (Table 5)
    input_size: tuple[int, int] | None = FRAME_INPUT_SIZE


@dataclasses.dataclass(frozen=True)
class FrameResNeSt50dConfig(TimmClassifierConfig):
    backbone: str = "resnest50d.in1k"  # V02 "ResNeSt-50d", 25.45M parameters (Table 5)
    input_size: tuple[int, int] | None = FRAME_INPUT_SIZE


@dataclasses.dataclass(frozen=True)
class FrameHRNetW18Config(TimmClassifierConfig):
    backbone: str = "hrnet_w18.ms_in1k"  # V03 "HRNet-W18", 19.27M parameters (Table 5); timm's 2021 weights
    input_size: tuple[int, int] | None = FRAME_INPUT_SIZE


PAPER000_TIMM_MODELS: dict[str, type[TimmClassifierConfig]] = {
    "logmel-regnetx-064": LogmelRegNetX064Config,
    "logmel-resnest50d": LogmelResNeSt50dConfig,
    "logmel-tf-efficientnet-b1-ns": LogmelTfEfficientNetB1NsConfig,
    "frame-regnetx-064": FrameRegNetX064Config,
    "frame-resnest50d": FrameResNeSt50dConfig,
    "frame-hrnet-w18": FrameHRNetW18Config,
}


# ------------------------------------------------------------------------------------------------ weights


def _hub_cache_dir(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001
        return os.path.expanduser("~/.cache/huggingface/hub")


def _torch_hub_checkpoints(cache_dir: str | None) -> str:
    return cache_dir or os.path.join(torch.hub.get_dir(), "checkpoints")


def resolve_timm_weights(cfg: TimmClassifierConfig) -> str | None:
    """The local weights file ``cfg`` asks for (``None`` = random init); never downloads.

    Raises ``MissingWeightsError`` naming the model, the tag and every place looked in.
    """
    if cfg.random_init:
        return None
    if cfg.checkpoint:
        from avs.features.clip_image import local_checkpoint

        return local_checkpoint(cfg.checkpoint, f"timm {cfg.backbone!r}")
    if not cfg.pretrained:
        raise MissingWeightsError(
            f"timm {cfg.backbone!r}: no weights given; set pretrained=True (timm's pretrained tag from the local"
            " cache), checkpoint=PATH (a local file), or random_init=True to use random weights on purpose"
        )
    import timm
    from timm.models import get_pretrained_cfg, split_model_name_tag

    arch, tag = split_model_name_tag(cfg.backbone)
    if not timm.is_model(arch):
        raise ValueError(f"timm has no model {arch!r}")
    try:
        pcfg = get_pretrained_cfg(cfg.backbone, allow_unregistered=False)
    except RuntimeError:
        pcfg = None
    if pcfg is None:
        known = timm.list_pretrained(f"{arch}.*")
        raise MissingWeightsError(f"timm {arch!r} has no pretrained tag {tag!r}; known tags: {known}")
    full_name = f"{arch}.{pcfg.tag}" if getattr(pcfg, "tag", None) else arch
    looked: list[str] = []
    if pcfg.hf_hub_id:
        names = [pcfg.hf_hub_filename] if pcfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        hub_dir = _hub_cache_dir(cfg.cache_dir)
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub comes with timm
            try_to_load_from_cache = None
        for name in names:
            looked.append(f"HF hub cache {hub_dir}: {pcfg.hf_hub_id}/{name}")
            if try_to_load_from_cache is not None:
                found = try_to_load_from_cache(pcfg.hf_hub_id, name, cache_dir=hub_dir)
                if isinstance(found, str) and os.path.isfile(found):
                    return found
    if pcfg.url:
        candidate = os.path.join(_torch_hub_checkpoints(cfg.cache_dir), os.path.basename(pcfg.url))
        looked.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    raise MissingWeightsError(
        f"timm {full_name!r}: pretrained weights are not on this machine (nothing is downloaded). Looked in: "
        f"{'; '.join(looked) or '(no location known for this tag)'}. Copy the weights there (timm.create_model("
        f"{full_name!r}, pretrained=True) on a machine with internet fills these caches), or pass checkpoint=PATH;"
        " random weights only with random_init=True."
    )


# ------------------------------------------------------------------------------------------------ model


def _pooled_dim(backbone: torch.nn.Module) -> int:
    """Size of timm's pre-logits vector: ``head_hidden_size`` where the head has its own layers, else the
    feature map's channels (``num_features``)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


class TimmClassifier(torch.nn.Module):
    """A timm backbone + linear classifier with the avs (= timm) model interface.

    ``forward_features(x)``: ``(batch, in_chans, H, W)`` -> resized to ``cfg.input_size`` -> the backbone's
    unpooled feature map ``(batch, C, H', W')``. ``forward_head(fmap)``: global pooling and timm's pre-logits
    dropout -> ``(batch, num_features)`` (returned with ``pre_logits=True``) -> classifier ->
    ``(batch, num_classes)``. ``reset_classifier(n)`` replaces the classifier (timm's ``reset_classifier``).
    """

    def __init__(self, cfg: TimmClassifierConfig) -> None:
        super().__init__()
        import timm

        from avs.models import checkpoint as ckpt

        self.cfg = cfg
        path = resolve_timm_weights(cfg)
        kwargs = {"num_classes": cfg.num_classes, "in_chans": cfg.in_chans, "drop_rate": cfg.drop_rate}
        whole_model_state = None
        if path is not None and ckpt.is_avs_checkpoint(path):
            whole_model_state = path
            path = None
        if path is None:
            self.backbone = timm.create_model(cfg.backbone, pretrained=False, **kwargs)
        else:
            state = ckpt.read_state_dict(path)  # safetensors / torch.load(weights_only=True)
            # timm's own loader does the rest: model-specific key filters, a new classifier when num_classes
            # differs, stem adaptation when in_chans differs.
            self.backbone = timm.create_model(
                cfg.backbone, pretrained=True, pretrained_cfg_overlay={"state_dict": state}, **kwargs
            )
            self.backbone.pretrained_cfg.pop("state_dict", None)  # do not keep a second copy of the weights
        self.num_features = _pooled_dim(self.backbone)
        self.num_classes = cfg.num_classes
        self.weights_source = whole_model_state or path or "random"
        if whole_model_state is not None:
            ckpt.load_checkpoint(whole_model_state, self)

    def resize_input(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, chans, H, W), e.g. (batch, 3, 256 mels, 94 frames) -> (batch, 3, 256, 100)
        size = self.cfg.input_size
        if size is None or tuple(x.shape[-2:]) == tuple(size):
            return x
        if self.cfg.resize_mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode=self.cfg.resize_mode, align_corners=False, antialias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, in_chans, H, W) -> (batch, in_chans, *input_size) -> (batch, C, H', W') feature map
        if x.ndim != 4:
            raise ValueError(f"expected (batch, chans, H, W), got {tuple(x.shape)}")
        return self.backbone.forward_features(self.resize_input(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # x: (batch, C, H', W') -> pool + dropout: (batch, num_features) -> classifier: (batch, num_classes)
        pooled = self.backbone.forward_head(x, pre_logits=True)
        return pooled if pre_logits else self.get_classifier()(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> torch.nn.Module:
        return self.backbone.get_classifier()  # Linear(num_features, num_classes); Identity for 0 classes

    def reset_classifier(self, num_classes: int) -> None:
        """A new, randomly initialised classifier with ``num_classes`` outputs (0: none, ``forward`` returns
        the pooled features); the trunk and the pooling are kept. ``cfg.num_classes`` follows, so a checkpoint
        saved afterwards rebuilds this shape (``load_model``)."""
        cfg = replace_config(self.cfg, num_classes=num_classes)  # validates num_classes
        trunk = next(self.backbone.parameters())
        self.backbone.reset_classifier(num_classes)
        self.get_classifier().to(device=trunk.device, dtype=trunk.dtype).train(self.training)
        self.cfg, self.num_classes = cfg, num_classes
        self.num_features = _pooled_dim(self.backbone)


register_model("timm-cnn", config=TimmClassifierConfig)(TimmClassifier)
for _name, _config in PAPER000_TIMM_MODELS.items():
    register_model(_name, config=_config)(TimmClassifier)
