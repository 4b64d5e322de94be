"""Frozen-dataclass configs: build from nested dicts / YAML, dump back, hash.

YAML lives only at the job boundary; inside avs every component takes its own frozen dataclass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert a plain YAML/JSON value to the annotated type ``tp`` (dataclasses, tuples, optionals)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for arg in args:
            try:
                return _convert(arg, value, where)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{where}: cannot read {value!r} as {tp}")
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (dict, Mapping) or tp in (dict, Any):
        return value
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise TypeError(f"{where}: expected int, got {value!r}")
    if tp in (int, str, bool) and not isinstance(value, tp):
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a nested mapping; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{where or cls.__name__}: unknown option(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {k: _convert(hints[k], v, f"{where or cls.__name__}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """Plain nested dict / list form of a config (tuples become lists), ready for YAML / JSON."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config's content (sorted-key JSON)."""
    text = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge, everything else in ``override`` replaces ``base``."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping at top level")
    return data


def dump_yaml(cfg: Any, path: str | Path) -> None:
    import yaml

    with open(path, "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """``tree["a"]["b"][0]["c"] = value`` for ``dotted = "a.b.0.c"`` (missing levels are created)."""
    keys = dotted.split(".")
    node: Any = tree
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            node = node[int(key)]
            continue
        if key not in node or node[key] is None:
            node[key] = [] if keys[i + 1].isdigit() else {}
        node = node[key]
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value


def parse_set(items: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """``--set key=value`` pairs; values are read as YAML (numbers, lists, booleans, null)."""
    import yaml

    out = []
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        out.append((key.strip(), yaml.safe_load(raw)))
    return out


def layered(
    cls: type[T],
    tree: dict[str, Any],
    flags: Mapping[str, Any],
    sets: list[str] | tuple[str, ...],
    *,
    keep_none: bool = False,
) -> T:
    """The job-boundary rule for every command: ``tree`` (preset merged with YAML) < flags (dotted keys,
    None = not given) < ``--set key=value``; then the frozen config ``cls``. With ``keep_none`` the flags hold
    only what was given and a None value sets None (``avs.flags``: ``--pca-dims none``)."""
    for key, value in flags.items():
        if value is not None or keep_none:
            set_path(tree, key, value)
    for key, value in parse_set(sets):
        set_path(tree, key, value)
    return from_dict(cls, tree)
