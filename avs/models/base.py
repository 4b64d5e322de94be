"""Model registry and the one model interface (timm style).

    model = create_model("logmel-resnest50d", random_init=True)      # name -> frozen config -> nn.Module
    feats = model.forward_features(x)                                 # (batch, dim) pooled features
    logits = model.forward_head(feats)                                # (batch, num_classes)
    assert torch.allclose(model(x), logits)

Every registered model is an ``nn.Module`` with ``forward_features`` (returns a pooled ``(batch, dim)``
tensor), ``forward_head`` (features -> logits), ``forward`` (= head(features)), and the attributes ``cfg`` (its
frozen config), ``model_name`` (its registry name, set by ``create_model``) and ``num_features`` (``dim``),
so fusion heads, ensembles and mean teachers work with any of them.

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
    import avs.models.timm_cnn  # noqa: F401


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
