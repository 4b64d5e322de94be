"""Model checkpoints that load safely: tensors + JSON metadata, never arbitrary pickled objects.

    save_checkpoint("best.safetensors", model, {"epoch": 4, "val_accuracy": 0.91})
    meta = load_checkpoint("best.safetensors", model)            # -> {"format": ..., "extra": {...}, ...}
    model, meta = load_model("best.safetensors")                  # rebuilds the registered model, then loads

Two file formats, chosen by the file name:
  - ``*.safetensors``: the state dict through safetensors; the metadata is JSON in the header (key "avs").
    Weights only (no optimizer state).
  - anything else (``*.pt``): ``torch.save`` of a plain dict ``{"format", "meta_json", "state_dict"[,
    "optimizer", "scheduler"]}`` holding only tensors, numbers, strings, lists and dicts, so that
    ``torch.load(weights_only=True)`` reads it. A file that needs anything else to unpickle (a custom class, a
    whole pickled module) is refused with ``UnsafeCheckpointError``: avs never unpickles arbitrary objects.

The metadata records the registry name and the config of the model (``model.model_name``, ``model.cfg``),
the caller's ``extra`` (must be JSON-serialisable) and versions. Files are written to a temporary name and
renamed. DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers are unwrapped on save; their key
prefixes are stripped on load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from avs.config import to_dict

FORMAT = "avs-checkpoint"
VERSION = 1


class UnsafeCheckpointError(ValueError):
    """The file needs arbitrary Python objects to unpickle; avs refuses to load it."""


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DDP / DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    while True:
        if hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod
        elif isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        else:
            return model


def _is_safetensors(path: str | Path) -> bool:
    return str(path).endswith(".safetensors")


def _metadata(model: torch.nn.Module, extra: dict[str, Any] | None) -> dict[str, Any]:
    import avs

    cfg = getattr(model, "cfg", None)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": getattr(model, "model_name", None),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": to_dict(cfg) if dataclasses.is_dataclass(cfg) else None,
        "extra": extra or {},
        "torch_version": torch.__version__,
        "avs_version": avs.__version__,
    }
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable (numbers, strings, lists, dicts): {e}") from e
    return meta


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    extra: dict[str, Any] | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
) -> Path:
    """Write ``model``'s state dict and JSON metadata to ``path`` (see the module docstring); returns the path.

    ``optimizer`` / ``scheduler`` state (for resuming) only in the torch format (not ``.safetensors``).
    """
    path = Path(path)
    bare = unwrap_model(model)
    meta = _metadata(bare, extra)
    state = {k: v.detach().to("cpu").clone().contiguous() for k, v in bare.state_dict().items()}
    if _is_safetensors(path):
        if optimizer is not None or scheduler is not None:
            raise ValueError("optimizer / scheduler state cannot go into .safetensors; use a .pt checkpoint")
        from safetensors.torch import save_file

        _atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"avs": json.dumps(meta)}))
    else:
        payload: dict[str, Any] = {"format": FORMAT, "meta_json": json.dumps(meta), "state_dict": state}
        if optimizer is not None:
            payload["optimizer"] = optimizer.state_dict()
        if scheduler is not None:
            payload["scheduler"] = scheduler.state_dict()
        _atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def _safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        detail = next(
            (line for line in first if "Unsupported global" in line or "GLOBAL" in line), first[0] if first else ""
        )
        raise UnsafeCheckpointError(
            f"{path}: refusing to load: the file holds pickled Python objects other than tensors and plain "
            f"containers ({detail.strip()}). avs loads checkpoints with torch.load(weights_only=True) only and "
            "never unpickles arbitrary objects; re-save the weights as a state dict of tensors (or .safetensors)."
        ) from e


def read_checkpoint(
    path: str | Path, map_location: Any = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """``(state_dict, metadata, training_state)`` of any safe weights file.

    An avs checkpoint gives its metadata (``{}`` otherwise) and, for the torch format, ``training_state``
    with the saved "optimizer" / "scheduler" state dicts. A plain state dict (timm / ImageNet weights, a dict
    with "state_dict" or "model" inside) loads too.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if _is_safetensors(path):
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, framework="pt") as fh:
            header = fh.metadata() or {}
        meta = json.loads(header["avs"]) if "avs" in header else {}
        device = map_location if isinstance(map_location, str) else "cpu"
        return load_file(path, device=device), meta, {}
    obj = _safe_torch_load(path, map_location)
    meta: dict[str, Any] = {}
    training: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        meta = json.loads(obj["meta_json"])
        training = {k: obj[k] for k in ("optimizer", "scheduler") if k in obj}
        state = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        state = obj["model"]
    else:
        state = obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return dict(state), meta, training


def read_state_dict(path: str | Path, map_location: Any = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a weights file, loaded safely (safetensors or ``torch.load(weights_only=True)``)."""
    return read_checkpoint(path, map_location)[0]


def is_avs_checkpoint(path: str | Path) -> bool:
    """True for files written by ``save_checkpoint`` (reads only the safetensors header / the small dict)."""
    path = str(path)
    if _is_safetensors(path):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as fh:
            return "avs" in (fh.metadata() or {})
    try:
        obj = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a torch zip file, or unsafe: not ours either way
        return False
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _strip_prefixes(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    strict: bool = True,
    map_location: Any = "cpu",
) -> dict[str, Any]:
    """Load ``path`` into ``model`` (and optimizer / scheduler when given and saved); returns the metadata.

    Uses safetensors or ``torch.load(weights_only=True)``; a file with pickled objects beyond tensors and
    plain containers raises ``UnsafeCheckpointError``.
    """
    state, meta, training = read_checkpoint(path, map_location)
    bare = unwrap_model(model)
    state = _strip_prefixes(state, set(bare.state_dict()))
    result = bare.load_state_dict(state, strict=strict)
    if optimizer is not None:
        if "optimizer" not in training:
            raise ValueError(f"{path}: has no optimizer state")
        optimizer.load_state_dict(training["optimizer"])
    if scheduler is not None:
        if "scheduler" not in training:
            raise ValueError(f"{path}: has no scheduler state")
        scheduler.load_state_dict(training["scheduler"])
    meta = dict(meta)
    if not strict:
        meta["missing_keys"] = list(result.missing_keys)
        meta["unexpected_keys"] = list(result.unexpected_keys)
    return meta


def load_model(path: str | Path, map_location: Any = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the registered model an avs checkpoint was saved from, load its weights; ``(model, meta)``.

    The model is built structure-only (``random_init=True``, no checkpoint / pretrained lookup) and then
    every tensor is loaded strictly from the file.
    """
    from avs.models.base import MODELS, model_config

    _, meta, _ = read_checkpoint(path, map_location)
    name = meta.get("model_name")
    if not name:
        raise ValueError(
            f"{path}: not an avs checkpoint with a registered model name; build the model and use load_checkpoint"
        )
    cfg = model_config(name, meta.get("config") or {})
    build_cfg = cfg
    fields = {f.name for f in dataclasses.fields(cfg)}
    if "random_init" in fields:  # structure only: the weights come from this file
        changes: dict[str, Any] = {"random_init": True}
        if "checkpoint" in fields:
            changes["checkpoint"] = None
        build_cfg = dataclasses.replace(cfg, **changes)
    model = MODELS.get(name).factory(build_cfg)
    model.cfg = cfg  # the config it was trained with
    model.model_name = name
    load_checkpoint(path, model, map_location=map_location)
    return model, meta
