"""Paper 002's (Hitachi at TRECVID DSDI 2020) multi-label image classifier with soft labels, as a training task
(``--task multilabel``, presets ``trecvid-dsdi-*``).

    avs extract data/ladi --preset trecvid-dsdi --out feats          # images (+ test shots at 10 fps) -> frames
    avs train feats --preset trecvid-dsdi-c04 --out runs/c04         # ResNeSt-50d, class-balanced focal loss

Inputs: one ``frames`` set (JPEG ``image`` column; a LADI image is a one-frame clip, ``avs.data.read_ladi``),
decoded and resized to ``image_size`` (None: the model's ``input_size``), with 002 §3 (1)'s training
augmentation (``FrameAugmentConfig(recipe="aerial")``: flips, rotation, colour jitter) and ImageNet
normalisation. Targets (``target``): ``soft`` = every annotator vote of the row's ``labels`` counted per class
and divided by the largest count (002 §2.1, Fig. 1), or ``multi_hot``.

Loss (``loss``, 002 §2.2 / §2.4, ``avs.train.losses`` / ``avs.train.losses_multilabel``), summed over the
classes, per image:
    focal           eqs. (1)-(2): -(1 - p^)^gamma log p^,  p^ = 1 - |y - p|                   (A01, B02)
    class_balanced  the same times eq. (3)'s (1 - beta) / (1 - beta^n_y), n_y = Table 1's counts  (C03, C04)
    reduced         eqs. (4)-(6) with threshold th, ``rfl_form`` printed | original            (C05-C07)
    bce             plain binary cross-entropy on the soft targets (a reference)
then ``none_weight`` multiplies the none-classes' terms (C08 0.1, C09 0.01), ``outlier_removal`` drops the
largest per-image loss of each minibatch (§2.4, C11), and the batch mean is taken.

Validation: the loss, LRAP (scikit-learn, 002 Table 2's column; truth = soft label >= ``truth_threshold``) and
mAP (scikit-learn AP per class with a positive, ``avs.eval.ranking``) over every validation image
(``split_validation = False``); the best epoch by ``select_best_by`` (``epoch``: the last one, and with
``num_to_keep`` the latest checkpoints are the snapshots of C10). ``avs predict`` writes per-frame sigmoid
scores (kind ``clip_scores``); ``avs rank`` takes the per-shot max and the top-k lists (§2.5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch

from avs.config import from_dict, to_dict
from avs.train.augment import FrameAugmentConfig
from avs.train.data import DataSpec, feature_info, label_counts, split_dataset
from avs.train.task import Prepared, StepInfo, StepOutput, Task, TaskModules, register_task


@dataclasses.dataclass(frozen=True)
class MultiLabelConfig:
    loss: Literal["focal", "class_balanced", "reduced", "bce"] = "focal"  # 002 Table 2's loss columns
    gamma: float = 2.0  # 002 Table 2 "gamma: 2.0" (every row)
    cb_beta: float = 0.999  # 002 Table 2 C03 (C04: 0.9999)
    cb_normalize: bool = False  # Cui et al.'s rescaling of eq. (3)'s weights (002 does not say it rescales)
    class_counts: tuple[float, ...] | None = None  # n_y per class; None: 002 Table 1's counts (LADI classes)
    rfl_threshold: float = 0.5  # 002 Table 2 C05-C07 "th": 0.3 / 0.5 / 0.7
    rfl_form: Literal["printed", "original"] = "printed"  # eq. (4) as 002 prints it, or Sergievskiy's original
    none_weight: float = 1.0  # 002 Table 2 C08 0.1, C09 0.01 (the none-classes' loss multiplier)
    outlier_removal: bool = False  # 002 §2.4 / Table 2 C11: drop the largest per-image loss of each minibatch
    target: Literal["soft", "multi_hot"] = "soft"  # 002 §2.1 soft labels
    truth_threshold: float = 0.5  # validation LRAP / mAP: a class is true where its soft label >= this
    augment: bool = True  # 002 §3 (1)
    frame_augment: FrameAugmentConfig = FrameAugmentConfig(recipe="aerial")
    image_size: tuple[int, int] | None = None  # (H, W); None: the model's input_size (002 §3 (1): 360 / 448)
    select_best_by: Literal["val_lrap", "val_map", "val_loss", "epoch"] = "val_lrap"  # 002 Table 2 reports LRAP

    def __post_init__(self) -> None:
        if self.gamma < 0 or self.none_weight < 0:
            raise ValueError("MultiLabelConfig: gamma and none_weight must be >= 0")
        if not 0 <= self.cb_beta < 1:
            raise ValueError(f"MultiLabelConfig.cb_beta must be in [0, 1), got {self.cb_beta}")
        if not 0 < self.rfl_threshold < 1 or not 0 < self.truth_threshold <= 1:
            raise ValueError("MultiLabelConfig: 0 < rfl_threshold < 1 and 0 < truth_threshold <= 1")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 8):
            raise ValueError(f"MultiLabelConfig.image_size must be (H, W) >= 8, got {self.image_size}")


def class_weights(cfg: MultiLabelConfig, classes: tuple[str, ...]) -> torch.Tensor | None:
    """Per-class loss weights ``(classes,)``: eq. (3)'s class-balanced factors (``class_balanced``) times the
    none-class multiplier; None when both are 1."""
    from avs.classes import LADI_CLASS_COUNTS
    from avs.train.losses_multilabel import class_balanced_weights, none_class_weights

    w = torch.ones(len(classes))
    if cfg.loss == "class_balanced":
        if cfg.class_counts is not None:
            counts = list(cfg.class_counts)
            if len(counts) != len(classes):
                raise ValueError(f"class_counts has {len(counts)} values for {len(classes)} classes")
        else:
            missing = [c for c in classes if c not in LADI_CLASS_COUNTS]
            if missing:
                raise ValueError(
                    f"class-balanced loss: no n_y for {missing[:3]} (not LADI classes): set task_params.class_counts"
                )
            counts = [LADI_CLASS_COUNTS[c] for c in classes]
        w = w * class_balanced_weights(counts, cfg.cb_beta, normalize=cfg.cb_normalize)
    if cfg.none_weight != 1.0:
        w = w * none_class_weights(classes, cfg.none_weight)
    return None if bool((w == 1).all()) else w


def per_image_loss(cfg: MultiLabelConfig, logits: torch.Tensor, y: torch.Tensor, weights) -> torch.Tensor:
    """``(batch, classes)`` logits and soft targets -> ``(batch,)`` losses (summed over classes)."""
    import torch.nn.functional as F

    from avs.train.losses import binary_focal_loss
    from avs.train.losses_multilabel import reduced_focal_loss

    x, y = logits.float(), y.float()
    if cfg.loss in ("focal", "class_balanced"):
        return binary_focal_loss(x, y, cfg.gamma, alpha=weights, reduction="none")
    if cfg.loss == "reduced":
        return reduced_focal_loss(x, y, cfg.rfl_threshold, cfg.gamma, cfg.rfl_form, alpha=weights, reduction="none")
    per = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    return (per * weights if weights is not None else per).sum(dim=1)


def batch_loss(cfg: MultiLabelConfig, logits: torch.Tensor, y: torch.Tensor, weights) -> torch.Tensor:
    from avs.train.losses_multilabel import drop_largest

    per = per_image_loss(cfg, logits, y, weights)
    return (drop_largest(per) if cfg.outlier_removal else per).mean()


def ranking_metrics(y: np.ndarray, scores: np.ndarray, classes, truth_threshold: float) -> dict[str, float]:
    """LRAP and mAP (scikit-learn) of ``(rows, classes)`` scores against soft truth binarised at the threshold."""
    from avs.eval.ranking import lrap, mean_average_precision

    truth = np.asarray(y) >= truth_threshold
    rows = truth.any(axis=1)  # sklearn scores a row without a true class 1.0: such rows would inflate LRAP
    out = {"lrap": lrap(truth[rows], np.asarray(scores)[rows]) if rows.any() else float("nan")}
    m = mean_average_precision(truth, scores, classes, k=None)["map"]
    out["map"] = float("nan") if m is None else float(m)
    return out


@register_task("multilabel", config=MultiLabelConfig)
class MultiLabelTask(Task):
    prediction = "clip_scores"
    split_validation = False  # LRAP / mAP need every validation image

    def __init__(self, cfg: MultiLabelConfig, run) -> None:
        super().__init__(cfg, run)
        mode = "min" if cfg.select_best_by == "val_loss" else "max"
        self.monitor = (cfg.select_best_by, mode)
        self.spec = from_dict(DataSpec, run.spec["data"]) if run.spec else None
        self._weights = None
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    # ------------------------------------------------------------------ driver
    def _classes(self) -> tuple[str, ...]:
        from avs.classes import LADI_CLASSES

        return tuple(self.run.classes) if self.run.classes else LADI_CLASSES

    def prepare(self) -> Prepared:
        from avs.models import model_config
        from avs.models.timm_cnn import TimmClassifierConfig, resolve_timm_weights

        run, cfg = self.run, self.cfg
        if len(run.features) != 1:
            raise ValueError(f"multilabel trains on one frames set; got {list(run.features)}")
        info = feature_info(run.shards, run.features[0])
        if info.kind != "image":
            raise ValueError(f"multilabel needs a frames set (binary 'image' column); {info.name} holds vectors")
        classes = self._classes()
        class_weights(cfg, classes)  # a class without n_y fails here, before Ray Train
        params = dict(run.model_params)
        params.setdefault("num_classes", len(classes))
        mcfg = model_config(run.model, params)
        if isinstance(mcfg, TimmClassifierConfig):
            import os

            if not os.environ.get("RAY_ADDRESS"):
                resolve_timm_weights(mcfg)  # missing ImageNet weights fail now, naming where they were looked for
        size = cfg.image_size or getattr(mcfg, "input_size", None) or tuple(info.shape[:2])
        size = tuple(int(v) for v in size)
        spec = DataSpec(
            shards=run.shards,
            family="frame",
            features=tuple(run.features),
            columns=(info.column,),
            shapes=(tuple(info.shape),),
            classes=classes,
            label_column=run.label_column,
            label_table=run.label_table,
            image_size=size,
            frame_augment=dataclasses.replace(cfg.frame_augment, size=size),
            target=cfg.target,
        )
        parts = {"train": (run.train_split, run.max_train_rows), "val": (run.val_split, run.max_val_rows)}
        counts = {name: label_counts(spec, split, limit) for name, (split, limit) in parts.items()}
        for name, (split, _) in parts.items():
            if counts[name]["labelled"] == 0:
                raise ValueError(
                    f"no labelled rows in split {split!r} of {spec.shards}/{spec.features[0]} (classes "
                    f"{list(classes)[:4]}...); check --train-split / --val-split / --classes"
                )
        train = split_dataset(spec, run.train_split, train=True, augment=cfg.augment, limit=run.max_train_rows)
        val = split_dataset(spec, run.val_split, limit=run.max_val_rows)
        return Prepared(
            datasets={
                "train": train.select_columns(["x", "y"]).randomize_block_order(seed=run.seed),
                "val": val.select_columns(["x", "y"]),
            },
            rows={name: c["labelled"] for name, c in counts.items()},
            spec={"data": to_dict(spec)},
            model_params=params,
            summary={"input": "frame", "target": cfg.target, "classes": list(classes), "rows": counts},
        )

    # ------------------------------------------------------------------ workers
    def build(self) -> TaskModules:
        from avs.models import create_model

        return TaskModules(net=create_model(self.run.model, dict(self.run.model_params)))

    def _class_weights(self, device) -> torch.Tensor | None:
        if self._weights is None:
            w = class_weights(self.cfg, self.classes())
            self._weights = (w,) if w is None else (w.to(device),)
        return self._weights[0]

    def training_step(self, mods: TaskModules, batch, step: StepInfo) -> StepOutput:
        b = batch["train"]
        x, y = b["x"].float(), b["y"].float()  # (batch, 3, H, W), (batch, classes)
        logits = mods.net(x)
        loss = batch_loss(self.cfg, logits, y, self._class_weights(x.device))
        n = int(y.shape[0])
        return StepOutput(loss=loss, rows=n, sums={"loss": float(loss.detach()) * n})

    def validation_step(self, mods: TaskModules, batch) -> dict[str, float]:
        x, y = batch["x"].float(), batch["y"].float()
        logits = mods.net(x).float().detach()  # (the engine runs this under no_grad; a direct call may not)
        loss = batch_loss(
            dataclasses.replace(self.cfg, outlier_removal=False), logits, y, self._class_weights(x.device)
        )
        self._val.append((y.cpu().numpy(), torch.sigmoid(logits).cpu().numpy()))
        n = int(y.shape[0])
        return {"rows": float(n), "loss": float(loss) * n}

    def validation_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        out = super().validation_metrics(sums)
        batches, self._val = self._val, []
        if batches:
            y = np.concatenate([b[0] for b in batches])
            scores = np.concatenate([b[1] for b in batches])
            m = ranking_metrics(y, scores, self.classes(), self.cfg.truth_threshold)
            out.update({"val_lrap": m["lrap"], "val_map": m["map"]})
        return out

    def best_key(self, metrics: Mapping[str, Any]) -> tuple:
        def num(name: str) -> float:
            v = metrics.get(name)
            return float("-inf") if v is None or v != v else float(v)

        if self.cfg.select_best_by == "epoch":
            return (float(metrics.get("epoch", 0)),)
        sign = -1.0 if self.cfg.select_best_by == "val_loss" else 1.0
        return (sign * num(self.cfg.select_best_by), -metrics.get("epoch", 0))

    # ------------------------------------------------------------------ prediction
    def classes(self) -> tuple[str, ...]:
        return tuple(self.spec.classes) if self.spec is not None else self._classes()

    def predict_dataset(self, split: str | None, limit: int | None):
        spec = self.spec if self.run.shards == self.spec.shards else self.spec.with_shards(self.run.shards)
        return split_dataset(spec, split, limit=limit, keep_keys=True, drop_unlabeled=False)

    def inputs_from_tables(self, tables):
        from avs.train.data import tables_batch

        return tables_batch(self.spec, tables)

    def predict_scores(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(model(x.float()).float())
