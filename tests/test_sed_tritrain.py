"""Paper 004's tri-training + gradient-reversal SED task: the GRL against autograd, eq. (8) on known weights,
pseudo-labels by agreement, the model's heads, one step of each phase on a hand-made batch, and with a real local
Ray: the phase switch, a resume in phase 2 after an injected failure (net, labeler, phase and step restored
exactly) and prediction of Ft's frame scores."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from avs.testing.sed_shards import CLASSES, N_FRAMES, N_MELS, TINY_CRNN, run_fields, write_desed_shards

TINY = {  # crnn-tritrain scaled down: 3 blocks, freq 16 -> 1, time 40 -> 10
    "n_mels": N_MELS,
    "n_frames": N_FRAMES,
    "filters": [4, 8, 8],
    "pooling": [[2, 2], [2, 2], [1, 4]],
    "rnn_hidden": 8,
    "rnn_layers": 1,
    "head_hidden": 6,
    "domain_hidden": 5,
    "dropout": 0.0,
}


# ------------------------------------------------------------------------------------------------ pure parts


def test_gradient_reversal_flips_and_scales_the_gradient_as_autograd_says():
    from avs.models.gradient_reversal import ganin_alpha, grad_reverse

    torch.manual_seed(0)
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(3, 2)

    def f(z):
        return torch.tanh(z @ w).pow(2).sum()

    (plain,) = torch.autograd.grad(f(x), x)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)  # identity forward
    (reversed_,) = torch.autograd.grad(f(y), x)
    torch.testing.assert_close(reversed_, -0.3 * plain)
    (zero,) = torch.autograd.grad(f(grad_reverse(x, 0.0)), x)
    assert torch.count_nonzero(zero) == 0
    # the update of eq. (5): d/dF (L_y + L_d(GRL(F))) = dL_y/dF - alpha dL_d/dF
    (both,) = torch.autograd.grad(x.sum() + f(grad_reverse(x, 0.5)), x)
    torch.testing.assert_close(both, 1.0 - 0.5 * plain)
    assert [ganin_alpha(p) for p in (0.0, 0.5, 1.0)] == pytest.approx(
        [0.0, 2 / (1 + math.exp(-5)) - 1, 2 / (1 + math.exp(-10)) - 1]
    )


def test_orthogonality_term_of_eq8_on_known_weights():
    from avs.models.crnn_tritrain import orthogonality

    w1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(orthogonality(w1, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))) == pytest.approx(1.0)  # |P| / 2
    assert float(orthogonality(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 2.0, -3.0]]))) == 0.0
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[-4.0, 3.0], [6.0, 8.0]])
    # unit-Frobenius: a / 5, b / sqrt(125); products [0, 50] -> 50 / (5 sqrt(125))
    assert float(orthogonality(a, b)) == pytest.approx(50 / (5 * math.sqrt(125)))
    w = torch.randn(4, 7, requires_grad=True)
    orthogonality(w, torch.randn(3, 7)).backward()  # differentiable (the labelers are pushed apart)
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_pseudo_labels_where_both_labelers_are_confident_and_agree():
    from avs.train.tasks.sed_tritrain import masked_bce, pseudo_labels

    p1 = torch.tensor([[0.9, 0.2, 0.7, 0.4], [0.6, 0.1, 0.55, 0.45]])
    p2 = torch.tensor([[0.8, 0.3, 0.3, 0.6], [0.51, 0.49, 0.2, 0.3]])
    target, mask = pseudo_labels(p1, p2, 0.5)
    assert target.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 0, 1]]  # disagreement -> no label
    target, mask = pseudo_labels(p1, p2, 0.7)  # stricter: > 0.7 both, or < 0.3 both
    assert target.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0]] and mask.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0]]
    p = torch.tensor([0.8, 0.3, 0.5])
    got = masked_bce(p, torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1.0, 1.0, 0.0]))
    assert float(got) == pytest.approx((-math.log(0.8) - math.log(0.7)) / 2)
    assert float(masked_bce(p, torch.ones(3), torch.zeros(3))) == 0.0


def test_model_heads_shapes_and_domain_modes():
    from avs.models import create_model

    net = create_model("crnn-tritrain", num_classes=3)  # 004 §4.2: 640 x 128 input
    x = torch.randn(2, 640, 128)
    net.train()
    out = net(x, alpha=0.5)
    assert set(out) == {"f1", "f2", "ft", "domain"}
    for head in ("f1", "f2", "ft"):
        assert out[head][0].shape == (2, 160, 3) and out[head][1].shape == (2, 3)
    assert out["domain"].shape == (2, 160)  # Adv.time: one decision per frame
    net.eval()
    assert net(x)["domain"] is None  # inference: no D
    whole = create_model("crnn-tritrain", {**TINY, "num_classes": 2, "domain": "whole", "labelers": False}).train()
    out = whole(torch.randn(3, N_FRAMES, N_MELS))
    assert set(out) == {"ft", "domain"} and out["domain"].shape == (3,)
    none = create_model("crnn-tritrain", {**TINY, "num_classes": 2, "domain": "none"}).train()
    assert none(torch.randn(1, N_FRAMES, N_MELS))["domain"] is None and none.domain is None
    none.reset_classifier(4)
    assert none(torch.randn(1, N_FRAMES, N_MELS))["ft"][0].shape == (1, N_FRAMES // 4, 4)


# ------------------------------------------------------------------------------------------------ one step


def _run_info(spec: dict | None = None, **changes):
    from avs.train.task import RunInfo

    return RunInfo(**run_fields("crnn-tritrain", TINY, spec, **changes))


def _batch():
    g = torch.Generator().manual_seed(1)
    return {
        name: {
            "x": torch.randn(2, N_FRAMES, N_MELS, generator=g) * 10 - 40,
            "strong": (torch.rand(2, N_FRAMES // 4, 2, generator=g) > 0.5).float(),
            "weak": (torch.rand(2, 2, generator=g) > 0.5).float(),
            "kind": torch.full((2,), code),
        }
        for code, name in enumerate(("strong", "weak", "unlabeled"))
    }


def test_phase1_and_phase2_steps_losses_by_hand():
    from avs.models.crnn_tritrain import orthogonality
    from avs.train.task import StepInfo, create_task
    from avs.train.tasks.sed_tritrain import masked_bce, pseudo_labels

    params = {"strong_batch": 2, "weak_batch": 2, "unlabeled_batch": 2, "phase1_epochs": 1}
    params["alpha_schedule"] = "constant"
    task = create_task("sed-tritrain", {**params, "alpha": 0.7}, _run_info())
    torch.manual_seed(0)
    mods = task.build()
    task.on_fit_start(mods)
    task.on_epoch_start(mods, 1)
    batch = _batch()
    info = StepInfo(epoch=1, step=0, epochs=2, steps_per_epoch=4)
    out = task.training_step(mods, batch, info)
    x = torch.cat([batch[n]["x"] for n in ("strong", "weak", "unlabeled")])
    y_strong = batch["strong"]["strong"]
    y_weak = torch.cat([batch["strong"]["weak"], batch["weak"]["weak"]])
    real = torch.tensor([0, 0, 1, 1, 1, 1.0])
    mods.net.train()
    got = mods.net(x, alpha=0.7)

    def l_y(head):
        s, w = got[head]
        return F.binary_cross_entropy(s[:2], y_strong) + F.binary_cross_entropy(w[:4], y_weak)

    d = F.binary_cross_entropy_with_logits(got["domain"], real[:, None].expand(6, N_FRAMES // 4))
    ortho = orthogonality(*mods.net.labeler_weights())
    want = l_y("f1") + l_y("f2") + l_y("ft") + 1.0 * ortho + d
    assert float(out.loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    assert out.sums["orthogonality"] / 6 == pytest.approx(float(ortho.detach()), rel=1e-5)
    assert out.sums["domain_bce"] / 6 == pytest.approx(float(d.detach()), rel=1e-5)
    assert out.sums["alpha"] / 6 == pytest.approx(0.7)
    # the GRL in the step: D's gradient descends L_d, F's part from D is reversed; F1 gets gradient in phase 1
    out.loss.backward()
    assert mods.net.heads["f1"].fc1.weight.grad is not None and mods.net.domain.out.weight.grad is not None

    # phase 2: the labeler is the phase-1 network, F1 / F2 leave the loss, Ft learns the agreed pseudo-labels
    mods.net.zero_grad()
    with torch.no_grad():
        for p in mods.net.parameters():
            p.add_(0.01)  # "phase-1 training" moved the weights: the labeler must take these
    task.on_epoch_start(mods, 2)
    assert task.phase == 2 and task.state_dict() == {"phase": 2}
    for a, b in zip(mods.aux["labeler"].parameters(), mods.net.parameters(), strict=True):
        assert torch.equal(a, b)
    out2 = task.training_step(mods, batch, StepInfo(epoch=2, step=4, epochs=2, steps_per_epoch=4))
    got = mods.net(x, alpha=0.7)
    with torch.no_grad():
        lab = mods.aux["labeler"].eval()(x[2:], with_domain=False)
    target, mask = pseudo_labels(lab["f1"][0], lab["f2"][0], 0.5)
    c_target, c_mask = pseudo_labels(lab["f1"][1][2:], lab["f2"][1][2:], 0.5)
    d = F.binary_cross_entropy_with_logits(got["domain"], real[:, None].expand(6, N_FRAMES // 4))
    want = l_y("ft") + masked_bce(got["ft"][0][2:], target, mask) + masked_bce(got["ft"][1][4:], c_target, c_mask) + d
    assert float(out2.loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    assert "f1_frame_bce" not in out2.sums and "orthogonality" not in out2.sums
    assert 0.0 <= out2.sums["pseudo_labelled"] / 6 <= 1.0
    out2.loss.backward()
    assert mods.net.heads["f1"].fc1.weight.grad is None  # F1 and F2 are out of phase 2
    # a run whose epochs end before phase 2 is refused
    with pytest.raises(ValueError, match="no phase 2"):
        task.training_step(mods, batch, StepInfo(epoch=1, step=0, epochs=1, steps_per_epoch=4))


def test_config_refuses_unused_or_impossible_streams():
    from avs.train.task import task_config

    with pytest.raises(ValueError, match="unlabeled rows feed only"):
        task_config("sed-tritrain", {"adversarial": "none", "tri_training": False})
    with pytest.raises(ValueError, match="synthetic"):
        task_config("sed-tritrain", {"strong_batch": 0})
    task_config("sed-tritrain", {"adversarial": "none", "tri_training": False, "unlabeled_batch": 0})


def test_presets_cover_table1_rows():
    from avs.train.presets import TRAIN_PRESETS

    rows = {
        "dcase2019-tritrain-baseline": ("none", False),
        "dcase2019-tritrain-adv-whole": ("whole", False),
        "dcase2019-tritrain-adv-time": ("time", False),
        "dcase2019-tritrain-tri": ("none", True),
        "dcase2019-tritrain-adv-whole-tri": ("whole", True),
        "dcase2019-tritrain-adv-time-tri": ("time", True),
    }
    for name, (adv, tri) in rows.items():
        p = TRAIN_PRESETS[name]
        assert (p["task_params"]["adversarial"], p["task_params"]["tri_training"]) == (adv, tri), name
        assert p["optimizer"] == {"name": "adam", "lr": 0.001, "betas": [0.9, 0.999], "weight_decay": 0.0}
        assert p["model"] == "crnn-tritrain"
        sizes = [p["task_params"][k] for k in ("strong_batch", "weak_batch", "unlabeled_batch")]
        assert sum(sizes) == 64 or (not tri and adv == "none" and sizes[2] == 0)


# ------------------------------------------------------------------------------------------------ Ray


def _config(root: Path, out: Path):
    from avs.train.config import train_config

    return train_config(
        {
            "shards": str(root),
            "out": str(out),
            "preset": "dcase2019-tritrain-adv-time-tri",
            "model_params": TINY,
            "classes": list(CLASSES),
            "epochs": 2,
            "seed": 3,
            "deterministic": True,
            "shuffle_buffer_rows": 4,
            "max_failures": 1,
            "cache_rows": 100,
            "task_params": {"strong_batch": 2, "weak_batch": 2, "unlabeled_batch": 2, "phase1_epochs": 1},
        }
    )


@pytest.mark.ray
def test_tritrain_switches_phase_resumes_in_phase2_exactly_and_predicts(ray_local, tmp_path):
    from avs.train.job import run_train
    from avs.train.loop import STATE_FILE, TENSORS_FILE
    from avs.train.predict import PredictConfig, run_predict

    root = tmp_path / "feats"
    counts = write_desed_shards(root, real_offset_db=6.0)
    plain = run_train(_config(root, tmp_path / "plain"))
    flag = tmp_path / "failed.flag"
    resumed = run_train(_config(root, tmp_path / "resumed"), fail_once={"epoch": 2, "flag": str(flag)})
    assert flag.exists() and resumed["starts"] == [1, 2]  # failed in epoch 2 = phase 2, resumed there
    first, last = plain["history"]
    assert "train_orthogonality" in first and "train_f1_frame_bce" in first and "train_pseudo_labelled" not in first
    assert "train_pseudo_labelled" in last and "train_f1_frame_bce" not in last and "train_domain_bce" in last
    assert last["val_samples"] == counts["validation"] and {"val_event_f1", "val_event_f1_f1"} <= set(last)

    def final(run: Path) -> dict:
        folders = [p for p in (run / "ray").glob("checkpoint_*") if (p / STATE_FILE).exists()]
        latest = max(folders, key=lambda p: json.loads((p / STATE_FILE).read_text())["epoch"])
        return torch.load(latest / TENSORS_FILE, weights_only=True)

    a, b = final(tmp_path / "plain"), final(tmp_path / "resumed")
    assert a["step"] == b["step"] == 2 * 4 and a["task"] == b["task"] == {"phase": 2}
    for part in ("net", "labeler"):
        sa = a["net"] if part == "net" else a["aux"]["labeler"]
        sb = b["net"] if part == "net" else b["aux"]["labeler"]
        for key in sa:
            assert torch.equal(sa[key], sb[key]), (part, key)
    # the labeler is the network at the end of phase 1, not the final one
    assert any(not torch.equal(a["net"][k], a["aux"]["labeler"][k]) for k in a["net"] if k.startswith("heads.ft"))

    pred = run_predict(PredictConfig(out=str(tmp_path / "pred"), model=str(tmp_path / "plain"), split="validation"))
    table = pq.read_table(tmp_path / "pred" / "predictions.parquet")
    assert table.schema.metadata[b"avs.kind"] == b"frame_scores" and pred["kind"] == "frame_scores"
    assert table.num_rows == counts["validation"] * (N_FRAMES // 4)
    _served_sed_answer_equals_avs_predict(root, tmp_path / "plain", tmp_path / "pred")


def _served_sed_answer_equals_avs_predict(shards: Path, run: Path, pred: Path) -> None:
    """The online service's SED path (avs serve's /predict/<run>: Task.inputs_from_tables -> predict_clips ->
    encode_prediction) on one clip's shard rows gives avs predict's frame scores, and the events avs predict's
    detections.tsv decodes from them (``task.decode(frame_scores_by_clip(...))``, write_detections' own call)."""
    import dataclasses
    import io

    import numpy as np
    import pyarrow as pa

    from avs.models.checkpoint import load_model
    from avs.models.files import model_file
    from avs.serve.config import ARROW, JSON, NPZ
    from avs.serve.encode import encode_prediction
    from avs.serve.runs import ServedRun, predict_clips
    from avs.train.predict import frame_scores_by_clip, task_of

    model, meta = load_model(model_file(str(run)))
    task = task_of(meta)
    served = ServedRun("sed", model.eval(), task, tuple(task.classes()), task.prediction, None, {}, {"task": "x"})
    table = pq.read_table(pred / "predictions.parquet")
    cid = sorted(set(table.column("clip_id").to_pylist()))[0]
    name = task.run.features[0]
    rows = pq.read_table(shards / name, filters=[("clip_id", "=", cid)])
    answer = predict_clips(served, [task.inputs_from_tables({name: rows})])[0]
    hop_s = float(table.schema.metadata[b"avs.hop_s"])
    assert answer["kind"] == "sed_events" and answer["hop_s"] == pytest.approx(hop_s)
    want = table.filter(pa.compute.field("clip_id") == cid).sort_by("segment")
    got = answer["rows"]
    np.testing.assert_array_equal(got["segment"], want.column("segment").to_numpy())
    for c in served.classes:
        np.testing.assert_allclose(got[c], want.column(c).to_numpy(), atol=1e-5)

    # events: at a threshold this barely trained model crosses (its median score), so that there are some
    scores = np.stack([want.column(c).to_numpy() for c in served.classes], axis=1)  # (frames, classes)
    meta["extra"]["task"]["params"] = {**meta["extra"]["task"]["params"], "threshold": float(np.median(scores))}
    low = task_of(meta)
    answer = predict_clips(dataclasses.replace(served, task=low), [low.inputs_from_tables({name: rows})])[0]
    batch_events = low.decode(frame_scores_by_clip(want, served.classes))[cid]
    served_events = [(e["onset_s"], e["offset_s"], e["label"]) for e in answer["events"]]
    assert batch_events and [e[2] for e in served_events] == [e[2] for e in batch_events]
    np.testing.assert_allclose([e[:2] for e in served_events], [e[:2] for e in batch_events], atol=1e-3)

    doc = json.loads(encode_prediction(answer, served.classes, JSON))  # the three answer formats
    assert doc["events"] == answer["events"] and len(doc["rows"]) == len(got["segment"])
    with pa.ipc.open_stream(encode_prediction(answer, served.classes, ARROW)) as reader:
        arrow = reader.read_all()
    assert json.loads(arrow.schema.metadata[b"avs.response"])["events"] == answer["events"]
    npz = np.load(io.BytesIO(encode_prediction(answer, served.classes, NPZ)))
    assert npz["scores"].shape == (len(got["segment"]), len(served.classes))


def test_bce_of_probabilities_runs_under_autocast():
    from avs.train.losses import bce_probs

    p, y = torch.tensor([0.2, 0.9]), torch.tensor([0.0, 1.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = bce_probs(p.bfloat16(), y)
    assert got.dtype == torch.float32 and float(got) == pytest.approx(float(F.binary_cross_entropy(p, y)), rel=1e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["sed-tritrain", "sed-mean-teacher"])
def test_sed_steps_on_cuda_under_amp(name):
    """CUDA autocast refuses binary_cross_entropy: the SED tasks' losses must run with AMP on (the loop's
    default on GPUs)."""
    from avs.train.task import StepInfo, create_task

    params = {"strong_batch": 2, "weak_batch": 2, "unlabeled_batch": 2}
    if name == "sed-mean-teacher":
        from avs.train.task import RunInfo

        run = RunInfo(**run_fields("crnn-dcase2020", TINY_CRNN))
    else:
        run = _run_info()
    task = create_task(name, params, run)
    mods = task.build()
    mods.net = mods.net.cuda()
    task.on_fit_start(mods)
    for m in mods.aux.values():
        m.cuda()
    batch = {k: {c: t.cuda() for c, t in v.items()} for k, v in _batch().items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = task.training_step(mods, batch, StepInfo(epoch=1, step=0, epochs=2, steps_per_epoch=4))
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_phase2_epoch_without_positive_pseudo_labels_warns():
    from avs.train.task import create_task

    params = {"adversarial": "none", "tri_training": True, "phase1_epochs": 1}
    task = create_task("sed-tritrain", params, _run_info())
    task.phase = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task.train_metrics({"pseudo_positive": 0.0}, 4.0)  # phase 1: no pseudo-labels by design, no warning
    task.phase = 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert task.train_metrics({"pseudo_positive": 0.8}, 4.0)["train_pseudo_positive"] == 0.2
    with pytest.warns(RuntimeWarning, match="no positive pseudo-label"):
        task.train_metrics({"pseudo_positive": 0.0, "loss": 2.0}, 4.0)
