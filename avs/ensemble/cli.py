"""``avs ensemble``: paper 000's ensemble of prediction files (the twin of ``jobs/ensemble.py``).

Settings are layered: YAML (--config) < flags (one per field of ``EnsembleJobConfig``, and the shorthands
--weights, --clamp, --clamp-values) < --set key=value.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

CLAMP_KEYS = {"clamp": ("low", "mid", "high"), "clamp_values": ("low_value", "mid_value", "high_value")}
WEIGHT_KEYS = {"a": "weight_audio", "v": "weight_frame", "c": "weight_clip"}
WEIGHT_KEYS.update({"audio": "weight_audio", "frame": "weight_frame", "clip": "weight_clip"})


def add_ensemble_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``avs ensemble``: one per field of ``EnsembleJobConfig`` (avs.flags), three shorthands for
    several fields at once (--weights, --clamp, --clamp-values), --config, --set."""
    from avs.ensemble.job import EnsembleJobConfig
    from avs.flags import add_config_flags, add_layering_flags, converter_for

    add_config_flags(p, EnsembleJobConfig)
    p.add_argument(
        "--weights",
        type=_parse_weights,
        default=None,
        metavar="A=W,V=W,C=W",
        help="family weights in the class-wise ensemble E01, shorthand for --weight-audio / --weight-frame / "
        "--weight-clip (default A=1,V=1,C=1: equal, paper 000)",
    )
    clamp = EnsembleJobConfig.__dataclass_fields__["clamp"].default
    for flag, what in (("clamp", "thresholds"), ("clamp_values", "values")):
        keys = CLAMP_KEYS[flag]
        p.add_argument(
            "--" + flag.replace("_", "-"),
            type=converter_for(tuple[float, float, float]),
            default=None,
            metavar="LOW,MID,HIGH",
            help=f"equation (1) {what}, shorthand for --set clamp.{keys[0]}=... (default: "
            + ",".join(str(getattr(clamp, k)) for k in keys)
            + ")",
        )
    add_layering_flags(p, "ensemble", cls=EnsembleJobConfig)


def _parse_weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"--weights expects A=W,V=W,C=W, got {item!r}")
        k, v = item.split("=", 1)
        if k.strip().lower() not in WEIGHT_KEYS:
            raise argparse.ArgumentTypeError(f"--weights: unknown family {k!r} (A, V or C)")
        try:
            out[WEIGHT_KEYS[k.strip().lower()]] = float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--weights: {v!r} is not a number") from None
    return out


def ensemble_config_from_args(args: argparse.Namespace) -> Any:
    from avs.ensemble.job import EnsembleJobConfig
    from avs.flags import config_from_args

    extra: dict[str, Any] = dict(getattr(args, "weights", None) or {})
    for flag, keys in CLAMP_KEYS.items():
        values = getattr(args, flag, None)
        if values is not None:
            extra.update({f"clamp.{k}": v for k, v in zip(keys, values, strict=True)})
    return config_from_args(EnsembleJobConfig, args, extra_flags=extra)


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
