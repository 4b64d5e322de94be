"""The training job (``avs train``): feature shards -> a trained model, with Ray Train's ``TorchTrainer``.

    summary = run_train(cfg)

Writes into ``cfg.out``:
  - ``<name>/`` (default ``ray/``): Ray Train's run folder: ``checkpoint_*/model.pt`` (+ ``train_state.json``),
    kept by ``CheckpointConfig(num_to_keep, checkpoint_score_attribute="val_accuracy", "max")``; Ray keeps
    the latest checkpoint too, which a worker-group restart (``FailureConfig(max_failures)``) or ``resume``
    continues from.
  - ``best/model.safetensors``: the weights of the epoch with the best validation accuracy (paper 000 sec. 3:
    "we used best epoch models in the validation accuracy"; ties: lower val log-loss), with the model's
    registry name and config, the input spec (feature sets, classes, log-mel standardisation statistics)
    and that epoch's metrics in the metadata: ``avs predict`` needs nothing else.
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
from avs.shards.storage import Storage
from avs.train.config import FAMILIES, TrainConfig
from avs.train.data import DataSpec, channel_stats, feature_info, label_counts, split_dataset

SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"  # Ray Train V2's run state in <out>/<name>/


# Set for the embedded local Ray that ``init_ray`` starts, before it starts (its processes inherit them), unless
# the user set them: one machine is never drained by an autoscaler, so Ray Train's PreemptionWatcher actor (one
# more process per run, and a core_worker error line about its restartable constructor arguments) has nothing to
# watch; Ray Data's INFO lines in its actors ("Dataset train_... execution finished in 7.60 seconds" per epoch
# and split) are left out of the terminal like the driver's (``avs.train.worker.quiet_ray_logs``).
EMBEDDED_RAY_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_DATA_LOG_LEVEL": "WARNING"}


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster of ``ray job submit`` (RAY_ADDRESS) or start an embedded local Ray that shows
    the workers' progress lines.

    The embedded Ray has no dashboard (``include_dashboard=False``; avs does not install ``ray[default]``), so
    Ray's State API, which the dashboard serves, is not there: ``run_train`` leaves out the one Ray Train part
    that needs it (see ``state_api_available``)."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
    else:
        for key, value in EMBEDDED_RAY_ENV.items():
            os.environ.setdefault(key, value)
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True, configure_logging=False)


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


def ingest_options():
    """Ray Data options for the workers' dataset shards: Ray Train's defaults
    (``DataConfig.default_ingest_options``: resource limits, order and verbosity of the current DataContext)
    without ``exclude_resources``, whose deprecated setter those defaults call, printing a RayDeprecationWarning
    from Ray's own code on every run (Ray Train V2 reserves the workers' resources itself)."""
    import ray.data

    opts = ray.data.DataContext.get_current().execution_options
    return ray.data.ExecutionOptions(
        resource_limits=opts.resource_limits,
        preserve_order=opts.preserve_order,
        verbose_progress=opts.verbose_progress,
    )


def _guess_family(cfg: TrainConfig, infos: list) -> str:
    if cfg.family != "auto":
        return cfg.family
    if cfg.model == "clip-late-fusion" or len(infos) > 1:
        return "clip"
    if infos[0].kind == "image" or cfg.model.startswith("frame-"):
        return "frame"
    if cfg.model.startswith("logmel-") or len(infos[0].shape) >= 2:
        return "logmel"
    return "clip"  # one embedding vector per row


def resolve_config(cfg: TrainConfig) -> tuple[TrainConfig, DataSpec]:
    """Fill the family, the recipe numbers and the model's shape parameters from the shards.

    ``model_params`` gets ``num_classes`` = len(classes); timm models ``in_chans`` (log-mel channels);
    ``clip-late-fusion`` ``input_dims`` (and ``branch_names`` = the feature sets when there are not three).
    Values the user gave are kept and checked against the shards by building the model.
    """
    from avs.models import model_config, model_names
    from avs.models.base import MODELS
    from avs.models.timm_cnn import TimmClassifierConfig, resolve_timm_weights

    if cfg.model not in model_names():
        raise ValueError(f"unknown model {cfg.model!r}; registered: {model_names()}")

    infos = [feature_info(cfg.shards, name) for name in cfg.features]
    family = _guess_family(cfg, infos)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    kinds = {i.kind for i in infos}
    if family == "frame" and (len(infos) != 1 or kinds != {"image"}):
        raise ValueError(f"frame models train on one frames set (binary 'image' column); got {list(cfg.features)}")
    if family != "frame" and "image" in kinds:
        raise ValueError(f"family {family!r} needs float feature sets; {list(cfg.features)} holds JPEG frames")
    params = dict(cfg.model_params)
    params.setdefault("num_classes", len(cfg.classes))
    defaults = {f.name: f.default for f in dataclasses.fields(MODELS.get(cfg.model).config)}
    fields = set(defaults)
    if "random_init" not in fields and params.get("random_init") is True:
        params.pop("random_init")  # --random-init on a model that always starts from random weights (CLIP fusion)
    if "input_dims" in fields and "input_dims" not in params:
        params["input_dims"] = [i.dims for i in infos]
        if len(infos) != len(defaults.get("branch_names") or ()) and "branch_names" not in params:
            params["branch_names"] = [i.name for i in infos]
    if "in_chans" in fields and "in_chans" not in params and family == "logmel" and len(infos[0].shape) == 3:
        params["in_chans"] = int(infos[0].shape[0])
    mcfg = model_config(cfg.model, params)  # unknown / invalid model options fail here, before Ray starts
    if isinstance(mcfg, TimmClassifierConfig) and not os.environ.get("RAY_ADDRESS"):
        # embedded Ray: the workers see this machine's weight caches, so missing ImageNet weights fail now with
        # MissingWeightsError rather than in every worker (on a cluster only the workers' caches count)
        resolve_timm_weights(mcfg)
    image_size = None
    if family == "frame":
        image_size = cfg.image_size or getattr(mcfg, "input_size", None) or tuple(infos[0].shape[:2])
        image_size = tuple(int(v) for v in image_size)
    if family == "clip" and "input_dims" in fields and list(mcfg.input_dims) != [i.dims for i in infos]:
        raise ValueError(
            f"model input_dims {list(mcfg.input_dims)} do not match the feature sets "
            f"{[f'{i.name}: {i.dims}' for i in infos]}"
        )
    resolved = dataclasses.replace(
        cfg.with_recipe(family), model_params=params, image_size=image_size if family == "frame" else cfg.image_size
    )
    spec = DataSpec(
        shards=cfg.shards,
        family=family,
        features=tuple(cfg.features),
        columns=tuple(i.column for i in infos),
        shapes=tuple(tuple(i.shape) for i in infos),
        classes=tuple(cfg.classes),
        label_column=cfg.label_column,
        image_size=image_size,
    )
    return resolved, spec


def _use_gpu(setting: Any) -> bool:
    import ray

    if setting == "auto":
        return float(ray.cluster_resources().get("GPU", 0)) > 0
    return bool(setting)


def _best(result) -> tuple[Any, dict[str, Any]]:
    candidates = [(c, m) for c, m in (result.best_checkpoints or []) if c is not None]
    if not candidates and result.checkpoint is not None:
        candidates = [(result.checkpoint, result.metrics or {})]
    if not candidates:
        raise RuntimeError("training reported no checkpoint")

    def score(cm):
        m = cm[1]
        ll = m.get("val_log_loss")
        return (m.get("val_accuracy", 0.0), -(ll if ll == ll and ll is not None else float("inf")), -m.get("epoch", 0))

    return max(candidates, key=score)


def _read_state(checkpoint) -> dict[str, Any]:
    from avs.train.worker import STATE_FILE

    with checkpoint.as_directory() as d, open(os.path.join(d, STATE_FILE)) as fh:
        return json.load(fh)


def run_train(cfg: TrainConfig, stream: TextIO | None = None, fail_once: dict[str, Any] | None = None) -> dict:
    """Train ``cfg.model`` on the shards (see the module docstring); returns the summary (``metrics.json``).

    ``fail_once`` (tests): ``{"epoch": k, "flag": path}`` makes rank 0 raise once at the start of epoch k.
    """
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig

    from avs.models.checkpoint import load_model, save_checkpoint
    from avs.train.worker import CHECKPOINT_FILE, quiet_ray_logs, train_loop_per_worker

    log = stream or sys.stderr
    t_start = time.perf_counter()
    out = Storage(cfg.out)
    snapshot = f"{cfg.name}/{SNAPSHOT_FILE}"
    if out.exists(snapshot) and not cfg.resume:
        raise ValueError(
            f"{out.path(cfg.name)} already holds a training run; pass --resume to continue it from its "
            "latest checkpoint, or choose another --out (or --name)"
        )
    cfg, spec = resolve_config(cfg)
    recipe = cfg.recipe()
    init_ray()
    quiet_ray_logs()
    out.makedirs()

    t = time.perf_counter()
    counts = {
        "train": label_counts(spec, cfg.train_split, cfg.max_train_rows),
        "val": label_counts(spec, cfg.val_split, cfg.max_val_rows),
    }
    for part in ("train", "val"):
        if counts[part]["labelled"] == 0:
            split = cfg.train_split if part == "train" else cfg.val_split
            raise ValueError(
                f"no labelled rows in split {split!r} of {spec.shards}/{spec.features[0]} "
                f"(classes {list(cfg.classes)}); check --train-split / --val-split / --classes"
            )
    train_ds = split_dataset(spec, cfg.train_split, train=True, augment=cfg.augment, limit=cfg.max_train_rows)
    if spec.family == "logmel" and cfg.standardize:
        mean, std = channel_stats(split_dataset(spec, cfg.train_split, limit=cfg.max_train_rows))
        spec = dataclasses.replace(spec, mean=mean, std=std)
        train_ds = split_dataset(spec, cfg.train_split, train=True, augment=cfg.augment, limit=cfg.max_train_rows)
    val_ds = split_dataset(spec, cfg.val_split, limit=cfg.max_val_rows)
    train_ds = train_ds.select_columns(["x", "y"]).randomize_block_order(seed=None)
    val_ds = val_ds.select_columns(["x", "y"])
    scan_s = time.perf_counter() - t
    use_gpu = _use_gpu(cfg.use_gpu)
    print(
        f"[avs train] {cfg.model} ({spec.family}) on {list(spec.features)}: {counts['train']['labelled']} train / "
        f"{counts['val']['labelled']} val rows, {recipe.epochs} epochs, batch {recipe.batch_size} x "
        f"{cfg.num_workers} worker(s), {'GPU' if use_gpu else 'CPU'}; run folder {out.path(cfg.name)}",
        file=log,
        flush=True,
    )

    loop_config: dict[str, Any] = {
        "cfg": to_dict(cfg),
        "data": to_dict(spec),
        "rows": {"train": counts["train"]["labelled"], "val": counts["val"]["labelled"]},
    }
    if fail_once:
        loop_config["fail_once"] = dict(fail_once)
    resources = {"CPU": cfg.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = 1
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
                num_to_keep=cfg.num_to_keep,
                checkpoint_score_attribute=recipe.select_best_by,
                checkpoint_score_order="max" if recipe.select_best_by == "val_accuracy" else "min",
            ),
        ),
        datasets={"train": train_ds, "val": val_ds},
        dataset_config=DataConfig(execution_options=ingest_options()),
    )
    t = time.perf_counter()
    result = trainer.fit()
    fit_s = time.perf_counter() - t
    if result.error is not None:
        raise RuntimeError(f"training failed: {result.error}") from result.error

    best_ckpt, best_metrics = _best(result)
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
        "model": cfg.model,
        "family": spec.family,
        "features": list(spec.features),
        "classes": list(spec.classes),
        "epochs": recipe.epochs,
        "best_epoch": int(extra.get("epoch", best_metrics.get("epoch", -1))),
        "best": {k: v for k, v in (extra.get("metrics") or best_metrics).items()},
        "history": history,
        "starts": state.get("starts", []),
        "rows": counts,
        "standardize": {"mean": list(spec.mean), "std": list(spec.std)} if spec.mean is not None else None,
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

    header = ["epoch", "train_loss", "val_loss", "val_log_loss", "val_accuracy", "samples_per_s", "epoch_s"]
    return markdown_table(header, [[h.get(k) for k in header] for h in history], digits=4)
