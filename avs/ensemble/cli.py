"""``avs ensemble``: paper 000's ensemble of prediction files (the twin of ``jobs/ensemble.py``).

Settings are layered: YAML (--config) < flags (named flags and --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in _csv(text)]


def add_ensemble_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        help="output folder: A04/V04/C04/E01/E02.parquet (one row per clip), "
        "segments/<stage>.parquet, ensemble.json, config.yaml",
    )
    p.add_argument("--config", default=None, help="YAML file with ensemble settings (flags override it)")
    p.add_argument(
        "--audio",
        nargs="+",
        default=None,
        metavar="PRED",
        help="prediction folders / files of log-mel CNNs (family A: A01-A03 -> A04)",
    )
    p.add_argument(
        "--frame",
        nargs="+",
        default=None,
        metavar="PRED",
        help="prediction folders / files of frame CNNs (family V: V01-V03 -> V04)",
    )
    p.add_argument(
        "--clip",
        nargs="+",
        default=None,
        metavar="PRED",
        help="prediction folders / files of the CLIP Late Fusion Network or zero-shot CLIP (family C: C04)",
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="A=W,V=W,C=W",
        help="family weights in the class-wise ensemble E01 (default A=1,V=1,C=1: equal, paper 000)",
    )
    p.add_argument(
        "--audio-classes",
        "--classes",
        dest="audio_classes",
        type=_csv,
        default=None,
        help="classes where the audio family takes part in E01, comma-separated (default bus,park,tram; "
        "paper 000 sec. 2.4)",
    )
    p.add_argument(
        "--margin", default=None, help="confidence replacement margin, or 'none' (default 0.20; paper 000 sec. 2.4)"
    )
    p.add_argument(
        "--clamp",
        type=_floats,
        default=None,
        metavar="LOW,MID,HIGH",
        help="equation (1) thresholds (default 0.06,0.20,0.70)",
    )
    p.add_argument(
        "--clamp-values",
        type=_floats,
        default=None,
        metavar="LOW,MID,HIGH",
        help="equation (1) values (default 0.001,0.06,0.99)",
    )
    p.add_argument("--no-postprocess", action="store_true", help="no E02 (equation (1)); default: E02 written")
    p.add_argument("--no-renormalize", action="store_true", help="E01 rows not renormalised to sum to 1")
    p.add_argument("--no-segments", action="store_true", help="no 1-s segment-level stages (segments/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting; repeatable")


def _parse_weights(text: str) -> dict[str, float]:
    keys = {
        "a": "weight_audio",
        "audio": "weight_audio",
        "v": "weight_frame",
        "frame": "weight_frame",
        "c": "weight_clip",
        "clip": "weight_clip",
    }
    out: dict[str, float] = {}
    for item in _csv(text):
        if "=" not in item:
            raise ValueError(f"--weights expects A=W,V=W,C=W, got {item!r}")
        k, v = item.split("=", 1)
        if k.strip().lower() not in keys:
            raise ValueError(f"--weights: unknown family {k!r} (A, V or C)")
        out[keys[k.strip().lower()]] = float(v)
    return out


def ensemble_config_from_args(args: argparse.Namespace) -> Any:
    from avs.config import from_dict, load_yaml
    from avs.config import parse_set as _parse_set
    from avs.config import set_path as _set_path
    from avs.ensemble.job import EnsembleJobConfig

    tree: dict[str, Any] = load_yaml(args.config) if args.config else {}
    tree["out"] = args.out
    for key in ("audio", "frame", "clip", "audio_classes"):
        if getattr(args, key) is not None:
            tree[key] = list(getattr(args, key))
    if args.weights:
        tree.update(_parse_weights(args.weights))
    if args.margin is not None:
        tree["margin"] = None if args.margin.strip().lower() in ("none", "off") else float(args.margin)
    if args.clamp is not None:
        if len(args.clamp) != 3:
            raise ValueError("--clamp expects three thresholds LOW,MID,HIGH")
        tree.setdefault("clamp", {}).update(dict(zip(("low", "mid", "high"), args.clamp, strict=True)))
    if args.clamp_values is not None:
        if len(args.clamp_values) != 3:
            raise ValueError("--clamp-values expects three values LOW,MID,HIGH")
        tree.setdefault("clamp", {}).update(
            dict(zip(("low_value", "mid_value", "high_value"), args.clamp_values, strict=True))
        )
    if args.no_postprocess:
        tree["postprocess"] = False
    if args.no_renormalize:
        tree["renormalize"] = False
    if args.no_segments:
        tree["segments"] = False
    for key, value in _parse_set(args.set):
        _set_path(tree, key, value)
    return from_dict(EnsembleJobConfig, tree)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from avs.ensemble.job import run_ensemble

    try:
        cfg = ensemble_config_from_args(args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs ensemble: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_ensemble(cfg)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"avs ensemble: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {k: summary[k] for k in ("members", "clips", "labelled_clips", "stages", "segment_stages")}, indent=2
        )
    )
    return 0
