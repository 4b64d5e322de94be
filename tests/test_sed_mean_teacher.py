"""Paper 003's mean-teacher SED task: one step on a hand-made batch (losses by stream, EMA, ramp), the teacher's
input noise, and with a real local Ray: training on tiny DESED-like shards, resume after an injected failure
(student, teacher and step restored exactly), prediction of frame scores and detections."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from avs.testing.sed_shards import CLASSES, HOP_IN, N_FRAMES, N_MELS, TINY_CRNN, run_fields, write_desed_shards


def _run_info(spec: dict | None = None, **changes):
    from avs.train.task import RunInfo

    return RunInfo(**run_fields("crnn-dcase2020", TINY_CRNN, spec, **changes))


def test_one_mean_teacher_step_losses_ema_and_ramp():
    from avs.train.task import StepInfo, create_task

    params = {"strong_batch": 2, "weak_batch": 2, "unlabeled_batch": 2, "teacher_snr_db": None, "rampup_epochs": 50}
    task = create_task("sed-mean-teacher", params, _run_info())
    torch.manual_seed(0)
    mods = task.build()
    task.on_fit_start(mods)
    teacher = mods.aux["teacher"]
    g = torch.Generator().manual_seed(1)
    batch = {
        name: {
            "x": torch.randn(2, N_FRAMES, N_MELS, generator=g) * 10 - 40,
            "strong": (torch.rand(2, N_FRAMES // 4, 2, generator=g) > 0.5).float(),
            "weak": (torch.rand(2, 2, generator=g) > 0.5).float(),
        }
        for name in ("strong", "weak", "unlabeled")
    }
    info = StepInfo(epoch=1, step=250, epochs=200, steps_per_epoch=10)  # half-way up a 500-step ramp
    out = task.training_step(mods, batch, info)
    # the same losses by hand: the student on the whole batch, BCE per labelled stream, consistency on all rows
    x = torch.cat([batch[n]["x"] for n in ("strong", "weak", "unlabeled")])
    strong_p, weak_p = mods.net(x)
    strong_t, weak_t = teacher(x)
    bce_strong = F.binary_cross_entropy(strong_p[:2], batch["strong"]["strong"])
    bce_weak = F.binary_cross_entropy(weak_p[2:4], batch["weak"]["weak"])
    w = 2.0 * math.exp(-5 * 0.5**2)  # consistency weight 2 x exp(-5 (1 - 250/500)^2)
    consistency = F.mse_loss(strong_p, strong_t) + F.mse_loss(weak_p, weak_t)
    want = (bce_strong + bce_weak + w * consistency).detach()
    assert float(out.loss.detach()) == pytest.approx(float(want), rel=1e-5)
    assert out.sums["strong_bce"] == pytest.approx(float(bce_strong.detach()) * 6, rel=1e-5)
    assert out.sums["weak_bce"] == pytest.approx(float(bce_weak.detach()) * 6, rel=1e-5)
    assert out.sums["consistency_weight"] / 6 == pytest.approx(w)
    # ramp at the start, the middle and the end (reference ramps.exp_rampup over 50 epochs of 10 steps)
    ramp = [task.ramp(StepInfo(epoch=1, step=s, epochs=200, steps_per_epoch=10)) for s in (0, 250, 500, 900)]
    assert ramp == pytest.approx([math.exp(-5.0), math.exp(-1.25), 1.0, 1.0])
    # EMA after the optimizer steps: alpha = min(1 - 1 / (step + 1), 0.999) with the 0-based global step
    opt = torch.optim.SGD(mods.net.parameters(), lr=0.1)
    out.loss.backward()
    opt.step()
    task.on_after_optimizer_step(mods, 1)  # alpha 0: the teacher takes the student's weights
    for p_t, p_s in zip(teacher.parameters(), mods.net.parameters(), strict=True):
        assert torch.equal(p_t, p_s)
    before = [p.detach().clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in mods.net.parameters():
            p.add_(1.0)
    task.on_after_optimizer_step(mods, 2)  # alpha 0.5
    for p_t, p_0, p_s in zip(teacher.parameters(), before, mods.net.parameters(), strict=True):
        assert torch.allclose(p_t, 0.5 * p_0 + 0.5 * p_s)
    # supervised only: no teacher, no consistency
    sup = create_task("sed-mean-teacher", {**params, "mean_teacher": False, "unlabeled_batch": 0}, _run_info())
    mods2 = sup.build()
    sup.on_fit_start(mods2)
    assert "teacher" not in mods2.aux
    out2 = sup.training_step(mods2, {k: batch[k] for k in ("strong", "weak")}, info)
    assert "consistency" not in out2.sums


def test_teacher_noise_has_the_asked_snr():
    from avs.train.tasks.sed_mean_teacher import db_to_amplitude, teacher_noise

    g = torch.Generator().manual_seed(0)
    x_db = torch.randn(4, 400, 16, generator=g) * 6 - 30
    noisy = teacher_noise(x_db, 30.0, generator=g)
    clean, dirty = db_to_amplitude(x_db), db_to_amplitude(noisy)
    snr = 10 * torch.log10((clean**2).mean(dim=1) / ((dirty - clean) ** 2).mean(dim=1))  # per clip and band
    assert float(snr.mean()) == pytest.approx(30.0, abs=1.0)


# ------------------------------------------------------------------------------------------------ Ray


def _config(root: Path, out: Path):
    from avs.train.config import train_config

    return train_config(
        {
            "shards": str(root),
            "out": str(out),
            "preset": "dcase2020-mean-teacher",
            "model_params": TINY_CRNN,
            "classes": list(CLASSES),
            "epochs": 2,
            "seed": 2,
            "deterministic": True,
            "shuffle_buffer_rows": 4,
            "max_failures": 1,
            "schedule": {"total_epochs": 2},
            "task_params": {"strong_batch": 2, "weak_batch": 2, "unlabeled_batch": 2, "rampup_epochs": 2},
        }
    )


@pytest.mark.ray
@pytest.mark.slow  # ~4-10 min here: four Ray Data streams re-read every epoch cost ~50 s per epoch on 2 cores
def test_mean_teacher_trains_resumes_exactly_and_predicts_frame_scores(ray_local, tmp_path):
    from avs.train.job import run_train
    from avs.train.loop import STATE_FILE, TENSORS_FILE
    from avs.train.predict import PredictConfig, run_predict

    root = tmp_path / "feats"
    counts = write_desed_shards(root)
    plain = run_train(_config(root, tmp_path / "plain"))
    flag = tmp_path / "failed.flag"
    resumed = run_train(_config(root, tmp_path / "resumed"), fail_once={"epoch": 2, "flag": str(flag)})
    assert flag.exists() and resumed["starts"] == [1, 2]
    assert plain["task"] == "sed-mean-teacher" and plain["frames_out"] == N_FRAMES // 4
    last = plain["history"][-1]
    assert last["val_samples"] == counts["validation"] and 0.0 <= last["val_event_f1"] <= 1.0
    assert "val_event_f1_teacher" in last and last["train_consistency_weight"] > 0
    assert last["step"] == 2 * 4  # 8 clips per stream / 2 per step = 4 steps per epoch

    def final(run: Path) -> dict:
        folders = [p for p in (run / "ray").glob("checkpoint_*") if (p / STATE_FILE).exists()]
        latest = max(folders, key=lambda p: json.loads((p / STATE_FILE).read_text())["epoch"])
        return torch.load(latest / TENSORS_FILE, weights_only=True)

    a, b = final(tmp_path / "plain"), final(tmp_path / "resumed")
    assert a["step"] == b["step"] == 8
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    for key in a["aux"]["teacher"]:
        assert torch.equal(a["aux"]["teacher"][key], b["aux"]["teacher"][key]), key

    pred = run_predict(PredictConfig(out=str(tmp_path / "pred"), model=str(tmp_path / "plain"), split="validation"))
    table = pq.read_table(tmp_path / "pred" / "predictions.parquet")
    assert table.schema.metadata[b"avs.kind"] == b"frame_scores"
    assert float(table.schema.metadata[b"avs.hop_s"]) == pytest.approx(HOP_IN * 4)
    assert table.num_rows == counts["validation"] * (N_FRAMES // 4) and pred["kind"] == "frame_scores"
    scores = np.stack([table.column(c).to_numpy() for c in CLASSES], axis=1)
    assert ((scores >= 0) & (scores <= 1)).all()
    detections = (tmp_path / "pred" / "detections.tsv").read_text().splitlines()
    assert detections[0] == "filename\tonset\toffset\tevent_label" and len(detections) - 1 == pred["events"]
