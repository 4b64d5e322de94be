"""Start a model from another run's weights: partial loading into a new head, optional frozen trunk.

    report = init_from("runs/pretext/checkpoints/best.safetensors", model, drop=("head.",))
    freeze_trunk(model, trainable=("head.",))          # "Head" transfer: only the classifier learns

    model = create_model("timm-cnn", backbone="resnet10t", random_init=True, num_classes=20)
    head = classifier_prefixes(model)                  # ("backbone.fc.",): where the model keeps its classifier
    init_from("runs/pretext/last.pt", model, drop=head)  # a 30-output pretext run -> a 20-class model

``init_from`` copies every tensor whose name and shape match the model, drops the prefixes in ``drop``
(the old classifier: a 15-cluster pretext head cannot fill a 20-class transfer head), and reports what was
loaded, dropped, missing from the file, left over, and skipped for another shape. Nothing is silently
half-loaded: ``require`` names prefixes that must load completely (default: everything not dropped that the
file has), else a ValueError lists what did not. Files load safely (safetensors / weights_only), as every
avs checkpoint does.

The head can also change after loading: ``init_from(path, model)`` with the checkpoint's head size, then
``model.reset_classifier(20)`` (the model interface of ``avs.models.base``) keeps the loaded trunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from avs.models.checkpoint import _strip_prefixes, read_checkpoint, unwrap_model


@dataclasses.dataclass(frozen=True)
class InitReport:
    loaded: tuple[str, ...]
    dropped: tuple[str, ...]  # in the file, left out on purpose (``drop``)
    missing: tuple[str, ...]  # in the model, not in the file (keep their fresh initialisation)
    unexpected: tuple[str, ...]  # in the file, not in the model
    shape_mismatch: tuple[str, ...]  # same name, other shape


def _matches(name: str, prefixes: Sequence[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


def init_from(
    source: str | Path | dict[str, torch.Tensor],
    model: torch.nn.Module,
    drop: Sequence[str] = (),
    require: Sequence[str] | None = None,
) -> InitReport:
    """Load matching tensors of ``source`` (a checkpoint path or a state dict) into ``model``."""
    state = source if isinstance(source, dict) else read_checkpoint(source)[0]
    bare = unwrap_model(model)
    own = bare.state_dict()
    state = _strip_prefixes(dict(state), set(own))
    loaded, dropped, unexpected, mismatch = [], [], [], []
    take = {}
    for name, value in state.items():
        if _matches(name, drop):
            dropped.append(name)
        elif name not in own:
            unexpected.append(name)
        elif tuple(value.shape) != tuple(own[name].shape):
            mismatch.append(name)
        else:
            take[name] = value
            loaded.append(name)
    missing = [n for n in own if n not in take]
    must = [n for n in own if (_matches(n, require) if require is not None else n in state and not _matches(n, drop))]
    not_loaded = [n for n in must if n not in take]
    if not_loaded:
        raise ValueError(
            f"init_from: {len(not_loaded)} tensor(s) could not be loaded: {not_loaded[:8]} "
            f"(shape mismatch: {mismatch[:4]}); pass drop=... for the parts meant to start fresh"
        )
    bare.load_state_dict(take, strict=False)
    return InitReport(tuple(loaded), tuple(dropped), tuple(missing), tuple(unexpected), tuple(mismatch))


def classifier_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    """The state-dict prefixes of ``model.get_classifier()`` (e.g. ``("backbone.fc.",)``, ``("head.",)``), for
    ``init_from(drop=...)`` and ``freeze_trunk(trainable=...)``; DDP / compile wrappers are looked through."""
    bare = unwrap_model(model)
    if not hasattr(bare, "get_classifier"):
        raise TypeError(f"{type(bare).__name__} has no get_classifier(); name the head's prefixes yourself")
    head = bare.get_classifier()
    prefixes = tuple(f"{name}." for name, module in bare.named_modules(remove_duplicate=False) if module is head)
    if not prefixes:
        raise ValueError(f"{type(bare).__name__}.get_classifier() is not a submodule of the model")
    return prefixes


def freeze_trunk(model: torch.nn.Module, trainable: Sequence[str]) -> list[str]:
    """requires_grad=False for every parameter outside the ``trainable`` prefixes; returns the trainable
    names. (Batch-norm statistics still update in train mode; put the trunk in eval mode to keep them.)"""
    names = []
    for name, p in unwrap_model(model).named_parameters():
        keep = _matches(name, trainable)
        p.requires_grad_(keep)
        if keep:
            names.append(name)
    if not names:
        raise ValueError(f"freeze_trunk: no parameter starts with {list(trainable)}: nothing would train")
    return names
