"""The training job (``avs train``): feature shards -> a trained model, any registered task on one Ray Train loop.

    summary = run_train(cfg)          # cfg: avs.train.config.TrainConfig (avs.train.config.train_config for presets)

On the driver: the task is created from ``cfg.task`` / ``cfg.task_params`` (plugins imported), its
``prepare()`` reads the shards once (named Ray datasets, model shape parameters, classes from the preset or the
data), folds are cut when asked (``fold_clips``), then ``TorchTrainer`` runs ``avs.train.loop.train_loop_per_worker``.

Writes into ``cfg.out``:
  - ``<name>/`` (default ``ray/``): Ray Train's run folder: ``checkpoint_*/`` with ``model.pt`` (the task's
    exported module), ``train_state.pt`` (everything a resume needs) and ``train_state.json`` (history), kept by
    ``CheckpointConfig(num_to_keep, checkpoint_score_attribute=<the task's monitor>)``; Ray keeps the latest
    checkpoint too, which a worker-group restart (``FailureConfig(max_failures)``) or ``resume`` continues from.
  - ``best/model.safetensors``: the exported module of the best epoch by the task's ``best_key`` (paper 000:
    validation accuracy, ties: lower log-loss), with the model's registry name and config, the task, the run's
    inputs and that epoch's metrics in the metadata: ``avs predict`` needs nothing else.
  - ``metrics.json``: per-epoch history, best epoch, row counts, seconds (written last).
  - ``config.yaml``: the final (resolved) config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Any, TextIO

import yaml

import avs
from avs.config import to_dict
from avs.ray_start import init_ray
from avs.shards.storage import Storage
from avs.train.config import TrainConfig

SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"  # Ray Train V2's run state in <out>/<name>/


def state_api_available(timeout_s: float = 5.0) -> bool:
    """Whether Ray's State API (``ray.util.state``, an HTTP API of the dashboard) answers on this cluster."""
    try:
        from ray.util.state import list_nodes

        list_nodes(limit=1, timeout=timeout_s, raise_on_missing_output=False)
    except Exception:  # no dashboard (ServerUnavailable), no ray[default], refused token, ...
        return False
    return True


def trainer_class(state_api: bool):
    """``TorchTrainer``; without a State API, one that leaves out Ray Train V2's ``PlacementGroupCleaner``.

    Every ``TorchTrainer.fit()`` of Ray Train V2 starts a detached ``PlacementGroupCleaner`` actor that asks the
    State API once a second (``ray.util.state.get_actor``) whether the Train controller is still alive, so that
    it can remove the workers' placement group if the controller dies. Without a dashboard each ask fails with
    ``ServerUnavailable`` and the actor logs "Failed to query Ray Train Controller actor state. State API may be
    temporarily unavailable. Continuing to monitor." -- once a second for the whole run, into the terminal
    (``log_to_driver``) -- and it can never see the controller die, so it cleans nothing up. The local Ray and
    a job's placement groups go away with the driver anyway.
    """
    from ray.train.torch import TorchTrainer

    if state_api:
        return TorchTrainer
    try:
        from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
    except ImportError:  # pragma: no cover - Ray versions without the cleaner
        return TorchTrainer

    class TrainerWithoutStateApi(TorchTrainer):
        def _create_default_callbacks(self):
            callbacks = super()._create_default_callbacks()
            return [cb for cb in callbacks if not isinstance(cb, PlacementGroupCleanerCallback)]

    return TrainerWithoutStateApi


def ingest_options(deterministic: bool = False):
    """Ray Data options for the workers' dataset shards: Ray Train's defaults
    (``DataConfig.default_ingest_options``: resource limits, order and verbosity of the current DataContext)
    without ``exclude_resources``, whose deprecated setter those defaults call, printing a RayDeprecationWarning
    from Ray's own code on every run (Ray Train V2 reserves the workers' resources itself)."""
    import ray.data

    opts = ray.data.DataContext.get_current().execution_options
    return ray.data.ExecutionOptions(
        resource_limits=opts.resource_limits,
        preserve_order=True if deterministic else opts.preserve_order,
        verbose_progress=opts.verbose_progress,
    )


def _batch_text(task: Any, cfg: TrainConfig) -> str:
    """Rows per step: the batch size, or each stream's when a task mixes several (``strong 3 + weak 3``)."""
    streams = task.train_streams()
    if len(streams) == 1:
        return str(streams[0].batch_size)
    return " + ".join(f"{s.name} {s.batch_size}" for s in streams)


def _use_gpu(setting: Any) -> bool:
    import ray

    if setting == "auto":
        return float(ray.cluster_resources().get("GPU", 0)) > 0
    return bool(setting)


def fold_clips(cfg: TrainConfig) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """``(train clips, val clips)`` of fold ``cfg.fold`` of ``cfg.folds`` location-disjoint folds of the train
    split (paper 000 Table 3), from the first feature set's ``clip_id``, group and label columns; (None, None)
    without folds. Stratified by the first label where every clip has one and every class has a clip per fold
    (``avs.eval.folds.location_folds``)."""
    if cfg.folds is None:
        return None, None
    import pyarrow.parquet as pq

    from avs.eval.folds import location_folds
    from avs.train.data import feature_info, label_indices

    info = feature_info(cfg.shards, cfg.features[0])
    if cfg.fold_column not in info.columns:
        raise ValueError(f"folds need a {cfg.fold_column!r} column in {info.folder}; columns: {list(info.columns)}")
    split = None if cfg.train_split == "all" else cfg.train_split
    cols = ["clip_id", cfg.fold_column] + [c for c in (cfg.label_column, "split") if c in info.columns]
    storage = Storage(info.folder)
    filters = [("split", "=", split)] if split is not None and "split" in info.columns else None
    table = pq.read_table(storage.path(""), filesystem=storage.fs, columns=cols, filters=filters)
    clip_ids = table.column("clip_id").to_pylist()
    groups = table.column(cfg.fold_column).to_pylist()
    _, labels = label_indices(table, cfg.label_column, ())
    first: dict[str, int] = {}
    for i, c in enumerate(clip_ids):
        first.setdefault(c, i)
    clips = sorted(first)
    idx = [first[c] for c in clips]
    clip_labels = [labels[i] for i in idx]
    per_class = {v: clip_labels.count(v) for v in set(clip_labels)}
    # StratifiedGroupKFold needs every class in at least `folds` clips; else plain location-disjoint folds
    stratify = all(clip_labels) and min(per_class.values()) >= cfg.folds
    folds = location_folds([groups[i] for i in idx], cfg.folds, clip_labels if stratify else None)
    train_idx, val_idx = folds[cfg.fold]
    return tuple(clips[i] for i in train_idx), tuple(clips[i] for i in val_idx)


def run_info(cfg: TrainConfig) -> Any:
    from avs.train.task import RunInfo

    train_clips, val_clips = fold_clips(cfg)
    return RunInfo(
        shards=cfg.shards,
        model=cfg.model,
        model_params=cfg.resolved_model_params,
        features=tuple(cfg.features),
        classes=tuple(cfg.classes) if cfg.classes else None,
        label_column=cfg.label_column,
        label_table=cfg.label_table,
        train_split=None if cfg.train_split == "all" else cfg.train_split,
        val_split=None if cfg.val_split == "all" else cfg.val_split,
        train_clips=train_clips,
        val_clips=val_clips,
        batch_size=cfg.batch_size,
        max_train_rows=cfg.max_train_rows,
        max_val_rows=cfg.max_val_rows,
        seed=cfg.seed,
        plugins=tuple(cfg.plugins),
    )


def _best(result, task) -> tuple[Any, dict[str, Any]]:
    candidates = [(c, m) for c, m in (result.best_checkpoints or []) if c is not None]
    if not candidates and result.checkpoint is not None:
        candidates = [(result.checkpoint, result.metrics or {})]
    if not candidates:
        raise RuntimeError("training reported no checkpoint")
    return max(candidates, key=lambda cm: task.best_key(cm[1]))


def _read_state(checkpoint) -> dict[str, Any]:
    from avs.train.loop import STATE_FILE

    with checkpoint.as_directory() as d, open(os.path.join(d, STATE_FILE)) as fh:
        return json.load(fh)


def run_train(cfg: TrainConfig, stream: TextIO | None = None, fail_once: dict[str, Any] | None = None) -> dict:
    """Train ``cfg.task`` on the shards (see the module docstring); returns the summary (``metrics.json``).

    ``fail_once`` (tests): ``{"epoch": k, "flag": path}`` makes rank 0 raise once at the start of epoch k.
    """
    import ray.data
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig

    from avs.models.checkpoint import load_model, save_checkpoint
    from avs.train.loop import CHECKPOINT_FILE, quiet_ray_logs, train_loop_per_worker
    from avs.train.task import TASKS, task_config

    log = stream or sys.stderr
    if cfg.init_from and "://" not in cfg.init_from and os.path.exists(cfg.init_from):
        # the workers run in another directory: a relative run folder / file would not be found there
        cfg = dataclasses.replace(cfg, init_from=os.path.abspath(cfg.init_from))
    t_start = time.perf_counter()
    out = Storage(cfg.out)
    snapshot = f"{cfg.name}/{SNAPSHOT_FILE}"
    if out.exists(snapshot) and not cfg.resume:
        raise ValueError(
            f"{out.path(cfg.name)} already holds a training run; pass --resume to continue it from its "
            "latest checkpoint, or choose another --out (or --name)"
        )
    tcfg = task_config(cfg.task, cfg.task_params, cfg.plugins)  # unknown task / task settings fail here
    init_ray()
    quiet_ray_logs()
    if cfg.deterministic:
        ray.data.DataContext.get_current().execution_options.preserve_order = True
    out.makedirs()

    t = time.perf_counter()
    run = run_info(cfg)
    task = TASKS.get(cfg.task).factory(tcfg, run)
    prepared = task.prepare()
    missing = [name for name in [s.name for s in task.train_streams()] + ["val"] if name not in prepared.datasets]
    if missing:
        raise ValueError(f"task {cfg.task!r} prepared no dataset for stream(s) {missing}")
    for name, ds in list(prepared.datasets.items()):
        if cfg.cache_rows and prepared.rows.get(name, cfg.cache_rows + 1) <= cfg.cache_rows:
            prepared.datasets[name] = ds.materialize()  # read + decoded once, epochs iterate the blocks
    run = dataclasses.replace(run, spec=prepared.spec, model_params=prepared.model_params)
    classes = tuple(prepared.spec.get("data", {}).get("classes") or run.classes or ())
    cfg = dataclasses.replace(
        cfg, model_params=prepared.model_params, random_init=False, classes=classes or cfg.classes
    )
    task = TASKS.get(cfg.task).factory(tcfg, run)  # as the workers build it (monitor, best_key)
    scan_s = time.perf_counter() - t
    use_gpu = _use_gpu(cfg.use_gpu)
    train_rows = {s.name: prepared.rows.get(s.name, 0) for s in task.train_streams()}
    print(
        f"[avs train] task {cfg.task}, {cfg.model} on {list(cfg.features)}: "
        + ", ".join(f"{n} {name}" for name, n in train_rows.items())
        + f" / {prepared.rows.get('val', 0)} val rows, {cfg.epochs} epochs, batch {_batch_text(task, cfg)} x "
        f"{cfg.num_workers} worker(s), {'GPU' if use_gpu else 'CPU'}; run folder {out.path(cfg.name)}",
        file=log,
        flush=True,
    )

    loop_config: dict[str, Any] = {
        "train": to_dict(cfg),
        "run": to_dict(run),
        "task": to_dict(tcfg),
        "rows": dict(prepared.rows),
    }
    if fail_once:
        loop_config["fail_once"] = dict(fail_once)
    resources = {"CPU": cfg.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = 1
        from avs.ray_start import wait_for_resources

        wait_for_resources(  # Ray Train would wait forever for workers a cluster without GPUs cannot place
            [dict(resources)] * cfg.num_workers,
            cfg.gpu_wait_s,
            f"avs train: {cfg.num_workers} Ray Train worker(s)",
            "Start GPU workers (cluster.yaml) or train on CPU (use_gpu false or auto).",
            wait_hint="Where GPU nodes take longer to start, set gpu_wait_s longer.",
        )
    split = [s.name for s in task.train_streams()] + (["val"] if task.split_validation else [])
    monitor, mode = task.monitor
    trainer = trainer_class(state_api_available())(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            storage_path=out.uri,
            name=cfg.name,
            # Ray Train's own INFO lines (resources requested, worker group started, process group set up) on
            # the controller and the workers: warnings and errors only, beside the workers' epoch lines
            logging_config=LoggingConfig(log_level="WARNING"),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=cfg.num_to_keep, checkpoint_score_attribute=monitor, checkpoint_score_order=mode
            ),
        ),
        datasets=prepared.datasets,
        dataset_config=DataConfig(datasets_to_split=split, execution_options=ingest_options(cfg.deterministic)),
    )
    t = time.perf_counter()
    result = trainer.fit()
    fit_s = time.perf_counter() - t
    if result.error is not None:
        raise RuntimeError(f"training failed: {result.error}") from result.error

    best_ckpt, best_metrics = _best(result, task)
    state = _read_state(result.checkpoint) if result.checkpoint is not None else _read_state(best_ckpt)
    history = state["history"]
    with best_ckpt.as_directory() as d:
        model, meta = load_model(os.path.join(d, CHECKPOINT_FILE))
    extra = dict(meta.get("extra", {}))
    with tempfile.TemporaryDirectory(prefix="avs-best-") as tmp:
        local = os.path.join(tmp, "model.safetensors")
        save_checkpoint(local, model, extra)
        with open(local, "rb") as fh:
            out.makedirs("best")
            out.write_bytes("best/model.safetensors", fh.read())
    out.write_bytes("config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())

    summary = {
        "task": cfg.task,
        "preset": cfg.preset,
        "model": cfg.model,
        "features": list(cfg.features),
        "classes": list(classes),
        "epochs": cfg.epochs,
        "monitor": {"metric": monitor, "mode": mode},
        "best_epoch": int(extra.get("epoch", best_metrics.get("epoch", -1))),
        "best": {k: v for k, v in (extra.get("metrics") or best_metrics).items()},
        "history": history,
        "starts": state.get("starts", []),
        "fold": {"folds": cfg.folds, "fold": cfg.fold, "val_clips": len(run.val_clips)} if cfg.folds else None,
        **prepared.summary,
        "num_workers": cfg.num_workers,
        "use_gpu": use_gpu,
        "seconds": {"scan": round(scan_s, 3), "fit": round(fit_s, 3), "total": round(time.perf_counter() - t_start, 3)},
        "run_folder": out.path(cfg.name),
        "best_checkpoint": best_ckpt.path,
        "outputs": {
            "model": out.path("best/model.safetensors"),
            "metrics": out.path("metrics.json"),
            "config": out.path("config.yaml"),
        },
        "versions": {
            "avs": avs.__version__,
            "ray": __import__("ray").__version__,
            "torch": __import__("torch").__version__,
        },
    }
    out.write_json("metrics.json", summary)
    return summary


def history_table(history: list[dict[str, Any]]) -> str:
    """Per-epoch lines for the terminal."""
    from avs.tables import markdown_table

    metrics = [k for k in (history[0] if history else {}) if k.startswith(("train_", "val_")) and "samples" not in k]
    header = ["epoch", *metrics, "samples_per_s", "epoch_s"]
    return markdown_table(header, [[h.get(k) for k in header] for h in history], digits=4)
