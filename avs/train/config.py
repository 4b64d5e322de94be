"""Frozen config of the training engine (``avs train``): task, model, inputs, optimizer, schedule, Ray Train.

    cfg = TrainConfig(shards="feats", out="runs/a01", task="scene", model="logmel-resnest50d", features=("logmel",))
    cfg = train_config({"shards": "feats", "out": "runs/a01", "preset": "dcase2021-t1b-logmel"})   # with a preset

The defaults are paper 000's recipe (§3): SGD with momentum 0.9, lr 0.1, weight decay 1e-4 (IBN-Net's defaults,
which §3 defers to), lr / 10 after epochs 5, 10 and 15, 20 epochs, batch 24. Training presets
(``avs.train.presets``) set task, model, inputs and every number of a paper's recipe; a user's YAML, flags and
``--set`` go on top. What a task computes has its own config in ``task_params`` (``--set task_params.focal_gamma=3``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from avs.flags import opt
from avs.train.optim import OptimizerConfig, ScheduleConfig

# paper 000 §3 (SGD with momentum; the rest from IBN-Net, which §3 defers to: lr 0.1, momentum 0.9, wd 1e-4)
PAPER000_OPTIMIZER = OptimizerConfig(name="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)
# paper 000 §3: "The learning rate is divided by 10 when the training model reached 5 epoch, 10 epoch and 15 epoch"
PAPER000_SCHEDULE = ScheduleConfig(name="multistep", interval="epoch", milestones=(5, 10, 15), gamma=0.1)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    shards: str = opt(help="root folder of `avs extract` (SHARDS/<feature_set>/part-*.parquet)", positional=True)
    out: str = opt(help="run folder: best/, metrics.json, config.yaml and Ray Train's checkpoints in OUT/<name>/")
    preset: str | None = opt(None, help="training preset the run started from (avs.train.presets; recorded)")
    task: str = opt("scene", help="registered training task (avs.train.task.TASKS)")
    task_params: dict[str, Any] = opt(
        default_factory=dict, help="the task's settings (its config dataclass), e.g. task_params.focal_gamma=3"
    )
    plugins: tuple[str, ...] = opt((), help="modules or .py files that register tasks, imported in every worker")
    model: str = opt("clip-late-fusion", help="registered model (avs.models), e.g. logmel-resnest50d, timm-cnn")
    model_params: dict[str, Any] = opt(default_factory=dict, help="model config overrides (model_params.backbone=...)")
    random_init: bool = opt(False, help="model_params.random_init: random initial weights (tests, demos)")
    init_from: str | None = opt(None, help="start from a run folder or checkpoint (partial loading, see init_drop)")
    init_drop: tuple[str, ...] = opt((), help="name prefixes init_from leaves out; 'head': the model's classifier")
    freeze_trunk: bool = opt(
        False,
        help="train only the parameters init_from did not load (a linear probe), plus the 'trainable' prefixes; "
        "without init_from: only the classifier and 'trainable'",
    )
    trainable: tuple[str, ...] = opt(
        (), help="with freeze_trunk: parameter name prefixes that train too, loaded or not ('head': the classifier)"
    )
    features: tuple[str, ...] = opt(
        ("clip_rn50x4", "clip_rn101", "clip_vitb32"), help="feature sets under SHARDS the task reads, comma-separated"
    )
    label_column: str = opt("labels", help="shard column with each row's labels (list<string>)")
    label_table: str | None = opt(None, help="Parquet table joined on clip_id (+ segment) that holds the labels")
    classes: tuple[str, ...] | None = opt(None, help="output classes in order; default: the preset's, else the data's")
    train_split: str = opt("train", help="value of the shards' split column to train on")
    val_split: str = opt("evaluate", help="... and to validate on (ignored with folds)")
    folds: int | None = opt(None, help="location-disjoint folds of the train split (paper 000 Table 3: 5)")
    fold: int | None = opt(None, help="with folds: validate on this fold (0-based), train on the others")
    fold_column: str = opt("location", help="with folds: the shards' group column (TAU: the recording location)")
    epochs: int = opt(20, help="epochs (paper 000 §3: 20)")
    batch_size: int = opt(24, help="rows per worker per step of the main training stream (paper 000 §3: 24)")
    optimizer: OptimizerConfig = opt(default_factory=lambda: PAPER000_OPTIMIZER, help="optimizer.name / lr / ...")
    schedule: ScheduleConfig = opt(default_factory=lambda: PAPER000_SCHEDULE, help="schedule.name / interval / ...")
    grad_clip: float | None = opt(None, help="clip the gradient norm to this value (None: no clipping)")
    num_workers: int = opt(1, help="Ray Train workers (DDP when > 1)")
    use_gpu: Literal["auto"] | bool = opt("auto", help="auto: when the Ray cluster has GPUs")
    cpus_per_worker: float = opt(1.0, help="CPUs reserved per Ray Train worker")
    gpu_wait_s: float | None = opt(
        600.0,
        help="a GPU run stops with a message naming the missing resource when Ray cannot place its workers' GPUs "
        "within this many seconds (none in the cluster, none started by the autoscaler); None: wait forever",
    )
    torch_threads: int | None = opt(
        None,
        help="CPU threads of torch in each worker (None: Ray's default, one per reserved CPU; more lets a laptop's "
        "one worker use every core while Ray Data reads on the reserved ones)",
    )
    amp: bool = opt(True, help="mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler)")
    seed: int = opt(0, help="seeds the weights, the shuffles and the augmentations")
    deterministic: bool = opt(False, help="keep Ray Data's block order (seeded runs repeat exactly; slower ingest)")
    shuffle_buffer_rows: int = opt(256, help="local shuffle buffer of the training iterator (0: no shuffling)")
    cache_rows: int = opt(
        0,
        help="materialise every dataset of at most this many rows once in Ray's object store, so that epochs do "
        "not read and decode it again (small sets: the per-epoch start of a stream costs seconds); 0: never",
    )
    max_train_rows: int | None = opt(None, help="smoke runs: train on the first N rows only")
    max_val_rows: int | None = opt(None, help="smoke runs: validate on the first N rows only")
    resume: bool = opt(False, help="continue the run in OUT/<name> from its latest checkpoint")
    max_failures: int = opt(2, help="worker-group restarts, each from the last checkpoint")
    num_to_keep: int = opt(2, help="checkpoints kept (the best by the task's metric; Ray keeps the latest too)")
    name: str = opt("ray", help="Ray Train run folder under OUT")

    def __post_init__(self) -> None:
        if not self.shards or not self.out:
            raise ValueError("TrainConfig: shards and out are required")
        if not self.features:
            raise ValueError("TrainConfig.features: name at least one feature set")
        if self.cache_rows < 0:
            raise ValueError(f"TrainConfig.cache_rows must be >= 0, got {self.cache_rows}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"TrainConfig.torch_threads must be >= 1 (or None), got {self.torch_threads}")
        if self.classes is not None and (len(set(self.classes)) != len(self.classes) or len(self.classes) < 2):
            raise ValueError(f"TrainConfig.classes must be >= 2 distinct names, got {self.classes}")
        for name in ("epochs", "batch_size", "num_workers", "max_train_rows", "max_val_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {value}")
        if self.use_gpu not in ("auto", True, False):
            raise ValueError(f"TrainConfig.use_gpu must be auto, true or false, got {self.use_gpu!r}")
        if self.max_failures < 0 or self.num_to_keep < 1 or self.shuffle_buffer_rows < 0:
            raise ValueError("TrainConfig: max_failures >= 0, num_to_keep >= 1, shuffle_buffer_rows >= 0")
        if (self.folds is None) != (self.fold is None):
            raise ValueError("TrainConfig: folds and fold go together (--folds 5 --fold k)")
        if self.folds is not None and (self.folds < 2 or not 0 <= self.fold < self.folds):
            raise ValueError(f"TrainConfig: need folds >= 2 and 0 <= fold < folds, got {self.folds}, {self.fold}")
        if self.gpu_wait_s is not None and self.gpu_wait_s < 0:
            raise ValueError(f"TrainConfig.gpu_wait_s must be >= 0 (or None), got {self.gpu_wait_s}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0, got {self.grad_clip}")

    @property
    def resolved_model_params(self) -> dict[str, Any]:
        params = dict(self.model_params)
        if self.random_init:
            params.setdefault("random_init", True)
        return params


def train_config(tree: Mapping[str, Any]) -> TrainConfig:
    """A config tree (YAML / flags / --set merged) -> TrainConfig, with its ``preset`` merged underneath."""
    from avs.config import deep_merge, from_dict
    from avs.train.presets import train_preset

    tree = dict(tree)
    if tree.get("preset"):
        tree = deep_merge(train_preset(str(tree["preset"])), tree)
    return from_dict(TrainConfig, tree)
