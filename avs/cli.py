"""The ``avs`` command. Every subcommand has a twin ``jobs/<name>.py`` taking the same arguments, for
``ray job submit -- python jobs/<name>.py ...``.

Settings are layered: preset < YAML (--config) < flags (named flags and --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from avs.config import deep_merge, dump_yaml, layered, load_yaml
from avs.shards.config import with_random_clip_weights


# ----------------------------------------------------------------------------------------------- extract
def add_extract_args(p: argparse.ArgumentParser) -> None:
    from avs.data import DATASETS
    from avs.presets import PRESETS

    p.add_argument(
        "input",
        help="dataset root (TAU / DESED layout), a media folder, or a manifest "
        "(.csv / .tsv / .parquet with a 'path' column)",
    )
    p.add_argument("--out", required=True, help="output folder (local path or pyarrow filesystem URI)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="paper settings to start from (default: none; then --config must give features)",
    )
    p.add_argument("--config", default=None, help="YAML file with extract settings (overrides the preset)")
    p.add_argument("--dataset", choices=DATASETS, default=None, help="input layout (default: auto-detect)")
    p.add_argument("--sample-rate", type=int, default=None, help="audio.sample_rate_hz (preset: e.g. 48000)")
    p.add_argument("--channels", choices=["mono", "stereo"], default=None, help="audio.channels (default mono)")
    p.add_argument("--segment-seconds", type=float, default=None, help="audio.segment_seconds (preset)")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="pipeline.device (default auto: CUDA when the cluster has GPUs)",
    )
    p.add_argument(
        "--decoders", type=int, default=None, help="decode actors (default: a quarter of the CPUs, at least 1)"
    )
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument(
        "--decode-timeout", type=float, default=None, help="seconds per file before the decoder is killed (default 120)"
    )
    p.add_argument(
        "--features",
        default=None,
        metavar="NAMES",
        help="extract only these feature sets of the preset / config, comma-separated (e.g. logmel,clip_vitb32; "
        "default: all)",
    )
    p.add_argument(
        "--rows-per-shard",
        type=int,
        default=None,
        help="most rows per Parquet part (default 100000; a part also ends at pipeline.part_megabytes, 200)",
    )
    p.add_argument(
        "--max-failure-fraction",
        type=float,
        default=None,
        help="exit with status 1 when more than this fraction of clips fail (default 0.1)",
    )
    p.add_argument(
        "--clip-random-weights",
        action="store_true",
        help="CLIP feature sets use RANDOM weights (tests / demos without downloaded weights); recorded in the "
        "shard metadata (default: pretrained weights, with a clear error when they are missing)",
    )
    p.add_argument(
        "--no-retry-errors",
        action="store_true",
        help="on a re-run, skip clips that failed before (default: try them again)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting, dotted (e.g. features.0.params.n_mels=128); repeatable",
    )


def extract_config_from_args(args: argparse.Namespace) -> Any:
    from avs.presets import preset
    from avs.shards.config import ExtractConfig, select_features

    tree: dict[str, Any] = {}
    if args.preset:
        tree = deep_merge(tree, json.loads(json.dumps(preset(args.preset))))
        tree["preset"] = args.preset
    if args.config:
        tree = deep_merge(tree, load_yaml(args.config))
    tree["input"] = args.input
    tree["out"] = args.out
    flags = {
        "dataset": args.dataset,
        "audio.sample_rate_hz": args.sample_rate,
        "audio.channels": args.channels,
        "audio.segment_seconds": args.segment_seconds,
        "pipeline.device": args.device,
        "pipeline.decoders": args.decoders,
        "pipeline.num_cpus": args.num_cpus,
        "pipeline.decode_timeout_s": args.decode_timeout,
        "pipeline.rows_per_shard": args.rows_per_shard,
        "pipeline.max_failure_fraction": args.max_failure_fraction,
        "pipeline.retry_errors": False if args.no_retry_errors else None,
    }
    cfg = select_features(layered(ExtractConfig, tree, flags, args.set), args.features)
    return with_random_clip_weights(cfg) if getattr(args, "clip_random_weights", False) else cfg


def start_ray_while_importing(num_cpus: int | None) -> None:
    """Start (or join) Ray now, importing torch and the extractors in a thread meanwhile: the two take
    ~3 s each on two cores, mostly waiting on different things, so the run starts ~2 s sooner."""
    import threading

    from avs.shards.pipeline import init_ray

    def imports() -> None:
        import ray.data  # noqa: F401

        from avs.features.base import _import_builtin_extractors

        _import_builtin_extractors()  # torch, torchaudio and every extractor module

    thread = threading.Thread(target=imports, name="avs-imports", daemon=True)
    thread.start()
    init_ray(num_cpus)
    thread.join()


def cmd_extract(args: argparse.Namespace) -> int:
    from avs.decode.errors import InfrastructureError
    from avs.features.base import extractor_config
    from avs.ray_start import MissingResources
    from avs.shards.lease import LeaseHeldError
    from avs.shards.pipeline import failure_fraction, run_extract
    from avs.shards.state import ConfigMismatchError
    from avs.shards.storage import Storage

    try:
        cfg = extract_config_from_args(args)
        start_ray_while_importing(cfg.pipeline.num_cpus)
        for f in cfg.features:
            extractor_config(f.extractor, f.params)  # unknown extractor / option: fail before any work
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs extract: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_extract(cfg)
    except (ConfigMismatchError, LeaseHeldError) as exc:
        print(f"avs extract: refused: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"avs extract: {exc}", file=sys.stderr)
        return 2
    except (MissingResources, InfrastructureError) as exc:  # no GPU to place, or the GPU decoder broke (no fallback)
        print(f"avs extract: {exc}", file=sys.stderr)
        return 2
    storage = Storage(cfg.out)
    dump_yaml(cfg, storage.path("config.yaml")) if "://" not in storage.uri else None
    frac = failure_fraction(summary)
    if frac > cfg.pipeline.max_failure_fraction:
        print(
            f"avs extract: {frac:.1%} of clips failed (> max_failure_fraction "
            f"{cfg.pipeline.max_failure_fraction:.1%}); see {storage.path('errors.parquet')}",
            file=sys.stderr,
        )
        return 1
    return 0


# --------------------------------------------------------------------------------------------- demo-data
DEMO_DATASETS = {
    "tau": "OUT/tau, the TAU Audio-Visual Urban Scenes 2021 layout (WAV + MP4)",
    "desed": "OUT/desed, a 12-clip sample of the DESED layout (simple tones / noise bands)",
    "sed": "OUT/sed, a DESED-style sound event detection set that a CRNN learns in minutes on a CPU "
    "(paper 003's demo: generated events, synthetic strong + 'recorded' weak / unlabeled / validation clips)",
    "ladi": "OUT/ladi, a LADI-style multi-label set (paper 002's demo: generated aerial-looking images where "
    "classes co-occur, 3-5 disagreeing annotators each, 5%% outliers, and test shots with their truth)",
    "voc": "OUT/voc/VOC2007, a Pascal VOC 2007 layout (paper 001's transfer task: 150 generated images of 6 VOC "
    "classes, difficult flags, the devkit's ImageSets and Annotations)",
}


def _demo_dataset_names(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in DEMO_DATASETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown demo dataset(s) {unknown or [text]}; choose from {', '.join(DEMO_DATASETS)} (comma-separated)"
        )
    return names


def add_demo_args(p: argparse.ArgumentParser) -> None:
    from avs.data.demo import SED_DEFAULT_CLIPS

    p.add_argument(
        "out", help="folder to write the demo datasets into (OUT/tau, OUT/desed, OUT/sed, OUT/ladi, OUT/voc)"
    )
    p.add_argument(
        "--dataset",
        type=_demo_dataset_names,
        default=("tau", "desed"),
        metavar="NAMES",
        help="which demo datasets to write, comma-separated: "
        + "; ".join(f"{k}: {v}" for k, v in DEMO_DATASETS.items())
        + " (default: tau,desed)",
    )
    p.add_argument("--clips-per-class", type=int, default=2, help="TAU-layout clips per scene class (default 2)")
    p.add_argument("--seconds", type=float, default=10.0, help="TAU-layout clip length in seconds (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    for key, what in (
        ("synthetic", "synthetic strongly labelled soundscapes (train/synthetic20/soundscapes)"),
        ("weak", "weakly labelled 'recorded' clips (train/weak)"),
        ("unlabeled", "unlabeled 'recorded' clips (train/unlabel_in_domain)"),
        ("validation", "strongly labelled 'recorded' validation clips (validation)"),
    ):
        p.add_argument(
            f"--sed-{key}",
            type=int,
            default=SED_DEFAULT_CLIPS[key],
            metavar="N",
            help=f"--dataset sed: number of {what}, 10 s each (default {SED_DEFAULT_CLIPS[key]})",
        )
    p.add_argument("--ladi-images", type=int, default=240, metavar="N", help="--dataset ladi: images (default 240)")
    p.add_argument("--ladi-shots", type=int, default=24, metavar="N", help="--dataset ladi: test shots (default 24)")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from avs.data.demo import write_demo_data

    names = args.dataset if isinstance(args.dataset, tuple) else _demo_dataset_names(args.dataset)
    sed_clips = {k: getattr(args, f"sed_{k}") for k in ("synthetic", "weak", "unlabeled", "validation")}
    info = write_demo_data(
        args.out,
        n_clips_per_class=args.clips_per_class,
        seconds=args.seconds,
        seed=args.seed,
        tau="tau" in names,
        desed="desed" in names,
        sed="sed" in names,
        sed_clips=sed_clips,
        ladi="ladi" in names,
        ladi_images=args.ladi_images,
        ladi_shots=args.ladi_shots,
        voc="voc" in names,
    )
    print(json.dumps(info, indent=2, default=str))
    return 0


# ---------------------------------------------------------------------------------------------- manifest
def add_manifest_args(p: argparse.ArgumentParser) -> None:
    from avs.data import DATASETS

    p.add_argument("input", help="dataset root, media folder or manifest file")
    p.add_argument("--out", required=True, help="manifest file to write (.parquet or .csv)")
    p.add_argument("--dataset", choices=DATASETS, default="auto", help="input layout (default auto-detect)")


def cmd_manifest(args: argparse.Namespace) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from avs.data import load_manifest

    table = load_manifest(args.input, args.dataset)
    if args.out.endswith(".csv"):
        flat = table.drop_columns(["labels", "events"]).append_column(
            "labels", [[";".join(x or []) for x in table.column("labels").to_pylist()]]
        )
        pacsv.write_csv(flat, args.out)
    else:
        pq.write_table(table, args.out)
    print(f"wrote {table.num_rows} clips to {args.out}")
    return 0


def lazy(module: str, name: str) -> Callable:
    """A function imported on first call, so ``avs --help`` stays fast and subcommands stay independent."""

    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "cluster": (
        "k-means sound clusters (faiss) of a feature set: pseudo-labels, centroids, gallery",
        lazy("avs.cluster.cli", "add_cluster_args"),
        lazy("avs.cluster.cli", "cmd_cluster"),
    ),
    "demo-data": (
        "write small synthetic datasets: TAU-AV and DESED layouts, and a learnable SED set (--dataset sed)",
        add_demo_args,
        cmd_demo_data,
    ),
    "ensemble": (
        "paper-000 ensemble of prediction files (A: log-mel, V: frame, C: CLIP families) -> per-clip stage scores",
        lazy("avs.ensemble.cli", "add_ensemble_args"),
        lazy("avs.ensemble.cli", "cmd_ensemble"),
    ),
    "evaluate": (
        "report of prediction / ensemble files: log-loss, accuracy, per class, confusion, side-by-side table",
        lazy("avs.eval.cli", "add_evaluate_args"),
        lazy("avs.eval.cli", "cmd_evaluate"),
    ),
    "extract": ("extract audio features of a dataset into Parquet shards (Ray Data)", add_extract_args, cmd_extract),
    "filters": (
        "paper-001 Fig. 2: the frames that activate chosen conv filters of a trained frame CNN most",
        lazy("avs.train.filters", "add_filters_args"),
        lazy("avs.train.filters", "cmd_filters"),
    ),
    "manifest": ("write the manifest (one row per clip) of a dataset", add_manifest_args, cmd_manifest),
    "predict": (
        "class probabilities of a trained model (or a zero-shot CLIP set) per segment / frame (Ray Data)",
        lazy("avs.train.cli", "add_predict_args"),
        lazy("avs.train.cli", "cmd_predict"),
    ),
    "rank": (
        "top-k clips per class from multi-label scores (paper 002: per-shot max, equal / weighted fusion of systems)",
        lazy("avs.eval.rank", "add_rank_args"),
        lazy("avs.eval.rank", "cmd_rank"),
    ),
    "transfer-report": (
        "paper-001 Tables 1-2 (mAP per start point, per-class AP) or Fig. 3 (mAP against k) of an evaluate folder",
        lazy("avs.eval.transfer", "add_transfer_report_args"),
        lazy("avs.eval.transfer", "cmd_transfer_report"),
    ),
    "serve": (
        "HTTP service (Ray Serve): POST /features and /predict/<run> answer one recording, GET /healthz",
        lazy("avs.serve.cli", "add_serve_args"),
        lazy("avs.serve.cli", "cmd_serve"),
    ),
    "train": (
        "train a model on feature shards with Ray Train (paper-000 recipe; DDP, AMP, checkpoints, resume)",
        lazy("avs.train.cli", "add_train_args"),
        lazy("avs.train.cli", "cmd_train"),
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avs",
        description="audio-visual feature extraction and training on Ray",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command][2](args)


def job_main(command: str, argv: Sequence[str] | None = None) -> int:
    """Entry of ``jobs/<command>.py``: the same arguments as ``avs <command>``."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
