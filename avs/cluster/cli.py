"""``avs cluster``: k-means sound clusters of one feature set (the twin of ``jobs/cluster.py``).

Settings are layered: YAML (--config) < flags (named flags and --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "features",
        help="shard folder of one feature set written by `avs extract` "
        "(OUT/<feature_set>/ holding part-NNNNN.parquet; local path or pyarrow filesystem URI)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder: assignments.parquet, centroids.parquet, "
        "transform.npz, gallery.png, clusters.json, config.yaml",
    )
    p.add_argument("--config", default=None, help="YAML file with cluster settings (flags override it)")
    p.add_argument("--column", default=None, help="feature column (default: the features folder's name)")
    p.add_argument("--k", type=int, default=None, help="number of clusters (default 15, as every table of paper 001)")
    p.add_argument("--iterations", type=int, default=None, help="k-means iterations per restart (default 25)")
    p.add_argument(
        "--restarts",
        type=int,
        default=None,
        help="k-means restarts (faiss nredo); the lowest objective is kept (default 5)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="z-score every feature dimension before clustering (default: on)",
    )
    p.add_argument("--pca-dims", type=int, default=None, help="PCA to this many dimensions first (default: no PCA)")
    p.add_argument(
        "--max-points-per-centroid",
        type=int,
        default=None,
        help="train on at most k * this rows, all rows still assigned (default: train on every row)",
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="faiss device (default auto: GPU when CUDA and a faiss GPU build are present)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="faiss CPU threads (default: faiss' default, all CPUs; fewer helps on a busy machine)",
    )
    p.add_argument(
        "--frames",
        default=None,
        help="frames shard folder (OUT/frames/) for the gallery; default: the gallery shows feature tiles",
    )
    p.add_argument(
        "--gallery-per-cluster",
        type=int,
        default=None,
        help="frames shown per cluster in gallery.png, nearest the centre first (default 8; 0: no gallery)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting (e.g. gallery_tile_px=128); repeatable",
    )


def cluster_config_from_args(args: argparse.Namespace) -> Any:
    from avs.cluster.config import ClusterConfig
    from avs.config import layered, load_yaml

    tree: dict[str, Any] = load_yaml(args.config) if args.config else {}
    tree["features"] = args.features
    tree["out"] = args.out
    flags = {
        "column": args.column,
        "k": args.k,
        "iterations": args.iterations,
        "restarts": args.restarts,
        "seed": args.seed,
        "standardize": args.standardize,
        "pca_dims": args.pca_dims,
        "max_points_per_centroid": args.max_points_per_centroid,
        "device": args.device,
        "threads": args.threads,
        "frames": args.frames,
        "gallery_per_cluster": args.gallery_per_cluster,
    }
    return layered(ClusterConfig, tree, flags, args.set)


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
