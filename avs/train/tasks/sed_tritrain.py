"""Paper 004's weakly labelled SED by tri-training and adversarial domain adaptation, as a training task.

    avs train FEATS --preset dcase2019-tritrain-adv-time --out runs/tri   # avs extract --preset dcase2019-tritrain

Inputs, streams, standardisation, validation and prediction are the SED base's (``avs.train.tasks.sed_base``):
synthetic strongly labelled clips S, weakly labelled real clips W, unlabeled real clips U, one forward of
``crnn-tritrain`` (``avs.models.crnn_tritrain``: F, the labelers F1 / F2, the final classifier Ft, the domain
classifier D behind a gradient reversal layer) per step on the combined batch. Losses (004 eqs. 1-8), as means
over their rows (the paper writes sums; means keep the weights independent of the batch split):

    L_y(head)  = BCE(frames of S) + BCE(clips of S and W)                            eqs. (1)-(3)
    L_d        = BCE(D(GRL_alpha(F(x))), real = 1 for W, U / synthetic = 0 for S)   eq. (4), per clip or frame
    eq. (8)    = lambda |(W1/|W1|)^T (W2/|W2|)|  on the first layers of F1 and F2   (``orthogonality``)

Algorithm 1 in two phases (``tri_training=True``):
  - phase 1 (epochs 1 .. ``phase1_epochs``): L_y(F1) + L_y(F2) + L_y(Ft) + eq. (8) + L_d: F, F1, F2, Ft, D.
  - the switch (start of epoch ``phase1_epochs + 1``): F, F1 and F2 are frozen into the *labeler*
    (``mods.aux["labeler"]``, eval mode). Pseudo-labelling W and U "where F1 and F2 are both confident and
    agree" is a pure function of the labeler and a clip, so instead of writing W_psl and U_psl to disk the
    task labels each W / U batch with the frozen labeler as it arrives: the same labels as Algorithm 1's sets,
    every epoch, without a second copy of the data. Per class and frame, a cell is labelled 1 when both
    labelers' probabilities exceed ``pseudo_threshold``, 0 when both are below ``1 - pseudo_threshold``, and
    left out otherwise (at 0.5, 004 §3.2: every cell where the two agree). U's clip labels come the same way
    from the clip outputs; W keeps its weak labels.
  - phase 2 (the remaining epochs): L_y(Ft) + masked BCE(Ft, pseudo-labels of W and U) + L_d: F, Ft, D
    (F1 and F2 get no gradient; Adam leaves them as they are).

Without tri-training (``tri_training=False``, 004 Table 1's "own baseline" and Adv.* rows) there is one phase,
L_y(Ft) (+ L_d). The GRL's alpha is ``alpha x (2 / (1 + exp(-10 p)) - 1)`` over the run's progress p
(``alpha_schedule="ganin"``, Ganin & Lempitsky's schedule: 004 gives no value) or constant. The phase and the
labeler are in every checkpoint (task state and ``aux``), so a run resumed in phase 2 labels exactly as before.
Validation reports the event-F1 of Ft (``val_event_f1``, picks the best epoch) and of F1 / F2
(``val_event_f1_f1`` / ``_f2``); ``avs predict`` writes Ft's frame scores.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F

from avs.models.gradient_reversal import ganin_alpha
from avs.train.ema import ema_copy, unwrap
from avs.train.losses import bce_probs
from avs.train.streams import combine
from avs.train.task import StepInfo, StepOutput, TaskModules, register_task
from avs.train.tasks.sed_base import SEDTask


@dataclasses.dataclass(frozen=True)
class TriTrainConfig:
    # rows per step from each stream: 004 §4.2 "mini-batch size of 64", split as the DCASE 2019 baseline's
    # batch (1/4 synthetic, 1/4 weak, 1/2 unlabeled: turpaultn/dcase20_task4 main.py [bs/4, bs/2, bs/4]);
    # 004 gives no split
    strong_batch: int = 16
    weak_batch: int = 16
    unlabeled_batch: int = 32  # U feeds D (adversarial) and the pseudo-labels (phase 2) only
    adversarial: Literal["none", "whole", "time"] = "time"  # 004 §3.1 Adv.whole / Adv.time; none: no D
    tri_training: bool = True  # 004 §3.2 / Algorithm 1: labelers F1, F2 and the two phases
    phase1_epochs: int = 50  # 004 gives no iteration counts ("for i = 1 to iter"): half of the 100-epoch presets
    alpha: float = 1.0  # 004 eq. (5) alpha, the GRL's largest weight (004 gives no value; Ganin's 1)
    alpha_schedule: Literal["ganin", "constant"] = "ganin"  # 2 / (1 + exp(-10 p)) - 1 (Ganin & Lempitsky §5.2.2)
    ortho_weight: float = 1.0  # 004 §3.2 "We set lambda to 1.0"
    pseudo_threshold: float = 0.5  # 004 §3.2 "We set this threshold to 0.5"
    clip_loss_on_strong: bool = True  # L_clip on S too (its events give clip labels); False: on W only, as 003
    threshold: float = 0.5  # post-processing as paper 003 (004 names none): 0.5 per class ...
    median_filter_s: float = 0.45  # ... and a 0.45-s median filter
    standardize: bool = True  # per-mel mean / std of the training clips (as 003's reference)
    select_best_by: Literal["val_event_f1", "val_loss"] = "val_event_f1"  # Ft's (004 reports Ft)

    def __post_init__(self) -> None:
        if min(self.strong_batch, self.weak_batch, self.unlabeled_batch) < 0:
            raise ValueError("TriTrainConfig: stream batch sizes must be >= 0")
        if self.strong_batch + self.weak_batch == 0:
            raise ValueError("TriTrainConfig: the classifiers need labels: strong_batch or weak_batch > 0")
        if self.adversarial not in ("none", "whole", "time"):
            raise ValueError(f"TriTrainConfig.adversarial must be none, whole or time, got {self.adversarial!r}")
        if self.adversarial != "none" and (self.strong_batch == 0 or self.weak_batch + self.unlabeled_batch == 0):
            raise ValueError(
                "TriTrainConfig: the domain classifier needs synthetic (strong) and real (weak or "
                "unlabeled) rows in every batch"
            )
        if self.unlabeled_batch and self.adversarial == "none" and not self.tri_training:
            raise ValueError(
                "TriTrainConfig: unlabeled rows feed only the domain classifier and the pseudo-labels; "
                "with adversarial=none and tri_training=false set unlabeled_batch=0"
            )
        if self.tri_training and self.phase1_epochs < 1:
            raise ValueError("TriTrainConfig.phase1_epochs must be >= 1 with tri_training")
        if not 0.5 <= self.pseudo_threshold < 1 or not 0 < self.threshold < 1:
            raise ValueError("TriTrainConfig: 0.5 <= pseudo_threshold < 1 and 0 < threshold < 1")
        if self.alpha < 0 or self.ortho_weight < 0:
            raise ValueError("TriTrainConfig: alpha and ortho_weight must be >= 0")


def _is_rank0() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


def pseudo_labels(p1: torch.Tensor, p2: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Agreement of two labelers' probabilities (any shape): -> (targets, mask), both float. A cell is 1 where
    both exceed ``threshold``, 0 where both are below ``1 - threshold``, and masked out elsewhere."""
    pos = (p1 > threshold) & (p2 > threshold)
    neg = (p1 < 1.0 - threshold) & (p2 < 1.0 - threshold)
    return pos.float(), (pos | neg).float()


def masked_bce(p: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE averaged over the unmasked cells (0 when none is)."""
    cells = mask.sum()
    if float(cells) == 0.0:
        return p.sum() * 0.0
    return (bce_probs(p, target, reduction="none") * mask).sum() / cells


def domain_loss(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Eq. (4): BCE of D's logits ``(batch,)`` (Adv.whole) or ``(batch, frames)`` (Adv.time), real = 1."""
    target = real.float().view(-1, *([1] * (logits.ndim - 1))).expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


@register_task("sed-tritrain", config=TriTrainConfig)
class TriTrainSED(SEDTask):
    find_unused_parameters = True  # phase 2 leaves F1 and F2 out of the loss

    def __init__(self, cfg: TriTrainConfig, run) -> None:
        super().__init__(cfg, run)
        self.phase = 1

    def task_model_params(self, fields: set[str]) -> dict[str, Any]:
        wanted = {"domain": self.cfg.adversarial, "labelers": self.cfg.tri_training}
        return {k: v for k, v in wanted.items() if k in fields}

    # ------------------------------------------------------------------ workers
    def build(self) -> TaskModules:
        from avs.models import create_model

        return TaskModules(net=create_model(self.run.model, dict(self.run.model_params)))

    def on_fit_start(self, mods: TaskModules) -> None:
        if self.cfg.tri_training:  # restored from the checkpoint on resume; refreshed at the phase switch
            mods.aux["labeler"] = ema_copy(mods.net).eval()

    def on_epoch_start(self, mods: TaskModules, epoch: int) -> None:
        if not self.cfg.tri_training:
            return
        if epoch == self.cfg.phase1_epochs + 1:  # Algorithm 1: pseudo-label with the phase-1 F, F1, F2
            mods.aux["labeler"].load_state_dict(unwrap(mods.net).state_dict())
        self.phase = 2 if epoch > self.cfg.phase1_epochs else 1

    def strong_of(self, outputs: Any) -> torch.Tensor:
        return outputs["ft"][0]

    def alpha_at(self, step: StepInfo) -> float:
        if self.cfg.alpha_schedule == "constant":
            return self.cfg.alpha
        total = step.epochs * (step.steps_per_epoch or 1)
        return self.cfg.alpha * ganin_alpha(step.step / max(total, 1))

    def _labelled_loss(self, strong_p, weak_p, parts, rows) -> tuple[torch.Tensor, float, float]:
        """L_y of one head on the labelled rows -> (loss, frame BCE, clip BCE)."""
        zero = strong_p.sum() * 0.0
        frame = clip = zero
        if "strong" in rows:
            r = rows["strong"]
            frame = bce_probs(strong_p[r], parts["strong"][r].float())
        clip_rows = [rows[n] for n in ("strong", "weak") if n in rows and (n == "weak" or self.cfg.clip_loss_on_strong)]
        if clip_rows:
            idx = torch.cat([torch.arange(s.start, s.stop, device=weak_p.device) for s in clip_rows])
            clip = bce_probs(weak_p[idx], parts["weak"][idx].float())
        return frame + clip, float(frame.detach()), float(clip.detach())

    def training_step(self, mods: TaskModules, batch, step: StepInfo) -> StepOutput:
        cfg = self.cfg
        if cfg.tri_training and step.epochs <= cfg.phase1_epochs:
            raise ValueError(
                f"tri-training: epochs ({step.epochs}) must exceed task_params.phase1_epochs ({cfg.phase1_epochs}) "
                "or there is no phase 2 (set tri_training=false to train without pseudo-labels)"
            )
        parts, rows = combine(batch, keys=("x", "strong", "weak", "kind"))
        x = self._norm(parts["x"].float())  # (batch, frames, mels)
        alpha = self.alpha_at(step)
        out = mods.net(x, alpha=alpha, with_domain=cfg.adversarial != "none")
        n = int(x.shape[0])
        sums: dict[str, float] = {"alpha": alpha * n} if cfg.adversarial != "none" else {}
        heads = ("f1", "f2", "ft") if cfg.tri_training and self.phase == 1 else ("ft",)
        loss = x.new_zeros(())
        for head in heads:
            strong_p, weak_p = (t.float() for t in out[head])
            head_loss, frame, clip = self._labelled_loss(strong_p, weak_p, parts, rows)
            loss = loss + head_loss
            sums[f"{head}_frame_bce"] = frame * n
            sums[f"{head}_clip_bce"] = clip * n
        if cfg.tri_training and self.phase == 1 and cfg.ortho_weight:
            from avs.models.crnn_tritrain import orthogonality

            w1, w2 = unwrap(mods.net).labeler_weights()
            ortho = orthogonality(w1, w2)
            loss = loss + cfg.ortho_weight * ortho
            sums["orthogonality"] = float(ortho.detach()) * n
        if cfg.tri_training and self.phase == 2:
            loss = loss + self._pseudo_loss(mods, x, out["ft"], rows, sums, n)
        if cfg.adversarial != "none":
            real = parts["kind"] != 0  # W and U are real recordings, S synthetic
            d_loss = domain_loss(out["domain"], real)
            loss = loss + d_loss  # the GRL turns this into -alpha dL_d/dtheta_F for F (eq. 5), +dL_d for D (eq. 7)
            sums["domain_bce"] = float(d_loss.detach()) * n
            with torch.no_grad():
                logits = out["domain"].float()
                hits = (logits > 0) == real.view(-1, *([1] * (logits.ndim - 1)))
                sums["domain_accuracy"] = float(hits.float().mean()) * n
        sums["loss"] = float(loss.detach()) * n
        return StepOutput(loss=loss, rows=n, sums=sums)

    def _pseudo_loss(self, mods, x, ft, rows, sums, n) -> torch.Tensor:
        """Ft on the pseudo-labels of the W and U rows of the batch (frames; clips of U)."""
        real = [rows[name] for name in ("weak", "unlabeled") if name in rows]
        if not real:
            return x.new_zeros(())
        idx = torch.cat([torch.arange(s.start, s.stop, device=x.device) for s in real])
        labeler = mods.aux["labeler"].eval()
        with torch.no_grad():
            lab = labeler(x[idx], with_domain=False)
            target, mask = pseudo_labels(lab["f1"][0].float(), lab["f2"][0].float(), self.cfg.pseudo_threshold)
        strong_p, weak_p = ft[0].float()[idx], ft[1].float()[idx]
        frame = masked_bce(strong_p, target, mask)
        loss = frame
        sums["pseudo_frame_bce"] = float(frame.detach()) * n
        sums["pseudo_labelled"] = float(mask.mean()) * n  # fraction of (frame, class) cells with a label
        sums["pseudo_positive"] = float(target.sum() / mask.sum().clamp(min=1)) * n
        if "unlabeled" in rows:
            w = rows.get("weak")
            start = (w.stop - w.start) if w is not None else 0  # idx holds W's rows, then U's
            with torch.no_grad():
                c_target, c_mask = pseudo_labels(
                    lab["f1"][1].float()[start:], lab["f2"][1].float()[start:], self.cfg.pseudo_threshold
                )
            clip = masked_bce(weak_p[start:], c_target, c_mask)
            loss = loss + clip
            sums["pseudo_clip_bce"] = float(clip.detach()) * n
        return loss

    def train_metrics(self, sums, rows: float) -> dict[str, float]:
        metrics = super().train_metrics(sums, rows)
        if self.phase == 2 and metrics.get("train_pseudo_positive", 1.0) == 0.0 and _is_rank0():
            warnings.warn(
                "sed-tritrain: phase 2 got no positive pseudo-label this epoch (train_pseudo_positive 0): the phase-1 "
                "labelers F1 / F2 detect nothing (val_event_f1_f1 / _f2), so Ft is taught silence on W and U. "
                "Train phase 1 longer (task_params.phase1_epochs) or lower task_params.pseudo_threshold.",
                RuntimeWarning,
                stacklevel=2,
            )
        return metrics

    def validation_probs(self, mods: TaskModules, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = mods.net(x, with_domain=False)
        probs = {"": out["ft"][0]}
        for head in ("f1", "f2"):
            if head in out:
                probs[f"_{head}"] = out[head][0]
        return probs

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase}

    def load_state_dict(self, state) -> None:
        self.phase = int(state.get("phase", 1))
