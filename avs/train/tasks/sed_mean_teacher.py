"""Paper 003's sound event detection with a mean teacher (the DCASE 2020 Task 4 baseline) as a training task.

    avs train FEATS --preset dcase2020-mean-teacher --out runs/sed        # CRNN, strong + weak + unlabeled

Every step's batch joins three streams of 10-s clips from the shards, by the manifest's ``label_kind``: synthetic
strongly labelled soundscapes (frame targets from ``events``), weakly labelled recordings (clip targets from
``labels``) and unlabeled recordings. One forward of the student (``mods.net``, DDP-wrapped) on the whole batch
gives frame and clip probabilities; the loss is (003 §2, reference code ``baseline/main.py train``):

    BCE(strong frames, strong rows) + BCE(weak clip outputs, weak rows)
      + w(t) [MSE(student frames, teacher frames) + MSE(student clips, teacher clips)]     over all rows

with w(t) = consistency_weight x exp(-5 (1 - t/T)^2) (T = rampup_epochs, in steps; 003 Table 5: weight 2, with
ramp-up). The teacher (``mods.aux["teacher"]``) is an EMA of the student's parameters after every optimizer step
(decay 0.999: reference ``update_ema_variables(model, ema_model, 0.999, global_step)``; the paper says "at each
epoch", the code does it every step), gets the student's input plus Gaussian noise at ``teacher_snr_db`` (30 dB in
the baseline, 003 Table 4; None = no noise, Table 4's best), and runs in train mode like the reference's (its
dropout is the "noise" of 003 Figure 1; its batch-norm statistics are its own, the EMA averages parameters only).

Validation (``split_validation = False``: every worker sees every validation clip): frame probabilities ->
threshold 0.5 -> median filter 0.45 s (7 output frames, ``avs.eval.sed_post``) -> events; event-based F1
(sed_eval, 003 §3.3) of the student and the teacher; the best epoch by the student's (003 §3.2: "the best epoch
on the cross-validation set is kept"; reference: ``valid_synth_f1`` of the student). Prediction (``avs
predict``) exports the student (003 §2: "The student model is the final model used at inference time") and
writes frame scores.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from avs.train.ema import ema_copy, update_ema
from avs.train.losses import bce_probs
from avs.train.optim import exp_rampup
from avs.train.streams import combine
from avs.train.task import StepInfo, StepOutput, TaskModules, register_task
from avs.train.tasks.sed_base import SEDTask


@dataclasses.dataclass(frozen=True)
class MeanTeacherConfig:
    # rows per step from each stream (0: leave the stream out; 003 Table 1 ablations). 003 Table 1's baseline
    # column uses the three sets in equal ratio (1/3 each of the reference's batch of 24); the reference code
    # (main.py) takes 6 weak + 12 unlabeled + 6 synthetic instead (preset dcase2020-mean-teacher-code)
    strong_batch: int = 8
    weak_batch: int = 8
    unlabeled_batch: int = 8
    ema_decay: float = 0.999  # reference main.py: update_ema_variables(..., 0.999, global_step)
    consistency_weight: float = 2.0  # reference config.max_consistency_cost; 003 Table 5 (2 > 1)
    consistency_rampup: bool = True  # 003 Table 5 "Ramp-up CC"
    mean_teacher: bool = True  # False: supervised only (strong + weak BCE, no teacher, no consistency)
    rampup_epochs: float = 50.0  # reference config.n_epoch_rampup (exp ramp over 50 epochs of steps)
    teacher_snr_db: float | None = 30.0  # 003 §2 / Table 4: noise on the teacher's input (None: none, "inf")
    threshold: float = 0.5  # 003 §3.2 "thresholds are fixed to 0.5 for every classes"
    median_filter_s: float = 0.45  # 003 §3.2 "median filtering on ~0.45 s"
    standardize: bool = True  # reference Scaler("dataset"): per-mel mean / std of the training clips
    export: Literal["student", "teacher"] = "student"  # 003 §2: "The student model is the final model used"
    select_best_by: Literal["val_event_f1", "val_event_f1_teacher", "val_loss"] = "val_event_f1"

    def __post_init__(self) -> None:
        if min(self.strong_batch, self.weak_batch, self.unlabeled_batch) < 0:
            raise ValueError("MeanTeacherConfig: stream batch sizes must be >= 0")
        if self.strong_batch + self.weak_batch == 0:
            raise ValueError("MeanTeacherConfig: the student needs labels: strong_batch or weak_batch > 0 (003 §4)")
        if not 0.0 <= self.ema_decay < 1.0 or self.rampup_epochs < 0 or not 0 < self.threshold < 1:
            raise ValueError("MeanTeacherConfig: 0 <= ema_decay < 1, rampup_epochs >= 0, 0 < threshold < 1")


def db_to_amplitude(x_db: torch.Tensor) -> torch.Tensor:
    return torch.pow(10.0, x_db / 20.0)


def teacher_noise(x_db: torch.Tensor, snr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The reference's ``AugmentGaussianNoise(snr)`` on a batch of dB log-mels ``(batch, frames, mels)``: Gaussian
    noise added to the mel *magnitudes* (before the log, as ``get_transforms`` orders it) with, per clip and mel
    band, std = sqrt(mean over frames of |X|^2 x 10^(-snr/10)); back to dB (``amplitude_to_db``: amin 1e-5)."""
    amp = db_to_amplitude(x_db.float())
    std = torch.sqrt(torch.mean(amp * amp, dim=-2, keepdim=True) * 10.0 ** (-snr_db / 10.0))  # (batch, 1, mels)
    noise = torch.randn(amp.shape, generator=generator, device=amp.device, dtype=amp.dtype) * std
    return 20.0 * torch.log10(torch.clamp(amp + noise, min=1e-5))


@register_task("sed-mean-teacher", config=MeanTeacherConfig)
class MeanTeacherSED(SEDTask):
    # ------------------------------------------------------------------ workers
    def build(self) -> TaskModules:
        from avs.models import create_model

        return TaskModules(net=create_model(self.run.model, dict(self.run.model_params)))

    def on_fit_start(self, mods: TaskModules) -> None:
        if self.cfg.mean_teacher:
            mods.aux["teacher"] = ema_copy(mods.net)  # after the DDP wrap: rank 0's initial weights

    def ramp(self, step: StepInfo) -> float:
        """exp(-5 (1 - t/T)^2) of the step (reference ``ramps.exp_rampup(global_step, n_epoch_rampup * len)``)."""
        if not self.cfg.consistency_rampup:
            return 1.0
        per_epoch = step.steps_per_epoch or 1
        return exp_rampup(step.step, self.cfg.rampup_epochs * per_epoch) if self.cfg.rampup_epochs else 1.0

    def training_step(self, mods: TaskModules, batch, step: StepInfo) -> StepOutput:
        cfg = self.cfg
        parts, rows = combine(batch, keys=("x", "strong", "weak"))
        x_db = parts["x"].float()  # (batch, frames, mels) dB
        strong_y, weak_y = parts["strong"].float(), parts["weak"].float()
        strong_p, weak_p = mods.net(self._norm(x_db))  # (batch, n_out, classes), (batch, classes)
        strong_p, weak_p = strong_p.float(), weak_p.float()
        loss = torch.zeros((), device=x_db.device)
        sums: dict[str, float] = {}
        n = int(x_db.shape[0])
        if "strong" in rows:
            r = rows["strong"]
            strong_loss = bce_probs(strong_p[r], strong_y[r])
            loss = loss + strong_loss
            sums["strong_bce"] = float(strong_loss.detach()) * n
        if "weak" in rows:
            r = rows["weak"]
            weak_loss = bce_probs(weak_p[r], weak_y[r])
            loss = loss + weak_loss
            sums["weak_bce"] = float(weak_loss.detach()) * n
        if cfg.mean_teacher:
            teacher = mods.aux["teacher"]
            teacher.train()  # as the reference: dropout on, its own batch-norm statistics
            x_t = x_db if cfg.teacher_snr_db is None else teacher_noise(x_db, cfg.teacher_snr_db)
            with torch.no_grad():
                strong_t, weak_t = teacher(self._norm(x_t))
            w = cfg.consistency_weight * self.ramp(step)
            consistency = F.mse_loss(strong_p, strong_t.float()) + F.mse_loss(weak_p, weak_t.float())
            loss = loss + w * consistency
            sums["consistency"] = float(consistency.detach()) * n
            sums["consistency_weight"] = w * n
        sums["loss"] = float(loss.detach()) * n
        return StepOutput(loss=loss, rows=n, sums=sums)

    def on_after_optimizer_step(self, mods: TaskModules, step: int) -> None:
        if self.cfg.mean_teacher:
            # parameters only: the teacher keeps its own batch-norm statistics (reference update_ema_variables)
            update_ema(mods.aux["teacher"], mods.net, step - 1, self.cfg.ema_decay, copy_buffers=False)

    def validation_probs(self, mods: TaskModules, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"": mods.net(x)[0]}
        if "teacher" in mods.aux:
            out["_teacher"] = mods.aux["teacher"](x)[0]
        return out

    def export(self, mods: TaskModules) -> torch.nn.Module:
        if self.cfg.export == "teacher" and "teacher" in mods.aux:
            return mods.aux["teacher"]
        return mods.net
