"""``avs evaluate``: report folder of prediction / ensemble files (the twin of ``jobs/evaluate.py``).

Settings are layered: YAML (--config) < flags.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="[NAME=]PATH",
        help="predictions folders / files of `avs predict` (evaluated on their rows and on whole clips), "
        "ensemble folders of `avs ensemble` (every stage: A04, V04, C04, E01, E02), or per-clip score "
        "tables; NAME= names a system in the report (default: the folder / file name)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="report folder: systems.md / .csv (side by side), report.md, "
        "metrics.json, config.yaml, and per system <name>/ and <name>/segments/ with metrics.json, "
        "per_class.csv / .md, confusion.csv / .png",
    )
    p.add_argument("--config", default=None, help="YAML file with evaluate settings (flags override it)")
    p.add_argument("--classes", default=None, help="class names, comma-separated (default: those of the first input)")


def evaluate_config_from_args(args: argparse.Namespace) -> Any:
    from avs.config import from_dict, load_yaml
    from avs.eval.job import EvaluateConfig

    tree: dict[str, Any] = load_yaml(args.config) if args.config else {}
    tree["out"] = args.out
    if args.inputs:
        tree["inputs"] = list(args.inputs)
    tree.setdefault("inputs", [])
    if args.classes:
        tree["classes"] = [c.strip() for c in args.classes.split(",") if c.strip()]
    return from_dict(EvaluateConfig, tree)


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
