"""Small name -> factory registries (timm ``@register_model`` style).

EXTRACTORS = Registry("extractor")

@EXTRACTORS.register("logmel", config=LogMelConfig)
class LogMel(torch.nn.Module): ...

EXTRACTORS.create("logmel", {"n_mels": 128}, sample_rate_hz=16000)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from avs.config import from_dict


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    config: type | None  # frozen dataclass holding the component's settings


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, config: type | None = None) -> Callable:
        def decorate(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, factory, config)
            return factory

        return decorate

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def make_config(self, name: str, cfg: Any = None) -> Any:
        """Turn ``None`` / a mapping / a config instance into the entry's frozen config."""
        entry = self.get(name)
        if entry.config is None:
            return cfg
        if cfg is None:
            return entry.config()
        if isinstance(cfg, entry.config):
            return cfg
        if isinstance(cfg, Mapping):
            return from_dict(entry.config, cfg)
        raise TypeError(f"{self.kind} {name!r} expects {entry.config.__name__} or a mapping, got {type(cfg)}")

    def create(self, name: str, cfg: Any = None, /, **kwargs: Any) -> Any:
        entry = self.get(name)
        if entry.config is None:
            return entry.factory(**kwargs)
        return entry.factory(self.make_config(name, cfg), **kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
