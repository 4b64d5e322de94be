"""A training task in a few dozen lines, loaded as a plugin (``TrainConfig.plugins``): classification of
CLIP-like vectors with an EMA teacher (paper 003's mean teacher, without the unlabelled stream), exported for
prediction. It proves the plugin path: the engine knows nothing about it but its name."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from avs.models import create_model
from avs.train.data import DataSpec, feature_info, label_counts, split_dataset
from avs.train.ema import ema_copy, update_ema
from avs.train.task import Prepared, StepOutput, Task, TaskModules, register_task


@dataclasses.dataclass(frozen=True)
class EmaConfig:
    decay: float = 0.9  # teacher EMA decay


@register_task("test-ema", config=EmaConfig)
class EmaTask(Task):
    monitor = ("val_teacher_accuracy", "max")

    def prepare(self) -> Prepared:
        run, info = self.run, feature_info(self.run.shards, self.run.features[0])
        spec = DataSpec(run.shards, "clip", (info.name,), (info.column,), (info.shape,), tuple(run.classes))
        parts = {"train": run.train_split, "val": run.val_split}
        datasets = {k: split_dataset(spec, s, train=k == "train").select_columns(["x", "y"]) for k, s in parts.items()}
        rows = {k: label_counts(spec, s)["labelled"] for k, s in parts.items()}
        params = {"input_dims": [info.dims], "branch_names": [info.name], "num_classes": len(run.classes)}
        return Prepared(datasets, rows, spec={"classes": list(run.classes)}, model_params=params)

    def build(self) -> TaskModules:
        return TaskModules(net=create_model("clip-late-fusion", dict(self.run.model_params)))

    def on_fit_start(self, mods: TaskModules) -> None:
        mods.aux["teacher"] = ema_copy(mods.net)  # after the DDP wrap: rank 0's weights everywhere

    def training_step(self, mods, batch, step) -> StepOutput:
        x, y = batch["train"]["x"], batch["train"]["y"].long()
        loss = F.cross_entropy(mods.net(x), y)
        return StepOutput(loss=loss, rows=len(y), sums={"loss": float(loss.detach()) * len(y)})

    def on_after_optimizer_step(self, mods, step: int) -> None:
        update_ema(mods.aux["teacher"], mods.net, step, self.cfg.decay)

    def validation_step(self, mods, batch) -> dict[str, float]:
        x, y = batch["x"], batch["y"].long()
        hits = {
            k: float((m(x).argmax(1) == y).sum())
            for k, m in (("accuracy", mods.net), ("teacher_accuracy", mods.aux["teacher"]))
        }
        return {"rows": float(len(y)), **hits}

    def export(self, mods: TaskModules) -> torch.nn.Module:
        return mods.aux["teacher"]
