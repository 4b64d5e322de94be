"""Frozen config of the training job (``avs train``): model, feature sets, recipe, Ray Train scaling.

    cfg = TrainConfig(shards="feats", out="runs/a01", model="logmel-resnest50d", features=("logmel",))
    recipe = cfg.recipe("logmel")          # paper 000 sec. 3 recipe with this run's overrides

Recipe fields left ``None`` take the paper-000 value of the model family (``avs.train.recipe.RECIPES``:
SGD momentum 0.9, lr 0.1, weight decay 1e-4, 20 epochs, lr / 10 at epochs 5, 10, 15, focal loss gamma 2,
batch 24 log-mel / 20 frames / 48 CLIP). ``avs.train.job.resolve_config`` fills them (and ``family``,
``model_params.num_classes`` / ``in_chans`` / ``input_dims`` from the shards) before training, so the
saved ``config.yaml`` holds the numbers the run used.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from avs.classes import SCENE_CLASSES
from avs.train.recipe import RecipeConfig, paper000_recipe

FAMILIES = ("logmel", "frame", "clip")
Family = Literal["auto", "logmel", "frame", "clip"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    shards: str  # root folder written by `avs extract`: SHARDS/<feature_set>/part-NNNNN.parquet
    out: str  # run folder: best/, metrics.json, config.yaml, and Ray Train's checkpoints in <out>/<name>/
    model: str = "clip-late-fusion"  # registry name (avs.models.create_model)
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)  # config overrides of the model
    # feature-set folders under ``shards``: one for CNNs ("logmel" or "frames"); the three CLIP sets, in the
    # model's branch order (RN50x4, RN101, ViT-B/32; paper 000 Table 1), for clip-late-fusion
    features: tuple[str, ...] = ("clip_rn50x4", "clip_rn101", "clip_vitb32")
    family: Family = "auto"  # recipe / input family; auto: from the model name and the shards
    label_column: str = "labels"  # list<string>; the first label is the class (TAU: the scene)
    classes: tuple[str, ...] = SCENE_CLASSES  # class index order of the model's outputs (TAU 2021: 10 scenes)
    train_split: str = "train"  # value of the shards' ``split`` column to train on (TAU fold1 train)
    val_split: str = "evaluate"  # ... and to validate on (TAU fold1 evaluate)
    # recipe (None = paper 000 sec. 3 value of the family, see avs.train.recipe)
    epochs: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    milestones: tuple[int, ...] | None = None  # epochs where lr is multiplied by ``gamma``
    gamma: float | None = None
    batch_size: int | None = None  # per Ray Train worker
    focal_gamma: float | None = None
    loss: Literal["focal", "cross_entropy"] | None = None
    augment: bool = True  # paper 000 sec. 3 augmentations (log-mel: gain + frequency masks; frames: affine ...)
    standardize: bool = True  # log-mel: per-channel z-score with statistics of the training split
    image_size: tuple[int, int] | None = None  # frames: (H, W) fed to the model; None = the model's input_size
    # (frame-* models: 448 x 448) or, failing that, the stored frame size
    # Ray Train
    num_workers: int = 1  # Ray Train workers (DDP when > 1)
    use_gpu: Literal["auto"] | bool = "auto"  # auto: when the Ray cluster has GPUs
    cpus_per_worker: float = 1.0
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler)
    seed: int = 0
    shuffle_buffer_rows: int = 256  # local shuffle buffer of the training iterator (0: no shuffling)
    max_train_rows: int | None = None  # smoke runs: train / validate on the first N rows only
    max_val_rows: int | None = None
    resume: bool = False  # continue the run in <out>/<name> from its latest checkpoint
    max_failures: int = 2  # Ray Train FailureConfig: worker-group restarts (each resumes from the last checkpoint)
    num_to_keep: int = 2  # checkpoints kept (best by val_accuracy; Ray always keeps the latest too)
    name: str = "ray"  # Ray Train run folder under ``out``

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("TrainConfig.features: name at least one feature set")
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"TrainConfig.classes must be >= 2 distinct names, got {self.classes}")
        if self.family not in ("auto", *FAMILIES):
            raise ValueError(f"TrainConfig.family must be auto or one of {FAMILIES}, got {self.family!r}")
        if self.num_workers < 1:
            raise ValueError("TrainConfig.num_workers must be >= 1")
        for name in ("epochs", "batch_size", "max_train_rows", "max_val_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {value}")
        if self.use_gpu not in ("auto", True, False):
            raise ValueError(f"TrainConfig.use_gpu must be auto, true or false, got {self.use_gpu!r}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 8):
            raise ValueError(f"TrainConfig.image_size must be (H, W) >= 8, got {self.image_size}")
        if self.max_failures < 0 or self.num_to_keep < 1 or self.shuffle_buffer_rows < 0:
            raise ValueError("TrainConfig: max_failures >= 0, num_to_keep >= 1, shuffle_buffer_rows >= 0")

    def recipe(self, family: str | None = None) -> RecipeConfig:
        """The paper-000 recipe of ``family`` (default: ``self.family``) with this config's overrides."""
        family = family or self.family
        if family == "auto":
            raise ValueError("recipe(): the family is not resolved yet (avs.train.job.resolve_config)")
        base = paper000_recipe(family)
        changes = {
            "epochs": self.epochs,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "lr_milestones": tuple(self.milestones) if self.milestones is not None else None,
            "lr_gamma": self.gamma,
            "batch_size": self.batch_size,
            "focal_gamma": self.focal_gamma,
            "loss": self.loss,
        }
        return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})

    def with_recipe(self, family: str) -> TrainConfig:
        """This config with ``family`` and every recipe field filled in (what the run saves)."""
        r = self.recipe(family)
        return dataclasses.replace(
            self,
            family=family,
            epochs=r.epochs,
            lr=r.lr,
            momentum=r.momentum,
            weight_decay=r.weight_decay,
            milestones=tuple(r.lr_milestones),
            gamma=r.lr_gamma,
            batch_size=r.batch_size,
            focal_gamma=r.focal_gamma,
            loss=r.loss,
        )
