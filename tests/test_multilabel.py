"""Paper 002's multi-label pipeline: LADI-style folders -> soft targets -> the multilabel task -> avs rank ->
avs evaluate (LRAP, AP, AP@k), against scikit-learn and values worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from avs.data.demo_ladi import DEMO_CLASSES, write_ladi_demo

FLOOD, SMOKE, NONE = "flooding / water damage", "smoke / fire", "damage: none"


def test_fig1_soft_labels_as_training_targets():
    """002 Fig. 1: 4 x flood, 1 x smoke/fire, 1 x damage:none -> 1.0, 0.25, 0.25; multi_hot -> 1, 1, 1."""
    from avs.train.data import label_targets

    classes = (FLOOD, SMOKE, NONE, "trees")
    table = pa.table({"labels": [[FLOOD] * 4 + [SMOKE, NONE], ["trees"], [], ["not a class"]]})
    soft, labelled = label_targets(table, "labels", classes, "soft")
    np.testing.assert_allclose(soft[0], [1.0, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(soft[1], [0, 0, 0, 1.0])
    assert labelled.tolist() == [True, True, False, True] and not soft[2:].any()  # a vote for no class: negative
    hot, _ = label_targets(table, "labels", classes, "multi_hot")
    np.testing.assert_array_equal(hot[0], [1, 1, 1, 0])
    with pytest.raises(ValueError, match="target"):
        label_targets(table, "labels", classes, "index")


@pytest.fixture(scope="module")
def ladi(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ladi") / "ladi"
    return root, write_ladi_demo(root, n_images=30, n_shots=3, seed=1)


def test_ladi_folder_reads_as_a_manifest(ladi):
    import csv

    from avs.data import detect_dataset, load_manifest

    root, info = ladi
    assert detect_dataset(root) == "ladi"
    table = load_manifest(root).to_pylist()
    images = [r for r in table if r["clip_id"].startswith("image/")]
    shots = [r for r in table if r["clip_id"].startswith("shot/")]
    assert len(images) == info["images"] == 30 and len(shots) == 3
    assert {r["split"] for r in images} == {"train", "val"} and {r["split"] for r in shots} == {"test"}
    with open(root / "annotations.csv") as fh:
        answers = list(csv.DictReader(fh))
    # every vote is kept with its repeats (the soft label counts them): img0000's labels = its answers' classes
    mine = [a["Answer"] for a in answers if a["url"].endswith("/img0000.jpg")]
    votes = [c for a in mine for c in a.split("|") if c]
    first = next(r for r in images if r["clip_id"] == "image/img0000")
    assert sorted(first["labels"]) == sorted(votes) and len(mine) >= 3 * 4  # 3-5 annotators x 4 categories
    with open(root / "shots.csv") as fh:
        truth = {r["shot"]: sorted(x for x in r["labels"].split("|") if x) for r in csv.DictReader(fh)}
    for r in shots:
        assert sorted(r["labels"]) == truth[r["clip_id"].removeprefix("shot/")]
    # a split is a hash of the image, not of the file order: the same image keeps its split
    again = {r["clip_id"]: r["split"] for r in load_manifest(root).to_pylist()}
    assert all(again[r["clip_id"]] == r["split"] for r in images)


def test_ladi_missing_image_is_named(ladi, tmp_path):
    import shutil

    from avs.data import read_ladi

    root, _ = ladi
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "images" / "img0003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="img0003"):
        read_ladi(copy)


def test_read_image_sizes_and_corrupt_file(tmp_path):
    from PIL import Image

    from avs.decode.errors import CorruptMedia
    from avs.decode.image import read_image

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    batch = read_image(tmp_path / "a.png")
    assert batch.frames.shape == (1, 40, 60, 3) and list(batch.timestamps_s) == [0.0]
    np.testing.assert_array_equal(batch.frames[0], rgb)  # PNG: lossless
    assert read_image(tmp_path / "a.png", size=20).frames.shape == (1, 20, 30, 3)  # shorter side, aspect kept
    assert read_image(tmp_path / "a.png", size=(16, 16)).frames.shape == (1, 16, 16, 3)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CorruptMedia):
        read_image(tmp_path / "bad.jpg")


def _task(**params):
    from avs.config import to_dict
    from avs.train.data import DataSpec
    from avs.train.task import RunInfo, create_task

    classes = (FLOOD, SMOKE, "trees", NONE)
    spec = DataSpec("s", "frame", ("frames",), ("image",), ((8, 8, 3),), classes, target="soft")
    run = RunInfo(
        shards="s",
        model="timm-cnn",
        model_params={"backbone": "test_efficientnet", "random_init": True, "num_classes": 4},
        features=("frames",),
        classes=classes,
        label_column="labels",
        label_table=None,
        train_split="train",
        val_split="val",
        train_clips=None,
        val_clips=None,
        batch_size=3,
        max_train_rows=None,
        max_val_rows=None,
        seed=0,
        spec={"data": to_dict(spec)},
    )
    return create_task("multilabel", params, run)


def test_multilabel_task_steps_by_hand():
    """training_step = the batch mean of the per-image focal loss (002 eqs. 1-2) with the none-class weight;
    outlier removal drops exactly the largest image loss; validation gives sklearn's LRAP."""
    from sklearn.metrics import label_ranking_average_precision_score

    from avs.train.task import StepInfo

    torch.manual_seed(0)
    task = _task(none_weight=0.1)
    mods = task.build()
    mods.net.eval()
    x = torch.randn(3, 3, 32, 32)
    y = torch.tensor([[1.0, 0.25, 0.0, 0.25], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    step = StepInfo(epoch=1, step=0, epochs=1, steps_per_epoch=1)
    out = task.training_step(mods, {"train": {"x": x, "y": y}}, step)
    p = torch.sigmoid(mods.net(x)).detach().double()
    phat = 1 - (y.double() - p).abs()
    per = -((1 - phat) ** 2) * phat.log() * torch.tensor([1, 1, 1, 0.1], dtype=torch.float64)
    want = per.sum(1)
    assert out.rows == 3 and float(out.loss.detach()) == pytest.approx(float(want.mean()), rel=1e-4)
    out.loss.backward()
    assert any(q.grad is not None for q in mods.net.parameters())

    dropped = _task(none_weight=0.1, outlier_removal=True)
    out2 = dropped.training_step(mods, {"train": {"x": x, "y": y}}, step)
    keep = torch.sort(want).values[:-1]
    assert float(out2.loss.detach()) == pytest.approx(float(keep.mean()), rel=1e-4)

    sums = task.validation_step(mods, {"x": x, "y": y})
    metrics = task.validation_metrics(sums)
    want_lrap = label_ranking_average_precision_score((y.numpy() >= 0.5).astype(int), p.numpy())
    assert metrics["val_lrap"] == pytest.approx(want_lrap) and metrics["val_samples"] == 3
    assert task.prediction == "clip_scores" and task.monitor == ("val_lrap", "max")
    assert torch.all((task.predict_scores(mods.net, x) >= 0) & (task.predict_scores(mods.net, x) <= 1))


def test_class_balanced_needs_counts_for_non_ladi_classes():
    from avs.train.tasks.multilabel import MultiLabelConfig, class_weights

    with pytest.raises(ValueError, match="class_counts"):
        class_weights(MultiLabelConfig(loss="class_balanced"), ("cat", "dog"))
    w = class_weights(MultiLabelConfig(loss="class_balanced", class_counts=(10.0, 1000.0), cb_beta=0.99), ("a", "b"))
    np.testing.assert_allclose(w.numpy(), [(1 - 0.99) / (1 - 0.99**10), (1 - 0.99) / (1 - 0.99**1000)], rtol=1e-6)


def _frame_predictions(path: Path, scores: dict[str, list[list[float]]], classes) -> None:
    """A clip_scores predictions file as avs predict writes it: one row per frame of a shot."""
    ids = [c for c, rows in scores.items() for _ in rows]
    flat = np.asarray([r for rows in scores.values() for r in rows])
    cols = {"clip_id": ids, "segment": list(range(len(ids))), "split": ["test"] * len(ids)}
    cols.update({c: flat[:, j] for j, c in enumerate(classes)})
    meta = {b"avs.classes": json.dumps(list(classes)).encode(), b"avs.kind": b"clip_scores"}
    path.mkdir(parents=True)
    pq.write_table(pa.table(cols).replace_schema_metadata(meta), path / "predictions.parquet")


def test_rank_fuses_clip_maxima_and_evaluate_matches_sklearn(tmp_path):
    from sklearn.metrics import average_precision_score, label_ranking_average_precision_score

    from avs.eval.job import EvaluateConfig, run_evaluate
    from avs.eval.rank import RankConfig, run_rank

    classes = ("a", "b")
    a = {"shot/s0": [[0.1, 0.9], [0.6, 0.2]], "shot/s1": [[0.3, 0.3]], "shot/s2": [[0.8, 0.1], [0.2, 0.4]]}
    b = {"shot/s0": [[0.2, 0.2]], "shot/s1": [[0.9, 0.6], [0.1, 0.1]], "shot/s2": [[0.4, 0.7]]}
    _frame_predictions(tmp_path / "A", a, classes)
    _frame_predictions(tmp_path / "B", b, classes)
    summary = run_rank(
        RankConfig(out=str(tmp_path / "r"), inputs=(f"{tmp_path}/A", f"{tmp_path}/B"), weights=(2, 1), k=2)
    )
    max_a = np.asarray([[0.6, 0.9], [0.3, 0.3], [0.8, 0.4]])  # per-shot max (002 §2.5), shots s0 s1 s2
    max_b = np.asarray([[0.2, 0.2], [0.9, 0.6], [0.4, 0.7]])
    fused = (2 * max_a + max_b) / 3
    ranked = pq.read_table(tmp_path / "r" / "predictions.parquet")
    assert ranked.column("clip_id").to_pylist() == ["shot/s0", "shot/s1", "shot/s2"]
    np.testing.assert_allclose(np.stack([ranked.column(c).to_numpy() for c in classes], 1), fused)
    top = [r.split(",") for r in (tmp_path / "r" / "top_k.csv").read_text().splitlines()[1:]]
    assert [(c, clip) for c, _, clip, _ in top] == [
        ("a", "shot/s2"),
        ("a", "shot/s1"),
        ("b", "shot/s0"),
        ("b", "shot/s2"),
    ]
    assert summary["clips"] == 3 and summary["weights"] == [2, 1]

    (tmp_path / "truth.csv").write_text("shot,labels\ns0,b\ns1,a|b\ns2,\n")
    cfg = EvaluateConfig(
        out=str(tmp_path / "rep"),
        inputs=(f"F={tmp_path}/r", f"A={tmp_path}/A"),
        labels=str(tmp_path / "truth.csv"),
        k=1,
    )
    result = run_evaluate(cfg)
    truth = np.asarray([[0, 1], [1, 1], [0, 0]])
    for name, scores in (("F", fused), ("A", max_a)):
        m = json.loads((tmp_path / "rep" / name / "metrics.json").read_text())
        rows = truth.any(1)
        assert m["lrap"] == pytest.approx(label_ranking_average_precision_score(truth[rows], scores[rows]))
        for j, c in enumerate(classes):
            assert m["per_class"][c]["ap"] == pytest.approx(average_precision_score(truth[:, j], scores[:, j]))
        assert m["map"] == pytest.approx(np.mean([m["per_class"][c]["ap"] for c in classes]))
        assert (tmp_path / "rep" / name / "ap.png").stat().st_size > 1000
    # AP at depth 1 of class a on A: the top clip (s2) is not relevant -> 0; class b: s0 first, relevant, 1 of 2
    ma = json.loads((tmp_path / "rep" / "A" / "metrics.json").read_text())
    assert ma["per_class"]["a"]["ap_at_k"] == 0.0 and ma["per_class"]["b"]["ap_at_k"] == pytest.approx(0.5)
    assert result["systems"]["F"]["task"] == "multilabel"
    assert (
        "multilabel" in (tmp_path / "rep" / "multilabel_systems.md").read_text()
        or "LRAP" in (tmp_path / "rep" / "multilabel_systems.md").read_text()
    )


def test_evaluate_clip_scores_needs_labels(tmp_path):
    from avs.eval.job import EvaluateConfig, run_evaluate

    _frame_predictions(tmp_path / "A", {"x": [[0.5]]}, ("a",))
    with pytest.raises(ValueError, match="--labels"):
        run_evaluate(EvaluateConfig(out=str(tmp_path / "rep"), inputs=(str(tmp_path / "A"),)))


@pytest.mark.ray
def test_demo_ladi_extract_train_predict_rank_evaluate(ray_local, ladi, tmp_path):
    """The whole CPU path on the generated set: extract (trecvid-dsdi) -> multilabel training through Ray Train
    (a tiny random-init CNN) -> predict the test shots -> rank -> evaluate."""
    from avs.cli import main as avs_main

    root, _ = ladi
    feats, run, preds, rank, rep = (tmp_path / n for n in ("feats", "run", "preds", "rank", "rep"))
    assert avs_main(["extract", str(root), "--preset", "trecvid-dsdi", "--out", str(feats)]) == 0
    classes = ",".join(DEMO_CLASSES)
    train = [
        "train", str(feats), "--preset", "trecvid-dsdi-c11", "--model", "timm-cnn", "--classes", classes,
        "--epochs", "1", "--batch-size", "8", "--set", "model_params.backbone=test_efficientnet",
        "--set", "model_params.random_init=true", "--set", "model_params.input_size=null",
        "--set", "task_params.image_size=[32,32]", "--set", "optimizer.lr=0.01", "--out", str(run),
    ]  # fmt: skip
    assert avs_main(train) == 0
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["task"] == "multilabel" and 0 <= summary["best"]["val_lrap"] <= 1
    assert avs_main(["predict", str(run), "--split", "test", "--out", str(preds)]) == 0
    table = pq.read_table(preds / "predictions.parquet")
    assert table.schema.metadata[b"avs.kind"] == b"clip_scores" and set(DEMO_CLASSES) <= set(table.column_names)
    assert len(set(table.column("clip_id").to_pylist())) == 3 < table.num_rows  # frames of 3 shots
    assert avs_main(["rank", str(preds), "--k", "2", "--out", str(rank)]) == 0
    assert avs_main(["evaluate", "--labels", str(root / "shots.csv"), str(rank), "--out", str(rep)]) == 0
    m = json.loads((rep / "rank" / "metrics.json").read_text())
    assert m["n_clips"] == 3 and m["frequency"]  # the run's training counts reached the AP-bar report
    _served_shot_equals_avs_predict(run, feats, table)


def _served_shot_equals_avs_predict(run: Path, feats: Path, table) -> None:
    """avs serve's /predict/<run> path in-process (load_run -> ClipExtractor on the shot's file -> inputs_from_tables
    -> predict_clips): the shot's frame scores equal avs predict's rows, and its clip score is their maximum."""
    import numpy as np
    import pyarrow as pa

    from avs.serve.clip import ClipExtractor
    from avs.serve.runs import load_run, predict_clips

    served = load_run("ladi", str(run))
    manifest = pq.read_table(feats / "manifest.parquet").to_pylist()
    cid = sorted(set(table.column("clip_id").to_pylist()))[0]
    path = next(r["video_path"] for r in manifest if r["clip_id"] == cid)
    got = ClipExtractor(served.extract).extract(path, list(served.hashes))
    assert not got.skipped and set(got.tables) == set(served.hashes)
    answer = predict_clips(served, [served.task.inputs_from_tables(got.tables)])[0]
    want = table.filter(pa.compute.field("clip_id") == cid).sort_by("segment")
    assert answer["kind"] == "multilabel_scores" and answer["clip"]["aggregate"] == "max"
    scores = np.stack([want.column(c).to_numpy() for c in served.classes], axis=1)  # (frames, classes)
    rows = np.stack([answer["rows"][c] for c in served.classes], axis=1)
    np.testing.assert_allclose(rows, scores, atol=1e-5)
    np.testing.assert_allclose([answer["clip"]["scores"][c] for c in served.classes], scores.max(axis=0), atol=1e-5)
