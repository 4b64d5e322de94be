"""Model registry and the one model interface (timm's model contract).

    model = create_model("logmel-resnest50d", random_init=True)      # name -> frozen config -> nn.Module
    feats = model.forward_features(x)                                 # unpooled: (batch, C, H', W') for CNNs
    emb = model.forward_head(feats, pre_logits=True)                  # pooled: (batch, num_features)
    logits = model.forward_head(feats)                                # (batch, num_classes)
    assert torch.equal(model(x), logits)                              # in eval mode (no dropout draws)
    model.reset_classifier(20)                                        # new random 20-class head, trunk kept

Every registered model is an ``nn.Module`` with

  - ``forward_features(x)``: the representation before pooling. timm CNNs: the backbone's feature map
    ``(batch, C, H', W')`` (timm ``forward_features``, after the input is resized to ``cfg.input_size``).
    Models whose inputs are vectors (the CLIP Late Fusion Network) have no spatial / time axis: there it is
    the ``(batch, dim)`` tensor before their pooling step (see the model's docstring).
  - ``forward_head(x, pre_logits=False)``: pooling (global pooling + pre-logits dropout for CNNs, as timm's
    ``forward_head``) then the classifier -> ``(batch, num_classes)``; with ``pre_logits=True`` the pooled
    ``(batch, num_features)`` embedding.
  - ``forward(x)`` = ``forward_head(forward_features(x))``.
  - ``get_classifier()``: the classifier module; ``reset_classifier(num_classes)``: a new randomly
    initialised classifier with that many outputs (0: none, ``forward`` then returns the pooled embedding),
    everything else kept; ``cfg`` and ``num_classes`` follow (``cfg`` is replaced with
    ``dataclasses.replace``), so a checkpoint saved afterwards rebuilds the new shape (``load_model``).
  - the attributes ``cfg`` (its frozen config), ``model_name`` (its registry name, set by
    ``create_model``), ``num_classes`` and ``num_features`` (the pooled dim),

so fusion heads, ensembles, mean teachers and ``avs.models.init_from`` (partial loading, frozen trunks;
``classifier_prefixes(model)`` names the classifier's weights) work with any of them.

``create_model(name, cfg=None, **overrides)``: ``cfg`` is ``None`` (the entry's defaults), a mapping, or the
entry's config instance; keyword overrides replace single fields (``create_model(n, random_init=True)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from avs.config import from_dict, to_dict
from avs.features.clip_image import MissingWeightsError  # one error type for "weights not on this machine"
from avs.registry import Registry

MODELS = Registry("model")

__all__ = ["MODELS", "MissingWeightsError", "create_model", "model_config", "register_model", "model_names"]


def register_model(name: str, *, config: type) -> Callable:
    """Decorator for a factory ``f(cfg) -> nn.Module``: ``@register_model("clip-late-fusion", config=...)``."""
    return MODELS.register(name, config=config)


def _import_builtin_models() -> None:
    # Importing the modules registers them; lazy so `import avs.models` does not import timm.
    import avs.models.clip_fusion  # noqa: F401
    import avs.models.crnn  # noqa: F401
    import avs.models.crnn_tritrain  # noqa: F401
    import avs.models.timm_cnn  # noqa: F401
    import avs.models.torchvision_cnn  # noqa: F401


def model_names() -> list[str]:
    _import_builtin_models()
    return MODELS.names()


def model_config(name: str, cfg: Any = None, /, **overrides: Any) -> Any:
    """The frozen config ``create_model(name, cfg, **overrides)`` would build (defaults filled in)."""
    _import_builtin_models()
    entry = MODELS.get(name)
    if isinstance(cfg, Mapping) or cfg is None:
        data = {**dict(cfg or {}), **overrides}
        return from_dict(entry.config, data, name) if data else MODELS.make_config(name, None)
    cfg = MODELS.make_config(name, cfg)  # type check: the entry's own config class (or a subclass)
    if overrides:
        cfg = from_dict(type(cfg), {**to_dict(cfg), **overrides}, name)
    return cfg


def create_model(name: str, cfg: Any = None, /, **overrides: Any) -> torch.nn.Module:
    """Build the registered model ``name`` from its config (see the module docstring)."""
    cfg = model_config(name, cfg, **overrides)
    model = MODELS.get(name).factory(cfg)
    model.model_name = name
    return model


def replace_config(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for frozen configs (kept here so callers need not import dataclasses)."""
    return dataclasses.replace(cfg, **changes)
