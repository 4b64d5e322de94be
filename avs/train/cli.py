"""``avs train`` and ``avs predict`` (twins: ``jobs/train.py``, ``jobs/predict.py``).

Settings are layered: YAML (--config) < flags (named flags and --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _bool_or_auto(text: str) -> Any:
    low = text.strip().lower()
    if low == "auto":
        return "auto"
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected auto, true or false, got {text!r}")


# ------------------------------------------------------------------------------------------------ train


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "shards",
        help="root folder written by `avs extract` (SHARDS/<feature_set>/part-NNNNN.parquet; "
        "local path or pyarrow filesystem URI)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="run folder: best/model.safetensors, metrics.json, config.yaml and Ray Train's checkpoints in OUT/<name>/",
    )
    p.add_argument("--config", default=None, help="YAML file with train settings (flags override it)")
    p.add_argument(
        "--model",
        default=None,
        help="registered model (default clip-late-fusion; e.g. "
        "logmel-resnest50d, frame-hrnet-w18, timm-cnn with --set model_params.backbone=NAME)",
    )
    p.add_argument(
        "--features",
        type=_csv,
        default=None,
        help="feature sets, comma-separated: one for CNNs "
        "(logmel or frames), the three CLIP sets in branch order for clip-late-fusion "
        "(default clip_rn50x4,clip_rn101,clip_vitb32)",
    )
    p.add_argument(
        "--random-init",
        action="store_true",
        help="model_params.random_init=true: RANDOM initial "
        "weights for timm models (tests / demos without downloaded ImageNet weights)",
    )
    p.add_argument(
        "--family",
        choices=["auto", "logmel", "frame", "clip"],
        default=None,
        help="recipe / input family (default auto: from the model and the shards)",
    )
    p.add_argument(
        "--classes",
        type=_csv,
        default=None,
        help="class names, comma-separated (default: the 10 TAU Urban Scenes 2021 classes)",
    )
    p.add_argument("--train-split", default=None, help="split to train on (default train: TAU fold1 train)")
    p.add_argument("--val-split", default=None, help="split to validate on (default evaluate: TAU fold1 evaluate)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 20, paper 000 sec. 3)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch per worker (default paper 000: 24 log-mel, 20 frames, 48 CLIP)",
    )
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.1, IBN-Net)")
    p.add_argument(
        "--milestones",
        type=lambda s: [int(v) for v in _csv(s)],
        default=None,
        help="epochs where the lr is divided by 10, comma-separated (default 5,10,15)",
    )
    p.add_argument("--no-augment", action="store_true", help="turn the paper-000 augmentations off (default on)")
    p.add_argument(
        "--image-size",
        type=lambda s: [int(v) for v in _csv(s)],
        default=None,
        help="frames: H,W fed to the model (default: the model's input size, else the stored size)",
    )
    p.add_argument("--num-workers", type=int, default=None, help="Ray Train workers, DDP when > 1 (default 1)")
    p.add_argument(
        "--use-gpu",
        type=_bool_or_auto,
        default=None,
        help="auto, true or false (default auto: when the Ray cluster has GPUs)",
    )
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA (default: AMP on CUDA)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--max-train-rows", type=int, default=None, help="smoke runs: first N training rows only")
    p.add_argument("--max-val-rows", type=int, default=None, help="smoke runs: first N validation rows only")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT from its latest checkpoint (default: refuse an OUT that already holds a run)",
    )
    p.add_argument("--name", default=None, help="Ray Train run folder under OUT (default ray)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting, dotted (e.g. model_params.backbone=resnet10t, momentum=0.9, "
        "max_failures=2); repeatable",
    )


def train_config_from_args(args: argparse.Namespace) -> Any:
    from avs.config import from_dict, load_yaml
    from avs.config import parse_set as _parse_set
    from avs.config import set_path as _set_path
    from avs.train.config import TrainConfig

    tree: dict[str, Any] = load_yaml(args.config) if args.config else {}
    tree["shards"] = args.shards
    tree["out"] = args.out
    flags = {
        "model": args.model,
        "features": args.features,
        "family": args.family,
        "classes": args.classes,
        "train_split": args.train_split,
        "val_split": args.val_split,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "milestones": args.milestones,
        "augment": False if args.no_augment else None,
        "image_size": args.image_size,
        "num_workers": args.num_workers,
        "use_gpu": args.use_gpu,
        "amp": False if args.no_amp else None,
        "seed": args.seed,
        "max_train_rows": args.max_train_rows,
        "max_val_rows": args.max_val_rows,
        "resume": True if args.resume else None,
        "name": args.name,
    }
    for key, value in flags.items():
        if value is not None:
            tree[key] = value
    if args.random_init:
        tree.setdefault("model_params", {})["random_init"] = True
    for key, value in _parse_set(args.set):
        _set_path(tree, key, value)
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
                "best_epoch": summary["best_epoch"],
                "val_accuracy": best.get("val_accuracy"),
                "val_log_loss": best.get("val_log_loss"),
                "rows": {k: v["labelled"] for k, v in summary["rows"].items()},
                "seconds": summary["seconds"],
                "outputs": summary["outputs"],
            },
            indent=2,
        )
    )
    return 0


# ------------------------------------------------------------------------------------------------ predict


def add_predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="trained model: a run folder of `avs train` (uses "
        "best/model.safetensors) or a checkpoint file (.safetensors / .pt); omit with --zeroshot",
    )
    p.add_argument("--out", required=True, help="output folder: predictions.parquet, config.yaml, predict.json")
    p.add_argument("--config", default=None, help="YAML file with predict settings (flags override it)")
    p.add_argument(
        "--zeroshot",
        default=None,
        metavar="FEATURE_SET",
        help="instead of a model: write the stored "
        "probabilities of a clip-zeroshot set (e.g. zeroshot_rn101; paper 000 C01-C03)",
    )
    p.add_argument(
        "--shards",
        default=None,
        help="shard root (default: the one the model was trained on; required with --zeroshot)",
    )
    p.add_argument("--split", default=None, help="split to predict, or 'all' (default evaluate)")
    p.add_argument(
        "--classes",
        type=_csv,
        default=None,
        help="--zeroshot: output class order, comma-separated (default: the extractor's classes)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="rows per model call (default 128)")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="model device (default auto: CUDA when the Ray cluster has GPUs)",
    )
    p.add_argument("--concurrency", type=int, default=None, help="model actors (default 1)")
    p.add_argument("--max-rows", type=int, default=None, help="smoke runs: first N rows only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting; repeatable")


def predict_config_from_args(args: argparse.Namespace) -> Any:
    from avs.config import layered, load_yaml
    from avs.train.predict import PredictConfig

    tree: dict[str, Any] = load_yaml(args.config) if args.config else {}
    tree["out"] = args.out
    flags = {
        "model": args.model,
        "zeroshot": args.zeroshot,
        "shards": args.shards,
        "split": args.split,
        "classes": args.classes,
        "batch_size": args.batch_size,
        "device": args.device,
        "concurrency": args.concurrency,
        "max_rows": args.max_rows,
    }
    return layered(PredictConfig, tree, flags, args.set)


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
    except (FileNotFoundError, ValueError, KeyError, UnsafeCheckpointError) as exc:
        print(f"avs predict: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {k: summary[k] for k in ("split", "rows", "clips", "row_accuracy", "device", "seconds", "outputs")},
            indent=2,
        )
    )
    return 0
