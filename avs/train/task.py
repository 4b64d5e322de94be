"""Training tasks: what a method computes, as a plugin of the one training loop (``avs.train.loop``).

    @register_task("scene", config=SceneConfig)
    class SceneTask(Task):
        monitor = ("val_accuracy", "max")
        def build(self): return TaskModules(net=create_model(...))
        def training_step(self, mods, batch, step): ...          # -> StepOutput(loss, rows, sums)
        def validation_step(self, mods, batch): ...              # -> {name: sum over the batch's rows}

The loop owns devices, seeding, the DDP wrap, AMP, the optimizer step, gradient clipping, schedules,
validation, reporting, checkpoints and resume; it knows nothing about labels. A task owns everything that does:
its inputs (``prepare`` on the driver: named Ray datasets with targets encoded, model shape parameters), its
modules, one training step, validation sums and metrics, extra state and what prediction exports.

A task is created twice per run: on the driver (``prepare``: reads the shards, once) and in every Ray Train
worker (everything else), from the same ``(task config, RunInfo)``; ``prepare`` returns what the workers need
(``Prepared.spec``: JSON-able) and it comes back as ``run.spec``.

Lifecycle in a worker (``avs.train.loop.train_loop_per_worker``)::

    mods = task.build()                         # seeded; the loop moves mods to the device, restores a checkpoint,
    task.on_fit_start(mods)                     #   wraps mods.net in DDP, then calls on_fit_start (EMA teachers)
    for epoch: task.on_epoch_start(mods, epoch)
        for batch: out = task.training_step(mods, batch, step)      # under autocast; ONE forward through mods.net
                   (backward, clip, optimizer step, per-step schedule)
                   task.on_after_optimizer_step(mods, step)
        for batch in val: sums += task.validation_step(mods, batch)
        metrics = task.validation_metrics(sums)                     # summed over workers first (split val)

``batch`` is ``{stream name: {column: tensor}}`` (one entry per stream of ``train_streams``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from avs.registry import Registry
from avs.train.streams import StreamSpec

TASKS = Registry("training task")


def register_task(name: str, *, config: type) -> Callable[[type], type]:
    """Class decorator: ``@register_task("scene", config=SceneConfig)``; ``TaskCls(cfg, run)`` builds it."""

    def decorate(cls: type) -> type:
        cls.name = name
        TASKS.register(name, config=config)(cls)
        return cls

    return decorate


def _import_builtin_tasks() -> None:
    import avs.train.tasks  # noqa: F401  (registers the built-in tasks)


def load_plugins(plugins: Sequence[str]) -> None:
    """Import each plugin (a module name, or a path to a ``.py`` file) so that its tasks register.

    Runs on the driver and in every worker: on a cluster a file must be on the workers too (``ray job submit
    --working-dir``)."""
    for plugin in plugins:
        if plugin.endswith(".py"):
            path = os.path.abspath(plugin)
            name = "avs_plugin_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
            if name in sys.modules:
                continue
            if not os.path.exists(path):
                raise FileNotFoundError(f"task plugin {plugin!r} not found ({path})")
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(plugin)


def task_names(plugins: Sequence[str] = ()) -> list[str]:
    _import_builtin_tasks()
    load_plugins(plugins)
    return TASKS.names()


def task_config(name: str, params: Mapping[str, Any] | None = None, plugins: Sequence[str] = ()) -> Any:
    """The task's frozen config from a mapping (unknown keys refused)."""
    _import_builtin_tasks()
    load_plugins(plugins)
    return TASKS.make_config(name, dict(params or {}))


def create_task(name: str, params: Mapping[str, Any] | None, run: RunInfo) -> Task:
    cfg = task_config(name, params, run.plugins)
    return TASKS.get(name).factory(cfg, run)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What every task sees of the run: the engine settings that concern its inputs and model."""

    shards: str  # root of `avs extract`'s feature sets
    model: str  # registry name (avs.models)
    model_params: Mapping[str, Any]
    features: tuple[str, ...]
    classes: tuple[str, ...] | None  # None: the task takes them from the data
    label_column: str
    label_table: str | None  # a Parquet table joined on clip_id (+ segment) that holds the labels instead
    train_split: str
    val_split: str
    train_clips: tuple[str, ...] | None  # folds: train on these clips of train_split only ...
    val_clips: tuple[str, ...] | None  # ... and validate on these (of train_split too)
    batch_size: int  # rows per worker per step of the main training stream
    max_train_rows: int | None
    max_val_rows: int | None
    seed: int
    plugins: tuple[str, ...] = ()
    spec: Mapping[str, Any] | None = None  # in workers: what prepare() returned as Prepared.spec


@dataclasses.dataclass
class Prepared:
    """What ``Task.prepare`` (driver) hands the engine."""

    datasets: dict[str, Any]  # name -> Ray Dataset: every name of train_streams() and "val"
    rows: dict[str, int]  # rows per dataset (progress, the drop_last choice)
    spec: dict[str, Any]  # JSON-able: comes back as RunInfo.spec in the workers and goes into the checkpoints
    model_params: dict[str, Any]  # the model's resolved parameters (num_classes, in_chans, ...)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)  # for metrics.json (class counts, ...)


@dataclasses.dataclass
class TaskModules:
    """``net``: the one module the loop optimises (its trainable parameters) and wraps in DDP; ``aux``: others
    (an EMA teacher), saved in checkpoints, not optimised."""

    net: torch.nn.Module
    aux: dict[str, torch.nn.Module] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StepInfo:
    epoch: int  # 1-based
    step: int  # optimizer steps done before this one, over the whole run
    epochs: int
    steps_per_epoch: int | None  # when known (rows / batch)


@dataclasses.dataclass
class StepOutput:
    loss: torch.Tensor  # scalar to backpropagate
    rows: int  # rows of the batch (progress, averaging)
    sums: dict[str, float] = dataclasses.field(default_factory=dict)  # summed over rows: averaged by the loop


class Task:
    """Base class of training tasks (see the module docstring). Subclasses set the class attributes and
    implement ``prepare``, ``build``, ``training_step`` and ``validation_step``."""

    name: str = ""  # set by register_task
    monitor: tuple[str, str] = ("val_loss", "min")  # metric that picks the best epoch, and "max" | "min"
    prediction: str = "clip_probs"  # kind of what export() predicts (avs.predictions.KINDS)
    find_unused_parameters: bool = False  # DDP: a head unused in some step (tri-training phases)
    split_validation: bool = True  # False: every worker validates on all rows (metrics needing every row)

    def __init__(self, cfg: Any, run: RunInfo) -> None:
        self.cfg = cfg
        self.run = run

    # ------------------------------------------------------------------ driver
    def prepare(self) -> Prepared:
        raise NotImplementedError

    def train_streams(self) -> list[StreamSpec]:
        """Named training streams and their rows per step; the first leads the epoch unless one says lead."""
        return [StreamSpec("train", self.run.batch_size)]

    # ------------------------------------------------------------------ workers
    def build(self) -> TaskModules:
        raise NotImplementedError

    def on_fit_start(self, mods: TaskModules) -> None:
        """After the DDP wrap (rank 0's weights are on every rank by then): create EMA teachers here."""

    def on_epoch_start(self, mods: TaskModules, epoch: int) -> None:
        """Phase switches."""

    def training_step(self, mods: TaskModules, batch: dict[str, dict[str, torch.Tensor]], step: StepInfo) -> StepOutput:
        raise NotImplementedError

    def on_after_optimizer_step(self, mods: TaskModules, step: int) -> None:
        """After every optimizer step (``step``: steps done, from 1): EMA updates, ramped weights."""

    def validation_step(self, mods: TaskModules, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def train_metrics(self, sums: Mapping[str, float], rows: float) -> dict[str, float]:
        """Training metrics of an epoch from the summed ``StepOutput.sums`` (default: per-row means)."""
        return {f"train_{k}": (v / rows if rows else float("nan")) for k, v in sums.items()}

    def validation_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        """Validation metrics from the summed ``validation_step`` outputs (default: ``rows`` divides the rest)."""
        rows = sums.get("rows", 0.0)
        out = {f"val_{k}": (v / rows if rows else float("nan")) for k, v in sums.items() if k != "rows"}
        out["val_samples"] = int(rows)
        return out

    def best_key(self, metrics: Mapping[str, Any]) -> tuple:
        """Sort key of an epoch's metrics; the best epoch has the largest (ties: the earlier epoch)."""
        name, mode = self.monitor
        value = metrics.get(name, float("nan"))
        value = float("-inf") if value != value else (value if mode == "max" else -value)
        return (value, -metrics.get("epoch", 0))

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint (tensors, numbers, strings, lists and dicts of them: weights_only-safe)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    def export(self, mods: TaskModules) -> torch.nn.Module:
        """The module ``avs predict`` loads (the student by default; a mean teacher's task returns the teacher)."""
        return mods.net

    # ------------------------------------------------------------------ prediction (avs predict)
    def predict_dataset(self, split: str | None, limit: int | None) -> Any:
        """Ray Dataset of the rows to predict: key columns (clip_id, segment, split, label, start_s, end_s) and
        the model input ``x``, prepared as for validation; ``split`` None = every row."""
        raise NotImplementedError(f"task {self.name!r} does not predict: it defines no predict_dataset()")

    def inputs_from_tables(self, tables: Mapping[str, Any]) -> dict[str, Any]:
        """One clip's rows in the shards' layout (feature set -> pa.Table, as ``avs serve`` computes them) -> the
        batch ``predict_dataset`` would give for them: ``x`` and the key columns."""
        raise NotImplementedError(f"task {self.name!r} does not serve predictions: it defines no inputs_from_tables()")

    def predict_scores(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Model outputs -> the scores of ``prediction`` (clip_probs: ``(rows, classes)`` that sum to 1)."""
        return torch.softmax(model(x).float(), dim=1)

    def classes(self) -> tuple[str, ...]:
        """Output class order (from ``run.spec`` in workers and at prediction)."""
        return tuple(self.run.spec["classes"])
