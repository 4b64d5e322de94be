"""``avs train`` and ``avs predict`` (twins: ``jobs/train.py``, ``jobs/predict.py``).

Settings are layered: YAML (--config) < flags (named flags and --set key=value).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

# ------------------------------------------------------------------------------------------------ train


def _task_configs() -> list[tuple[str, type]]:
    from avs.train.task import TASKS, task_names

    task_names()
    return [(name, TASKS.get(name).config) for name in TASKS.names()]


def add_train_args(p: argparse.ArgumentParser) -> None:
    """Flags generated from ``TrainConfig`` (one per field) and from each built-in task's config (its fields go
    into ``task_params``); ``--lr`` is short for ``--set optimizer.lr=...``."""
    from avs.flags import add_config_flags, add_layering_flags
    from avs.train.config import TrainConfig
    from avs.train.presets import TRAIN_PRESETS

    add_config_flags(p, TrainConfig)
    for action in p._actions:  # the preset's names in its help
        if action.dest == "preset":
            action.help = f"training preset (one of: {', '.join(sorted(TRAIN_PRESETS))}); flags go on top"
    p.add_argument("--lr", type=float, default=None, help="short for --set optimizer.lr=LR")
    seen = {f.name for f in dataclasses.fields(TrainConfig)} | {"lr"}
    for name, cls in _task_configs():
        group = p.add_argument_group(f"task {name!r} settings (task_params)")
        fields = [f.name for f in dataclasses.fields(cls)]
        add_config_flags(group, cls, exclude=[f for f in fields if f in seen])
        seen |= set(fields)
    add_layering_flags(p, "train", cls=TrainConfig)


def train_config_from_args(args: argparse.Namespace) -> Any:
    from avs.config import deep_merge, from_dict, load_yaml, parse_set, set_path
    from avs.flags import flag_values
    from avs.train.config import TrainConfig
    from avs.train.presets import train_preset

    tree: dict[str, Any] = load_yaml(args.config) if args.config else {}
    flags = flag_values(args, TrainConfig)
    for key, value in flags.items():
        tree[key] = value
    if args.lr is not None:
        set_path(tree, "optimizer.lr", args.lr)
    seen = {f.name for f in dataclasses.fields(TrainConfig)}
    for _, cls in _task_configs():
        taken = [f.name for f in dataclasses.fields(cls) if f.name in seen]
        for key, value in flag_values(args, cls, exclude=taken).items():
            set_path(tree, f"task_params.{key}", value)
        seen |= {f.name for f in dataclasses.fields(cls)}
    for key, value in parse_set(args.set):
        set_path(tree, key, value)
    if tree.get("preset"):
        tree = deep_merge(train_preset(str(tree["preset"])), tree)
    return from_dict(TrainConfig, tree)


def cmd_train(args: argparse.Namespace) -> int:
    from avs.models import MissingWeightsError
    from avs.train.job import history_table, run_train

    try:
        cfg = train_config_from_args(args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs train: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_train(cfg)
    except (FileNotFoundError, ValueError, KeyError, MissingWeightsError) as exc:
        print(f"avs train: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"avs train: {exc}", file=sys.stderr)
        return 1
    print(history_table(summary["history"]))
    best = summary["best"]
    print(
        json.dumps(
            {
                "task": summary["task"],
                "best_epoch": summary["best_epoch"],
                summary["monitor"]["metric"]: best.get(summary["monitor"]["metric"]),
                **{k: v for k, v in best.items() if k.startswith("val_") and k != summary["monitor"]["metric"]},
                "seconds": summary["seconds"],
                "outputs": summary["outputs"],
            },
            indent=2,
        )
    )
    return 0


# ------------------------------------------------------------------------------------------------ predict


def add_predict_args(p: argparse.ArgumentParser) -> None:
    """Flags generated from ``PredictConfig``; the model is also the optional positional argument."""
    from avs.flags import add_config_flags, add_layering_flags
    from avs.train.predict import PredictConfig

    p.add_argument(
        "model_path",
        nargs="?",
        default=None,
        metavar="MODEL",
        help="trained model: a run folder of `avs train` or a checkpoint file (same as --model); omit with --zeroshot",
    )
    add_config_flags(p, PredictConfig)
    add_layering_flags(p, "predict", cls=PredictConfig)


def predict_config_from_args(args: argparse.Namespace) -> Any:
    from avs.flags import config_from_args
    from avs.train.predict import PredictConfig

    fixed = {"model": args.model_path} if args.model_path else None
    return config_from_args(PredictConfig, args, fixed=fixed)


def cmd_predict(args: argparse.Namespace) -> int:
    from avs.models import UnsafeCheckpointError
    from avs.train.predict import run_predict

    try:
        cfg = predict_config_from_args(args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs predict: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_predict(cfg)
    except (FileNotFoundError, ValueError, KeyError, NotImplementedError, UnsafeCheckpointError) as exc:
        print(f"avs predict: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {k: summary[k] for k in ("split", "rows", "clips", "row_accuracy", "device", "seconds", "outputs")},
            indent=2,
        )
    )
    return 0
