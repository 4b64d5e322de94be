"""Paper 000's acoustic / visual scene classifiers as a training task (``--task scene``).

One label per row (the first of ``labels``: the scene), a softmax head, focal loss (000 §3: gamma 2.0), the
paper-000 augmentations, validation log-loss (mean cross-entropy) and accuracy; the best epoch by validation
accuracy (000 §3: "we used best epoch models in the validation accuracy"; ties: lower log-loss). The optimizer,
schedule, epochs and batch sizes are engine settings (training presets ``dcase2021-t1b-*``).

Inputs (``SceneConfig.input``; ``auto`` reads it off the feature sets, never off the model's name):
  - ``logmel``: one set of ``(channels, mels, frames)`` rows (1-s segments); random gain + frequency masks
    (train), per-channel z-score with the training split's statistics;
  - ``frame``: one set of JPEG frames (binary ``image`` column), decoded, augmented (train: RandomAffine,
    GaussianBlur, RandomErasing, 000 §3), resized to ``image_size`` and ImageNet-normalised;
  - ``clip``: one or more sets of embedding vectors joined on (clip_id, segment) and concatenated (the CLIP
    Late Fusion Network's three encoders, 000 Table 1).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F

from avs.config import from_dict, to_dict
from avs.train.augment import AudioAugmentConfig, FrameAugmentConfig
from avs.train.data import (
    DataSpec,
    channel_stats,
    distinct_labels,
    feature_info,
    label_counts,
    split_dataset,
    standardize,
)
from avs.train.task import Prepared, StepInfo, StepOutput, Task, TaskModules, register_task

INPUTS = ("logmel", "frame", "clip")


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    input: Literal["auto", "logmel", "frame", "clip"] = "auto"  # input pipeline; auto: from the feature sets
    loss: Literal["focal", "cross_entropy"] = "focal"  # 000 §3 "We trained these models with Focal Loss [30]"
    focal_gamma: float = 2.0  # 000 §3 "which gamma parameter is 2.0"
    # 000 §3 best validation accuracy; "epoch": the last epoch (001 §3 trains the pretext a fixed length)
    select_best_by: Literal["val_accuracy", "val_log_loss", "epoch"] = "val_accuracy"
    augment: bool = True  # 000 §3 augmentations (log-mel: gain + frequency masks; frames: affine, blur, erasing)
    audio_augment: AudioAugmentConfig = AudioAugmentConfig()  # values: avs.train.augment (000 §3 gives none)
    frame_augment: FrameAugmentConfig = FrameAugmentConfig()  # 000 §3 (its ``size`` is set from image_size)
    standardize: bool = True  # log-mel: per-channel z-score with statistics of the training split (avs's choice)
    image_size: tuple[int, int] | None = None  # frames: model input (H, W); None: the model's input_size (frame-*
    # models: 448 x 448, 000 §3), else the stored frame size

    def __post_init__(self) -> None:
        if self.focal_gamma < 0:
            raise ValueError(f"SceneConfig.focal_gamma must be >= 0, got {self.focal_gamma}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 8):
            raise ValueError(f"SceneConfig.image_size must be (H, W) >= 8, got {self.image_size}")


def input_kind(infos: list) -> str:
    """The input pipeline the feature sets call for: frames / several or 1-d vector sets / spectrograms."""
    if len(infos) > 1 or len(infos[0].shape) == 1:
        return "clip"
    if infos[0].kind == "image":
        return "frame"
    return "logmel"


def loss_function(cfg: SceneConfig) -> torch.nn.Module:
    from avs.train.losses import FocalLoss

    if cfg.loss == "focal":
        return FocalLoss(gamma=cfg.focal_gamma)
    return torch.nn.CrossEntropyLoss()


@register_task("scene", config=SceneConfig)
class SceneTask(Task):
    prediction = "clip_probs"

    def __init__(self, cfg: SceneConfig, run) -> None:
        super().__init__(cfg, run)
        self.monitor = (cfg.select_best_by, "min" if cfg.select_best_by == "val_log_loss" else "max")
        self.spec = from_dict(DataSpec, run.spec["data"]) if run.spec else None
        self.loss_fn = loss_function(cfg)

    # ------------------------------------------------------------------ driver
    def _model_params(self, kind: str, infos: list, classes: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
        """``model_params`` + shape parameters from the shards: num_classes, timm ``in_chans`` (log-mel
        channels), clip-late-fusion ``input_dims`` (+ ``branch_names`` when there are not three sets)."""
        from avs.models import model_config, model_names
        from avs.models.base import MODELS
        from avs.models.timm_cnn import TimmClassifierConfig, resolve_timm_weights

        run = self.run
        if run.model not in model_names():
            raise ValueError(f"unknown model {run.model!r}; registered: {model_names()}")
        params = dict(run.model_params)
        params.setdefault("num_classes", len(classes))
        defaults = {f.name: f.default for f in dataclasses.fields(MODELS.get(run.model).config)}
        if "random_init" not in defaults and params.get("random_init") is True:
            params.pop("random_init")  # --random-init on a model that always starts from random weights
        if "input_dims" in defaults and "input_dims" not in params:
            params["input_dims"] = [i.dims for i in infos]
            if len(infos) != len(defaults.get("branch_names") or ()) and "branch_names" not in params:
                params["branch_names"] = [i.name for i in infos]
        if "in_chans" in defaults and "in_chans" not in params and kind == "logmel" and len(infos[0].shape) == 3:
            params["in_chans"] = int(infos[0].shape[0])
        mcfg = model_config(run.model, params)  # unknown / invalid model options fail here, before Ray Train
        if isinstance(mcfg, TimmClassifierConfig) and not os.environ.get("RAY_ADDRESS"):
            # embedded Ray: the workers see this machine's weight caches, so missing ImageNet weights fail now
            resolve_timm_weights(mcfg)
        if kind == "clip" and "input_dims" in defaults and list(mcfg.input_dims) != [i.dims for i in infos]:
            raise ValueError(
                f"model input_dims {list(mcfg.input_dims)} do not match the feature sets "
                f"{[f'{i.name}: {i.dims}' for i in infos]}"
            )
        return params, mcfg

    def _classes(self, first) -> tuple[str, ...]:
        if self.run.classes:
            return tuple(self.run.classes)
        found = distinct_labels(first, self.run.label_column, self.run.train_split, self.run.label_table)
        if len(found) < 2:
            raise ValueError(
                f"found {len(found)} class(es) in split {self.run.train_split!r} of {first.folder}: name the "
                "classes (--classes or a preset)"
            )
        return tuple(found)

    def prepare(self) -> Prepared:
        run, cfg = self.run, self.cfg
        infos = [feature_info(run.shards, name) for name in run.features]
        kind = cfg.input if cfg.input != "auto" else input_kind(infos)
        kinds = {i.kind for i in infos}
        if kind == "frame" and (len(infos) != 1 or kinds != {"image"}):
            raise ValueError(f"frame models train on one frames set (binary 'image' column); got {list(run.features)}")
        if kind != "frame" and "image" in kinds:
            raise ValueError(f"input {kind!r} needs float feature sets; {list(run.features)} holds JPEG frames")
        classes = self._classes(infos[0])
        params, mcfg = self._model_params(kind, infos, classes)
        image_size = None
        if kind == "frame":
            image_size = cfg.image_size or getattr(mcfg, "input_size", None) or tuple(infos[0].shape[:2])
            image_size = tuple(int(v) for v in image_size)
        spec = DataSpec(
            shards=run.shards,
            family=kind,
            features=tuple(run.features),
            columns=tuple(i.column for i in infos),
            shapes=tuple(tuple(i.shape) for i in infos),
            classes=classes,
            label_column=run.label_column,
            label_table=run.label_table,
            image_size=image_size,
            frame_augment=dataclasses.replace(cfg.frame_augment, size=image_size) if image_size else None,
        )
        val_split = run.train_split if run.val_clips is not None else run.val_split
        parts = {
            "train": (run.train_split, run.train_clips, run.max_train_rows),
            "val": (val_split, run.val_clips, run.max_val_rows),
        }
        counts = {name: label_counts(spec, split, limit, clips) for name, (split, clips, limit) in parts.items()}
        for name, (split, clips, _) in parts.items():
            if counts[name]["labelled"] == 0:
                where = f"split {split!r}" + (" (this fold's clips)" if clips is not None else "")
                raise ValueError(
                    f"no labelled rows in {where} of {spec.shards}/{spec.features[0]} (classes {list(classes)}); "
                    "check --train-split / --val-split / --classes"
                )
        split, clips, limit = parts["train"]
        if kind == "logmel" and cfg.standardize:
            mean, std = channel_stats(split_dataset(spec, split, limit=limit, clips=clips))
            spec = dataclasses.replace(spec, mean=mean, std=std)
        train_ds = split_dataset(spec, split, train=True, augment=cfg.augment, limit=limit, clips=clips)
        split, clips, limit = parts["val"]
        val_ds = split_dataset(spec, split, limit=limit, clips=clips)
        datasets = {
            "train": train_ds.select_columns(["x", "y"]).randomize_block_order(seed=run.seed),
            "val": val_ds.select_columns(["x", "y"]),
        }
        return Prepared(
            datasets=datasets,
            rows={name: c["labelled"] for name, c in counts.items()},
            spec={"data": to_dict(spec)},
            model_params=params,
            summary={
                "input": kind,
                "classes": list(classes),
                "rows": counts,
                "standardize": {"mean": list(spec.mean), "std": list(spec.std)} if spec.mean is not None else None,
            },
        )

    # ------------------------------------------------------------------ workers
    def build(self) -> TaskModules:
        from avs.models import create_model

        return TaskModules(net=create_model(self.run.model, dict(self.run.model_params)))

    def _inputs(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        x = x.float()
        if self.spec.family == "logmel":
            if train and self.cfg.augment:
                from avs.train.augment import augment_audio

                x = augment_audio(x, self.cfg.audio_augment)
            x = standardize(x, self.spec.mean, self.spec.std)
        return x

    def training_step(self, mods: TaskModules, batch, step: StepInfo) -> StepOutput:
        b = batch["train"]
        x, y = self._inputs(b["x"], train=True), b["y"].long()
        logits = mods.net(x)  # (batch, classes)
        loss = self.loss_fn(logits.float(), y)
        n = int(y.shape[0])
        correct = float((logits.detach().argmax(dim=1) == y).sum())
        return StepOutput(loss=loss, rows=n, sums={"loss": float(loss.detach()) * n, "accuracy": correct})

    def validation_step(self, mods: TaskModules, batch) -> dict[str, float]:
        x, y = self._inputs(batch["x"], train=False), batch["y"].long()
        logits = mods.net(x).float()
        n = int(y.shape[0])
        return {
            "rows": float(n),
            "loss": float(self.loss_fn(logits, y)) * n,
            "log_loss": float(F.cross_entropy(logits, y, reduction="sum")),
            "accuracy": float((logits.argmax(dim=1) == y).sum()),
        }

    def validation_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        out = super().validation_metrics(sums)
        if not sums.get("rows"):
            out["val_accuracy"] = 0.0
        return out

    def best_key(self, metrics: Mapping[str, Any]) -> tuple:
        """000 §3: best validation accuracy, ties broken by lower log-loss, then the earlier epoch (or the
        other way round with ``select_best_by: val_log_loss``); ``epoch``: the last epoch."""
        if self.cfg.select_best_by == "epoch":
            return (float(metrics.get("epoch", 0)),)

        def num(name: str, sign: float) -> float:
            v = metrics.get(name)
            return float("-inf") if v is None or v != v else sign * float(v)

        acc, ll = num("val_accuracy", 1.0), num("val_log_loss", -1.0)
        first, second = (acc, ll) if self.cfg.select_best_by == "val_accuracy" else (ll, acc)
        return (first, second, -metrics.get("epoch", 0))

    # ------------------------------------------------------------------ prediction
    def classes(self) -> tuple[str, ...]:
        return tuple(self.spec.classes)

    def predict_dataset(self, split: str | None, limit: int | None):
        spec = self.spec if self.run.shards == self.spec.shards else self.spec.with_shards(self.run.shards)
        return split_dataset(spec, split, limit=limit, keep_keys=True, drop_unlabeled=False)

    def inputs_from_tables(self, tables):
        from avs.train.data import tables_batch

        return tables_batch(self.spec, tables)

    def predict_scores(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(self._inputs(x, train=False)).float(), dim=1)
