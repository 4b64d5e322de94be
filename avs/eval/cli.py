"""``avs evaluate``: report folder of prediction / ensemble files (the twin of ``jobs/evaluate.py``).

Settings are layered: YAML (--config) < flags (one per field of ``EvaluateConfig``) < --set key=value.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_evaluate_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``avs evaluate``: one per field of ``EvaluateConfig`` (avs.flags), --config, --set."""
    from avs.eval.job import EvaluateConfig
    from avs.flags import add_config_flags, add_layering_flags

    add_config_flags(p, EvaluateConfig)
    add_layering_flags(p, "evaluate", cls=EvaluateConfig)


def evaluate_config_from_args(args: argparse.Namespace) -> Any:
    from avs.eval.job import EvaluateConfig
    from avs.flags import config_from_args

    return config_from_args(EvaluateConfig, args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from avs.eval.job import run_evaluate

    try:
        cfg = evaluate_config_from_args(args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs evaluate: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        run_evaluate(cfg)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"avs evaluate: {exc}", file=sys.stderr)
        return 2
    with open(f"{cfg.out}/systems.md") as fh:
        print(fh.read(), end="")
    return 0
