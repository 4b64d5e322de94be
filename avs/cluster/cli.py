"""``avs cluster``: k-means sound clusters of one feature set (the twin of ``jobs/cluster.py``).

Settings are layered: YAML (--config) < flags (one per field of ``ClusterConfig``) < --set key=value.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``avs cluster``: one per field of ``ClusterConfig`` (avs.flags), --config, --set."""
    from avs.cluster.config import ClusterConfig
    from avs.flags import add_config_flags, add_layering_flags

    add_config_flags(p, ClusterConfig)
    add_layering_flags(p, "cluster", cls=ClusterConfig)


def cluster_config_from_args(args: argparse.Namespace) -> Any:
    from avs.cluster.config import ClusterConfig
    from avs.flags import config_from_args

    return config_from_args(ClusterConfig, args)


def cmd_cluster(args: argparse.Namespace) -> int:
    from avs.cluster.job import run_cluster

    try:
        cfg = cluster_config_from_args(args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs cluster: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_cluster(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"avs cluster: {exc}", file=sys.stderr)
        return 2
    brief = {
        k: summary[k]
        for k in ("n_rows", "dims", "cluster_dims", "k", "objective", "sizes", "device", "seconds", "outputs")
    }
    print(json.dumps(brief, indent=2))
    return 0
