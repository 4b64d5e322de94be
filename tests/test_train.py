"""Training on Ray Train, predictions, ensemble and evaluation CLIs, on tiny shards written here with pyarrow.

The shards follow the layout of `avs extract` (README): SHARDS/<feature_set>/part-NNNNN.parquet with clip_id,
segment, start_s, end_s, labels, split, location and the feature column (shape JSON in ``avs.shape``); the three
CLIP-like sets have the same part files and rows, as the extractor writes them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from avs.classes import SCENE_CLASSES
from avs.ensemble import EnsembleConfig, Scores, ensemble_paper000
from avs.testing.train_shards import CLASSES, CLIP_SETS, LOGMEL_SHAPE, write_tiny_shards


def _job(name: str):
    """``jobs/<name>.py`` as a module (jobs/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"jobs_{name}", Path(__file__).parents[1] / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TAU = SCENE_CLASSES
TINY = "test_efficientnet"  # timm's tiny test model


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("shards")
    return root, write_tiny_shards(root)


# ------------------------------------------------------------------------------------------------ no Ray


def test_train_config_defaults_presets_and_cli_layering(tmp_path):
    """Flags come from TrainConfig and the task configs; layers: preset < YAML < flags < --set."""
    from avs.cli import build_parser
    from avs.train.cli import train_config_from_args
    from avs.train.config import TrainConfig

    cfg = TrainConfig(shards="s", out="o", model="timm-cnn", features=("logmel",))
    assert (cfg.batch_size, cfg.epochs, cfg.schedule.milestones, cfg.optimizer.momentum) == (24, 20, (5, 10, 15), 0.9)
    assert cfg.classes is None and cfg.task == "scene"  # classes: from the preset or the data, not a TAU default
    yaml_file = tmp_path / "t.yaml"
    yaml_file.write_text("epochs: 7\noptimizer: {lr: 0.5}\nmodel_params: {backbone: resnet10t}\n")
    args = build_parser().parse_args(
        [
            "train",
            "S",
            "--out",
            "O",
            "--preset",
            "dcase2021-t1b-logmel",
            "--config",
            str(yaml_file),
            "--epochs",
            "3",
            "--model",
            "timm-cnn",
            "--random-init",
            "--focal-gamma",
            "3",
            "--no-augment",
            "--set",
            "model_params.drop_rate=0.1",
            "--set",
            "optimizer.nesterov=true",
            "--use-gpu",
            "false",
        ]
    )
    cfg = train_config_from_args(args)
    assert cfg.epochs == 3 and cfg.optimizer.lr == 0.5 and cfg.use_gpu is False and cfg.features == ("logmel",)
    assert cfg.optimizer.nesterov is True and cfg.batch_size == 24 and cfg.preset == "dcase2021-t1b-logmel"
    assert cfg.model_params == {"backbone": "resnet10t", "drop_rate": 0.1} and cfg.random_init is True
    assert cfg.task_params["focal_gamma"] == 3.0 and cfg.task_params["augment"] is False
    assert cfg.task_params["loss"] == "focal"  # from the preset
    assert cfg.classes == TAU  # the dcase2021-t1b presets name the TAU scenes
    with pytest.raises(ValueError):
        TrainConfig(shards="s", out="o", features=())
    with pytest.raises(ValueError, match="folds and fold"):
        TrainConfig(shards="s", out="o", folds=5)
    with pytest.raises(ValueError, match="torch_threads"):
        TrainConfig(shards="s", out="o", torch_threads=0)
    with pytest.raises(ValueError, match="cache_rows"):
        TrainConfig(shards="s", out="o", cache_rows=-1)
    laptop = build_parser().parse_args(["train", "S", "--out", "O", "--torch-threads", "2", "--cache-rows", "500"])
    assert (train_config_from_args(laptop).torch_threads, train_config_from_args(laptop).cache_rows) == (2, 500)
    bad = build_parser().parse_args(["train", "S", "--out", "O", "--set", "optimizer.gamma=0.5"])
    with pytest.raises((ValueError, TypeError, KeyError)):
        train_config_from_args(bad)  # unknown keys stay refused


def test_data_batches_join_decode_and_stats(shards, tmp_path):
    """The per-part CLIP join matches rows by key (clip_b is stored shuffled); JPEG frames decode + resize;
    label mapping; channel statistics."""
    from PIL import Image

    from avs.train.data import DataSpec, feature_info, frame_batch, read_joined_part, vector_batch

    root, _ = shards
    infos = [feature_info(str(root), n) for n in CLIP_SETS]
    spec = DataSpec(
        shards=str(root),
        family="clip",
        features=tuple(CLIP_SETS),
        columns=tuple(CLIP_SETS),
        shapes=tuple(i.shape for i in infos),
        classes=CLASSES,
    )
    part = infos[0].parts[0]  # the first part's name, the same in every feature set of one run
    t = read_joined_part(spec, part, "train")
    x = np.asarray(t.column("__x").to_pylist(), dtype=np.float32)
    assert x.shape == (t.num_rows, 8 + 6 + 6) and set(t.column("split").to_pylist()) == {"train"}
    for name, lo, hi in (("clip_a", 0, 8), ("clip_b", 8, 14)):
        ref = pq.read_table(root / name / part)
        lookup = {
            (c, s): v
            for c, s, v in zip(
                ref["clip_id"].to_pylist(), ref["segment"].to_pylist(), ref[name].to_pylist(), strict=True
            )
        }
        for i, (c, s) in enumerate(zip(t["clip_id"].to_pylist(), t["segment"].to_pylist(), strict=True)):
            np.testing.assert_allclose(x[i, lo:hi], lookup[(c, s)], rtol=0, atol=0)

    table = pq.read_table(root / "logmel" / part)
    lspec = DataSpec(
        shards=str(root),
        family="logmel",
        features=("logmel",),
        columns=("logmel",),
        shapes=(LOGMEL_SHAPE,),
        classes=CLASSES,
    )
    b = vector_batch(table, lspec, keep_keys=True, drop_unlabeled=True)
    assert b["x"].shape == (table.num_rows, *LOGMEL_SHAPE)
    assert [CLASSES[i] for i in b["y"]] == [v[0] for v in table["labels"].to_pylist()]

    imgs = []
    for k in range(3):
        buf = io.BytesIO()
        Image.fromarray(np.full((40, 48, 3), 60 * k, np.uint8)).save(buf, format="JPEG")
        imgs.append(buf.getvalue())
    ft = pa.table(
        {
            "clip_id": ["a", "b", "c"],
            "segment": pa.array([0, 0, 0], pa.int32()),
            "image": imgs,
            "labels": [["bus"], ["nope"], ["tram"]],
            "split": ["train"] * 3,
        }
    )
    fspec = DataSpec(
        shards=str(root),
        family="frame",
        features=("frames",),
        columns=("image",),
        shapes=((40, 48, 3),),
        classes=CLASSES,
        image_size=(32, 32),
    )
    fb = frame_batch(ft, fspec, keep_keys=True, drop_unlabeled=True, train=True, augment=True)
    assert fb["x"].shape == (2, 3, 32, 32) and fb["x"].dtype == np.float32 and list(fb["y"]) == [0, 2]
    ev = frame_batch(ft, fspec, keep_keys=False, drop_unlabeled=False, train=False, augment=False)
    assert list(ev["y"]) == [0, -1, 2]  # unknown label kept for prediction (y = -1)
    want = (60 / 255 - 0.485) / 0.229  # black-ish image -> ImageNet-normalised red channel
    assert abs(float(ev["x"][1, 0].mean()) - want) < 0.05


def _predictions(path: Path, rows: list[tuple[str, int, float, str]], probs: np.ndarray, classes=TAU) -> Path:
    """A predictions folder as `avs predict` writes it."""
    path.mkdir(parents=True, exist_ok=True)
    cols = {
        "clip_id": pa.array([r[0] for r in rows], pa.string()),
        "segment": pa.array([r[1] for r in rows], pa.int32()),
        "split": pa.array(["evaluate"] * len(rows), pa.string()),
        "label": pa.array([r[3] for r in rows], pa.string()),
        "start_s": pa.array([r[2] for r in rows], pa.float64()),
        "end_s": pa.array([r[2] + (1.0 if r[1] >= 0 else 0) for r in rows], pa.float64()),
    }
    for j, c in enumerate(classes):
        cols[c] = pa.array(probs[:, j], pa.float64())
    table = pa.table(cols).replace_schema_metadata({b"avs.classes": json.dumps(list(classes)).encode()})
    pq.write_table(table, path / "predictions.parquet")
    return path


def test_ensemble_and_evaluate_clis_write_stages_and_report(tmp_path):
    ensemble_main, evaluate_main = _job("ensemble").main, _job("evaluate").main

    rng = np.random.default_rng(3)
    clip_labels = {f"c{i}": TAU[i % len(TAU)] for i in range(12)}
    audio_rows = [(c, s, float(s), lab) for c, lab in clip_labels.items() for s in range(10)]
    frame_rows = [(c, f, 0.4 + 0.8 * f, lab) for c, lab in clip_labels.items() for f in range(12)]

    def probs(rows, sharp):
        logits = rng.normal(size=(len(rows), len(TAU)))
        for i, r in enumerate(rows):
            logits[i, TAU.index(r[3])] += sharp
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    a1 = _predictions(tmp_path / "a1", audio_rows, probs(audio_rows, 1.0))
    a2 = _predictions(tmp_path / "a2", audio_rows, probs(audio_rows, 1.5))
    v1 = _predictions(tmp_path / "v1", frame_rows, probs(frame_rows, 2.0))
    # the CLIP model's file stores its classes in another order: the ensemble aligns them by name
    c_probs = probs(frame_rows, 2.5)
    shuffled = tuple(reversed(TAU))
    c1 = _predictions(tmp_path / "c1", frame_rows, c_probs[:, [TAU.index(c) for c in shuffled]], shuffled)
    ens = tmp_path / "ens"
    rc = ensemble_main(["--audio", str(a1), str(a2), "--frame", str(v1), "--clip", str(c1), "--out", str(ens)])
    assert rc == 0
    for stage in ("A04", "V04", "C04", "V04_replaced", "C04_replaced", "E01", "E02"):
        assert (ens / f"{stage}.parquet").exists(), stage
    for stage in ("A04", "V04", "C04", "E01", "E02"):
        assert (ens / "segments" / f"{stage}.parquet").exists(), stage
    # the clip-level stages are ensemble_paper000 on the same inputs
    want = ensemble_paper000(
        [Scores.from_arrow(pq.read_table(p / "predictions.parquet"), TAU) for p in (a1, a2)],
        {
            "frame": [Scores.from_arrow(pq.read_table(v1 / "predictions.parquet"), TAU)],
            "clip": [Scores.from_arrow(pq.read_table(c1 / "predictions.parquet"), TAU)],
        },
        EnsembleConfig(),
    )
    for stage, key in (
        ("A04", "audio"),
        ("C04_replaced", "clip_replaced"),
        ("E01", "ensemble"),
        ("E02", "ensemble_pp"),
    ):
        got = Scores.from_arrow(pq.read_table(ens / f"{stage}.parquet"), TAU).reorder(list(want[key].clip_ids))
        np.testing.assert_allclose(got.probs, want[key].probs, rtol=0, atol=1e-12)
    e02 = pq.read_table(ens / "E02.parquet")
    assert e02.column("label").to_pylist() == [clip_labels[c] for c in e02.column("clip_id").to_pylist()]
    seg = pq.read_table(ens / "segments" / "E01.parquet")
    assert seg.num_rows == len(audio_rows) and {"clip_id", "segment", "label"} <= set(seg.column_names)

    # unequal family weights change E01; --margin none drops the replacement stages
    ens2 = tmp_path / "ens2"
    assert (
        ensemble_main(
            [
                "--audio",
                str(a1),
                "--frame",
                str(v1),
                "--clip",
                str(c1),
                "--out",
                str(ens2),
                "--weights",
                "A=0.5,V=1,C=2",
                "--margin",
                "none",
                "--no-segments",
            ]
        )
        == 0
    )
    assert not (ens2 / "V04_replaced.parquet").exists() and not (ens2 / "segments").exists()
    e01w = Scores.from_arrow(pq.read_table(ens2 / "E01.parquet"), TAU)
    a = Scores.from_arrow(pq.read_table(ens2 / "A04.parquet"), TAU).reorder(list(e01w.clip_ids)).probs
    v = Scores.from_arrow(pq.read_table(ens2 / "V04.parquet"), TAU).reorder(list(e01w.clip_ids)).probs
    c = Scores.from_arrow(pq.read_table(ens2 / "C04.parquet"), TAU).reorder(list(e01w.clip_ids)).probs
    audio_cols = [TAU.index(k) for k in ("bus", "park", "tram")]
    raw = (v + 2 * c) / 3
    raw[:, audio_cols] = (0.5 * a + v + 2 * c)[:, audio_cols] / 3.5
    np.testing.assert_allclose(e01w.probs, raw / raw.sum(1, keepdims=True), atol=1e-12)

    report = tmp_path / "report"
    rc = evaluate_main([f"A01={a1}", f"V01={v1}", str(ens), "--out", str(report)])
    assert rc == 0
    for f in (
        "metrics.json",
        "systems.md",
        "systems.csv",
        "per_class.md",
        "report.md",
        "config.yaml",
        "E02/metrics.json",
        "E02/per_class.csv",
        "E02/confusion.png",
        "E02/segments/confusion.png",
        "A01/segments/metrics.json",
        "V04/confusion.png",
    ):
        assert (report / f).exists(), f
    m = json.loads((report / "metrics.json").read_text())
    assert list(m["systems"]) == ["A01", "V01", "A04", "V04", "C04", "E01", "E02"]
    assert m["systems"]["A01"]["segments"]["n"] == len(audio_rows)
    assert m["systems"]["A01"]["clips"]["n"] == len(clip_labels)
    assert m["systems"]["V04"]["segment_kind"] == "frames"
    # clip numbers of a model = metrics of the mean over its segments (paper 000 sec. 2.4)
    from avs.ensemble import average_segments
    from avs.eval.metrics import classification_metrics

    s = average_segments(Scores.from_arrow(pq.read_table(a1 / "predictions.parquet"), TAU))
    want_m = classification_metrics([clip_labels[c] for c in s.clip_ids], s.probs, TAU)
    assert m["systems"]["A01"]["clips"]["log_loss"] == pytest.approx(want_m["log_loss"], abs=1e-12)
    table = (report / "systems.md").read_text()
    assert "E02" in table and "1-s segments" in table and "frames" in table


def test_pair_frames_inside_or_nearest():
    from avs.ensemble.job import Member, pair_frames

    audio = pa.table(
        {"clip_id": ["a", "a", "a"], "segment": [0, 1, 2], "start_s": [0.0, 1.0, 2.0], "end_s": [1.0, 2.0, 3.0]}
    )
    frames = Member(
        "f", pa.table({"clip_id": ["a", "a", "a"], "segment": [0, 1, 2], "start_s": [0.2, 0.7, 2.9]}), ("x", "y")
    )
    fs = Scores(np.asarray(["a|0", "a|1", "a|2"]), np.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), ("x", "y"))
    got = pair_frames(audio, np.asarray(["a|0", "a|1", "a|2"]), frames, fs)
    # segment 0 has frames 0 and 1 inside (mean), segment 1 none (nearest to 1.5 is 0.7), segment 2 frame 2
    np.testing.assert_allclose(got.probs, [[0.5, 0.5], [0.0, 1.0], [0.5, 0.5]])


# ------------------------------------------------------------------------------------------------ Ray


@pytest.mark.ray
def test_train_logmel_end_to_end_then_predict(ray_local, shards, tmp_path):
    from avs.models import load_model
    from avs.models.checkpoint import read_checkpoint
    from avs.train.config import TrainConfig
    from avs.train.job import run_train
    from avs.train.optim import OptimizerConfig
    from avs.train.predict import PredictConfig, run_predict

    root, counts = shards
    cfg = TrainConfig(
        shards=str(root),
        out=str(tmp_path / "run"),
        model="timm-cnn",
        features=("logmel",),
        model_params={"backbone": TINY, "random_init": True},
        epochs=2,
        batch_size=8,
        optimizer=OptimizerConfig(lr=0.05, momentum=0.9, weight_decay=1e-4),
        shuffle_buffer_rows=16,
    )  # no classes: they come from the data (the sorted labels of the train split)
    summary = run_train(cfg)
    hist = summary["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and summary["input"] == "logmel"
    assert summary["classes"] == list(CLASSES)
    n = counts["logmel"] // 2
    assert all(h["val_samples"] == n for h in hist) and all(h["train_samples"] > 0 for h in hist)
    for key in ("train_loss", "val_loss", "val_log_loss", "val_accuracy", "samples_per_s", "lr"):
        assert np.isfinite(hist[-1][key]), key
    assert summary["rows"]["train"]["per_class"] == {c: n // 3 for c in CLASSES}
    out = Path(cfg.out)
    for f in ("best/model.safetensors", "metrics.json", "config.yaml"):
        assert (out / f).exists(), f
    assert json.loads((out / "metrics.json").read_text())["best_epoch"] == summary["best_epoch"]
    assert "batch_size: 8" in (out / "config.yaml").read_text()
    # the best model loads safely and carries its input spec (standardisation from the training split)
    model, meta = load_model(out / "best" / "model.safetensors")
    model.eval()  # (a forward in train mode would move the BatchNorm statistics)
    data = meta["extra"]["data"]
    assert data["features"] == ["logmel"] and data["classes"] == list(CLASSES) and len(data["mean"]) == 3
    assert data["mean"][0] == pytest.approx(-40.0, abs=1.5)  # dB channel, class offsets average out
    assert meta["extra"]["epoch"] == summary["best_epoch"]
    # Ray Train's checkpoints: model.pt (the exported model) and train_state.pt (all a resume needs), both
    # torch.load(weights_only=True)
    ckpts = sorted((out / "ray").glob("checkpoint_*/model.pt"))
    assert ckpts
    torch.load(ckpts[-1], weights_only=True)
    read_checkpoint(ckpts[-1])
    state = torch.load(ckpts[-1].parent / "train_state.pt", weights_only=True)
    assert {"net", "aux", "optimizer", "schedule", "scaler", "task", "rng", "step"} <= set(state)
    with torch.no_grad():
        assert model(torch.randn(2, *LOGMEL_SHAPE)).shape == (2, len(CLASSES))

    pred = run_predict(PredictConfig(out=str(tmp_path / "pred"), model=cfg.out, split="evaluate", batch_size=7))
    table = pq.read_table(tmp_path / "pred" / "predictions.parquet")
    assert table.num_rows == n and pred["rows"] == n and pred["clips"] == n // 3
    assert table.column_names == ["clip_id", "segment", "split", "label", "start_s", "end_s", *CLASSES]
    s = Scores.from_arrow(table)
    assert s.classes == CLASSES and np.allclose(s.probs.sum(1), 1.0)
    assert set(table.column("label").to_pylist()) == set(CLASSES)
    # same numbers as the model applied by hand (standardised inputs)
    ref = pq.read_table(root / "logmel").filter(pa.compute.equal(pa.compute.field("split"), "evaluate"))
    ref = ref.sort_by([("clip_id", "ascending"), ("segment", "ascending")])
    xs = torch.from_numpy(np.asarray(ref.column("logmel").to_pylist(), np.float32).reshape(-1, *LOGMEL_SHAPE))
    m = torch.tensor(data["mean"]).view(1, 3, 1, 1)
    sd = torch.tensor(data["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = torch.softmax(model((xs - m) / sd), dim=1).numpy()
    np.testing.assert_allclose(s.probs, want, atol=1e-5)


@pytest.mark.ray
def test_train_fails_once_resumes_from_checkpoint_then_resume_flag(ray_local, shards, tmp_path):
    from avs.train.config import TrainConfig
    from avs.train.job import run_train
    from avs.train.optim import OptimizerConfig
    from avs.train.predict import PredictConfig, run_predict

    root, counts = shards
    flag = tmp_path / "failed.flag"
    cfg = TrainConfig(
        shards=str(root),
        out=str(tmp_path / "run"),
        features=tuple(CLIP_SETS),
        classes=CLASSES,
        epochs=3,
        batch_size=4,
        optimizer=OptimizerConfig(lr=0.05),
        max_failures=1,
    )
    summary = run_train(cfg, fail_once={"epoch": 2, "flag": str(flag)})
    assert flag.exists()  # the worker did fail once at epoch 2 ...
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]  # ... and training finished every epoch,
    assert summary["starts"] == [1, 2]  # restarting from the epoch-1 checkpoint (not from scratch)
    assert [h["resumed"] for h in summary["history"]] == [False, True, False]
    assert summary["input"] == "clip" and summary["history"][-1]["val_samples"] == counts["frames"] // 2
    # model input dims were filled from the shards
    assert "input_dims:\n  - 8\n  - 6\n  - 6" in (tmp_path / "run" / "config.yaml").read_text()

    # the same folder again: refused without --resume; with it, a longer run goes on from epoch 3
    with pytest.raises(ValueError, match="--resume"):
        run_train(cfg)
    import dataclasses

    more = run_train(dataclasses.replace(cfg, epochs=4, resume=True))
    assert [h["epoch"] for h in more["history"]] == [1, 2, 3, 4] and more["starts"] == [1, 2, 4]

    pred = run_predict(PredictConfig(out=str(tmp_path / "pred"), model=str(tmp_path / "run"), split=None))
    assert pred["rows"] == counts["frames"] and set(
        pq.read_table(tmp_path / "pred" / "predictions.parquet").column("split").to_pylist()
    ) == {"train", "evaluate"}


@pytest.mark.ray
def test_predict_zeroshot_reorders_stored_probabilities(ray_local, shards, tmp_path):
    predict_main = _job("predict").main

    root, counts = shards
    out = tmp_path / "zs"
    assert (
        predict_main(
            [
                "--zeroshot",
                "zeroshot_x",
                "--shards",
                str(root),
                "--split",
                "evaluate",
                "--classes",
                ",".join(CLASSES),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    got = pq.read_table(out / "predictions.parquet")
    assert got.num_rows == counts["frames"] // 2
    stored = pq.read_table(root / "zeroshot_x").filter(pa.compute.equal(pa.compute.field("split"), "evaluate"))
    stored = stored.sort_by([("clip_id", "ascending"), ("segment", "ascending")])
    x = np.asarray(stored.column("zeroshot_x").to_pylist())  # stored class order: reversed(CLASSES)
    s = Scores.from_arrow(got)
    assert s.classes == CLASSES
    np.testing.assert_allclose(s.probs, x[:, ::-1], atol=1e-6)
    assert got.column("start_s").to_pylist() == stored.column("timestamp_s").to_pylist()
    assert json.loads(got.schema.metadata[b"avs.predict"])["kind"] == "zeroshot"


def test_trainer_without_state_api_leaves_out_only_the_placement_group_cleaner(tmp_path):
    """Without a dashboard (the embedded Ray), Ray Train V2's PlacementGroupCleaner would ask the State API once a
    second and log "Failed to query Ray Train Controller actor state" each time: the trainer leaves it out."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from avs.train.job import trainer_class

    def names(state_api: bool) -> list[str]:
        trainer = trainer_class(state_api)(
            lambda: None,
            scaling_config=ScalingConfig(num_workers=1),
            run_config=RunConfig(storage_path=str(tmp_path), name=f"api-{state_api}"),
        )
        return [type(c).__name__ for c in trainer._create_default_callbacks()]

    assert trainer_class(True) is TorchTrainer
    with_api, without = names(True), names(False)
    assert "PlacementGroupCleanerCallback" in with_api  # (if Ray drops it, this test and trainer_class can go)
    assert without == [n for n in with_api if n != "PlacementGroupCleanerCallback"]


@pytest.mark.ray
def test_train_cli_terminal_shows_progress_lines_not_ray_chatter(shards, tmp_path):
    """`python jobs/train.py` as a user runs it (its own embedded Ray, workers' output forwarded to the terminal):
    avs's lines, none of Ray Train's per-second State API failures or INFO lines."""
    import os
    import subprocess
    import sys

    root, _ = shards
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    args = ["--features", ",".join(CLIP_SETS), "--classes", ",".join(CLASSES), "--epochs", "2", "--batch-size", "4"]
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "jobs" / "train.py"),
            str(root),
            *args,
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    terminal = proc.stdout + proc.stderr
    assert proc.returncode == 0, terminal[-4000:]
    assert "[avs train] epoch 1/2:" in terminal and "[avs train] epoch 2/2:" in terminal
    for chatter in (
        "Failed to query Ray Train Controller actor state",  # the PlacementGroupCleaner without a State API
        "PlacementGroupCleaner",
        "PreemptionWatcher",  # its core_worker error line
        "(TrainController",  # Ray Train's INFO lines: resources requested, worker group started
        "Setting up process group",
        "RayDeprecationWarning",  # Ray Train's default ingest options calling a deprecated setter
        "execution finished in",  # Ray Data's per-epoch INFO lines in its SplitCoordinator actors
        "Progress bars disabled",  # ... and its notice that the bars are off (avs prints its own lines)
        "Token authentication is enabled",  # Ray's notice for a new local cluster
    ):
        assert chatter not in terminal, f"{chatter!r} in the terminal:\n{terminal[-4000:]}"
