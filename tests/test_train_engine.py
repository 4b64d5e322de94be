"""The training engine (avs.train.loop + task plugins) with a real local Ray, on tiny generated shards.

- paper 000 on the engine: seeded runs of the three input families give the metrics the pre-engine trainer
  gave (pinned below);
- a plugin task (tests/plugins/ema_task.py, an EMA teacher) trains through the engine, and resumed after an
  injected failure it ends with exactly the weights of an uninterrupted seeded run;
- location-disjoint folds (paper 000 Table 3) train end to end and the ensemble averages the fold models.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from avs.testing.train_shards import CLASSES, CLIP_SETS, write_tiny_shards

PLUGIN = str(Path(__file__).parent / "plugins" / "ema_task.py")
TINY = {"backbone": "test_efficientnet", "random_init": True}  # timm's tiny test model, random weights

# Per-epoch metrics of the trainer before the engine (commit 373d68d, with its data order seeded as the engine
# seeds it: randomize_block_order(seed), local_shuffle_seed = shuffle_seed(seed, epoch, rank), preserve_order),
# for the configs of `_family_config`; measured twice, identical both times. The engine must reproduce them.
PINNED = {
    "logmel": [
        (3.126058499018351, 0.16666666666666666, 1.254264801097697e26, 0.5555555555555556),
        (2.9245676729414196, 0.3888888888888889, 4703186716.444445, 0.3888888888888889),
    ],
    "frame": [
        (1.8383027414480846, 0.3333333333333333, 1637.0237630208333, 0.5),
        (1.282475487952904, 0.8333333333333334, 11044.667317708334, 0.3333333333333333),
    ],
    "clip": [
        (0.46985961496829987, 0.5833333333333334, 0.6380010445912679, 1.0),
        (0.007296307245269418, 1.0, 0.36603689193725586, 1.0),
    ],
}
PINNED_BEST = {"logmel": 1, "frame": 1, "clip": 2}
# These tiny seeded runs are chaotic (val log-loss 1e26): a CPU whose conv kernels round differently (another
# oneDNN ISA) ends epoch 1 0.2-0.4 % away and flips validation accuracies. The exact check runs where the kernels
# give the pinning machine's bits (this fingerprint, one thread as in the Ray Train worker); elsewhere the run
# must be close in its first epoch, where the chaos has not grown yet, and pick the same best epoch.
PINNED_KERNELS = "64d6a447440e76b6"


def _kernel_fingerprint() -> str:
    """sha256 (16 hex) of a seeded forward + backward of TINY's model on two input shapes, on one thread."""
    import hashlib

    import timm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        net = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
        digest = hashlib.sha256()
        for shape in ((4, 3, 32, 32), (8, 3, 64, 48)):
            net.zero_grad()
            out = net(torch.randn(*shape, generator=gen))
            out.square().sum().backward()
            digest.update(out.detach().numpy().tobytes())
            for p in net.parameters():
                digest.update(p.grad.numpy().tobytes())
        return digest.hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("engine-shards")
    return root, write_tiny_shards(root)


def _family_config(family: str, root: Path, out: Path):
    from avs.train.config import TrainConfig
    from avs.train.optim import OptimizerConfig

    common = {
        "shards": str(root),
        "out": str(out),
        "classes": CLASSES,
        "epochs": 2,
        "shuffle_buffer_rows": 16,
        "seed": 3,
        "deterministic": True,
        "optimizer": OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4),
    }
    per = {
        "logmel": {"model": "timm-cnn", "features": ("logmel",), "model_params": TINY, "batch_size": 8},
        "frame": {
            "model": "timm-cnn",
            "features": ("frames",),
            "model_params": TINY,
            "batch_size": 4,
            "task_params": {"image_size": (32, 32), "augment": False},
        },
        "clip": {"model": "clip-late-fusion", "features": tuple(CLIP_SETS), "batch_size": 4},
    }
    return TrainConfig(**common, **per[family])


@pytest.mark.ray
@pytest.mark.parametrize("family", ["logmel", "frame", "clip"])
def test_paper000_on_the_engine_keeps_the_pinned_metrics(ray_local, shards, tmp_path, family):
    from avs.train.job import run_train

    root, _ = shards
    summary = run_train(_family_config(family, root, tmp_path / family))
    got = [(h["train_loss"], h["train_accuracy"], h["val_log_loss"], h["val_accuracy"]) for h in summary["history"]]
    if family == "clip" or _kernel_fingerprint() == PINNED_KERNELS:  # the clip MLP is not chaotic: exact anywhere
        np.testing.assert_allclose(np.asarray(got), np.asarray(PINNED[family]), rtol=1e-6)
    else:
        first, pinned = got[0], PINNED[family][0]
        np.testing.assert_allclose(first[0], pinned[0], rtol=2e-2)  # epoch-1 train loss
        assert first[1] == pytest.approx(pinned[1]) and all(np.isfinite(np.asarray(got)).ravel())
    assert summary["best_epoch"] == PINNED_BEST[family] and summary["task"] == "scene"
    assert summary["input"] == family and summary["monitor"] == {"metric": "val_accuracy", "mode": "max"}


def _ema_config(root: Path, out: Path, epochs: int = 2):
    from avs.train.config import TrainConfig
    from avs.train.optim import OptimizerConfig

    return TrainConfig(
        shards=str(root),
        out=str(out),
        task="test-ema",
        plugins=(PLUGIN,),
        task_params={"decay": 0.8},
        features=("clip_a",),
        classes=CLASSES,
        epochs=epochs,
        batch_size=4,
        shuffle_buffer_rows=8,
        seed=5,
        deterministic=True,
        optimizer=OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.01),
        max_failures=1,
    )


def _final_state(out: Path) -> dict:
    import json

    from avs.train.loop import STATE_FILE, TENSORS_FILE

    folders = [p for p in (out / "ray").glob("checkpoint_*") if (p / STATE_FILE).exists()]
    latest = max(folders, key=lambda p: json.loads((p / STATE_FILE).read_text())["epoch"])
    return torch.load(latest / TENSORS_FILE, weights_only=True)


@pytest.mark.ray
def test_plugin_task_with_ema_teacher_resumes_bit_for_bit(ray_local, shards, tmp_path):
    """The plugin path: a task the engine knows only by name (loaded from a .py file in every worker), with extra
    state (its EMA teacher). A run that fails at the start of epoch 2 and resumes from the epoch-1 checkpoint ends
    with exactly the student, teacher and optimizer state of an uninterrupted run."""
    from avs.models import load_model
    from avs.train.job import run_train

    root, counts = shards
    plain = run_train(_ema_config(root, tmp_path / "plain"))
    flag = tmp_path / "failed.flag"
    resumed = run_train(_ema_config(root, tmp_path / "resumed"), fail_once={"epoch": 2, "flag": str(flag)})
    assert flag.exists() and resumed["starts"] == [1, 2] and plain["starts"] == [1]
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert plain["task"] == "test-ema" and plain["monitor"]["metric"] == "val_teacher_accuracy"
    assert plain["history"][-1]["val_samples"] == counts["frames"] // 2
    a, b = _final_state(tmp_path / "plain"), _final_state(tmp_path / "resumed")
    assert a["step"] == b["step"] > 0
    for part in ("net", "aux"):
        flat_a = a[part] if part == "net" else a[part]["teacher"]
        flat_b = b[part] if part == "net" else b[part]["teacher"]
        assert flat_a.keys() == flat_b.keys()
        for key in flat_a:
            assert torch.equal(flat_a[key], flat_b[key]), (part, key)
    assert not all(torch.equal(a["net"][k], a["aux"]["teacher"][k]) for k in a["net"])  # teacher != student
    for h_plain, h_res in zip(plain["history"], resumed["history"], strict=True):
        assert h_plain["train_loss"] == h_res["train_loss"] and h_plain["val_accuracy"] == h_res["val_accuracy"]
    # what the task exports (the teacher) is the best model
    model, meta = load_model(tmp_path / "plain" / "best" / "model.safetensors")
    assert meta["extra"]["task"]["name"] == "test-ema" and model.model_name == "clip-late-fusion"
    best = plain["best_epoch"]
    assert meta["extra"]["metrics"]["val_teacher_accuracy"] == plain["history"][best - 1]["val_teacher_accuracy"]


@pytest.mark.ray
def test_location_folds_train_and_the_ensemble_averages_fold_models(ray_local, shards, tmp_path):
    """Paper 000 Table 3 (S03 / S04): five location-disjoint folds of the whole set; each fold model validates
    on locations it never saw; `avs ensemble` with several inputs of a family averages them."""
    from avs.cli import main as avs_main
    from avs.train.job import fold_clips, run_train
    from avs.train.predict import PredictConfig, run_predict

    root, _ = shards
    base = dataclasses.replace(
        _family_config("clip", root, tmp_path / "f0"), folds=5, fold=0, train_split="all", epochs=1
    )
    table = pq.read_table(root / "clip_a", columns=["clip_id", "location"]).to_pylist()
    where = {r["clip_id"]: r["location"] for r in table}
    seen_val: set[str] = set()
    for k in range(5):
        train, val = fold_clips(dataclasses.replace(base, fold=k))
        assert not {where[c] for c in train} & {where[c] for c in val}  # no location on both sides
        assert not set(train) & set(val) and len(train) + len(val) == len(where)
        seen_val |= set(val)
    assert seen_val == set(where)  # every clip is a validation clip exactly once

    preds = []
    for k in (0, 1):
        cfg = dataclasses.replace(base, out=str(tmp_path / f"f{k}"), fold=k)
        summary = run_train(cfg)
        _, val = fold_clips(cfg)
        rows_per_clip = 2  # frames per clip
        assert summary["history"][-1]["val_samples"] == rows_per_clip * len(val)
        assert summary["fold"]["fold"] == k
        run_predict(PredictConfig(out=str(tmp_path / f"p{k}"), model=cfg.out, split="evaluate"))
        preds.append(pq.read_table(tmp_path / f"p{k}" / "predictions.parquet"))
    out = tmp_path / "ens"
    assert avs_main(["ensemble", "--clip", str(tmp_path / "p0"), str(tmp_path / "p1"), "--out", str(out)]) == 0
    from avs.ensemble import Scores

    mean = (Scores.from_arrow(preds[0]).probs + Scores.from_arrow(preds[1]).probs) / 2
    seg = Scores.from_arrow(pq.read_table(out / "segments" / "C04.parquet"))
    np.testing.assert_allclose(seg.probs, mean, atol=1e-9)


def test_scene_task_steps_without_ray():
    """A task's hooks are plain methods: training_step / validation_step on a hand-made batch, no Ray."""
    from avs.config import to_dict
    from avs.train.data import DataSpec
    from avs.train.task import RunInfo, StepInfo, create_task

    spec = DataSpec("s", "clip", ("clip_a",), ("clip_a",), ((8,),), CLASSES)
    run = RunInfo(
        shards="s",
        model="clip-late-fusion",
        model_params={"input_dims": [8], "branch_names": ["clip_a"], "num_classes": 3},
        features=("clip_a",),
        classes=CLASSES,
        label_column="labels",
        label_table=None,
        train_split="train",
        val_split="evaluate",
        train_clips=None,
        val_clips=None,
        batch_size=4,
        max_train_rows=None,
        max_val_rows=None,
        seed=0,
        spec={"data": to_dict(spec)},
    )
    task = create_task("scene", {"focal_gamma": 0.0}, run)  # gamma 0: focal loss = cross-entropy
    torch.manual_seed(0)
    mods = task.build()
    mods.net.eval()  # (no dropout: the loss is compared with a second forward)
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 1])
    out = task.training_step(mods, {"train": {"x": x, "y": y}}, StepInfo(epoch=1, step=0, epochs=1, steps_per_epoch=1))
    want = torch.nn.functional.cross_entropy(mods.net(x), y)
    assert out.rows == 4 and torch.allclose(out.loss, want)
    assert out.sums["loss"] == pytest.approx(float(want.detach()) * 4)
    out.loss.backward()  # a real graph
    assert any(p.grad is not None for p in mods.net.parameters())
    sums = task.validation_step(mods, {"x": x, "y": y})
    metrics = task.validation_metrics(sums)
    assert metrics["val_samples"] == 4 and metrics["val_log_loss"] == pytest.approx(sums["log_loss"] / 4)
    assert task.classes() == CLASSES and task.prediction == "clip_probs"
    probs = task.predict_scores(mods.net, x)
    assert torch.allclose(probs.sum(1), torch.ones(4))
    assert task.best_key({"val_accuracy": 0.5, "val_log_loss": 1.0, "epoch": 2}) > task.best_key(
        {"val_accuracy": 0.5, "val_log_loss": 2.0, "epoch": 1}
    )  # ties on accuracy: the lower log-loss wins


@pytest.mark.ray
def test_labels_from_a_joined_table(ray_local, shards, tmp_path):
    """Labels from a table joined on clip_id + segment (such as `avs cluster`'s assignments.parquet) instead of
    the shards' column; rows the table does not name have no label and are not trained on."""
    import pyarrow as pa

    from avs.train.data import DataSpec, distinct_labels, feature_info, label_counts, split_dataset

    root, counts = shards
    rows = pq.read_table(root / "clip_a", columns=["clip_id", "segment", "labels", "split"]).to_pylist()
    named = [r for r in rows if r["segment"] == 0]  # label only the first frame of each clip
    cluster = {c: 10 + i for i, c in enumerate(CLASSES)}  # class -> a cluster id
    table = pa.table(
        {
            "clip_id": [r["clip_id"] for r in named],
            "segment": pa.array([r["segment"] for r in named], pa.int32()),
            "cluster": pa.array([cluster[r["labels"][0]] for r in named], pa.int32()),
        }
    )
    path = tmp_path / "assignments.parquet"
    pq.write_table(table, path)
    info = feature_info(str(root), "clip_a")
    assert distinct_labels(info, "cluster", "train", str(path)) == ["10", "11", "12"]  # numeric order
    spec = DataSpec(str(root), "clip", ("clip_a",), ("clip_a",), ((8,),), ("10", "11", "12"), "cluster", None)
    spec = dataclasses.replace(spec, label_table=str(path))
    got = label_counts(spec, "train")
    assert got["labelled"] == len([r for r in named if r["split"] == "train"]) and got["unknown"] == got["labelled"]
    batch = split_dataset(spec, "train", keep_keys=True).take_all()
    assert len(batch) == got["labelled"]
    by_clip = {r["clip_id"]: r["labels"][0] for r in named}
    for r in batch:
        assert r["segment"] == 0 and ("10", "11", "12")[r["y"]] == str(cluster[by_clip[r["clip_id"]]])


@pytest.mark.ray
def test_two_workers_train_with_ddp(ray_local, shards, tmp_path):
    """Two Ray Train workers (DDP over gloo): each takes the same number of steps (drop_last on its half of the
    rows), the validation sums add up over both, and the EMA teacher is created after the wrap."""
    from avs.train.job import run_train

    root, counts = shards
    cfg = dataclasses.replace(
        _ema_config(root, tmp_path / "ddp"), num_workers=2, cpus_per_worker=0.5, epochs=2, max_failures=0
    )
    summary = run_train(cfg)
    train_rows = counts["frames"] // 2
    per_worker_steps = (train_rows // 2) // cfg.batch_size
    assert [h["step"] for h in summary["history"]] == [per_worker_steps, 2 * per_worker_steps]
    assert all(h["train_samples"] == 2 * per_worker_steps * cfg.batch_size for h in summary["history"])
    assert all(h["val_samples"] == counts["frames"] // 2 for h in summary["history"])  # summed over both
