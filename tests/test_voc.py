"""Pascal VOC 2007 (paper 001's transfer task): the reader with its "difficult" flags, the devkit's 11-point AP by
hand and against scikit-learn's AP on the same inputs, and avs evaluate with a VOC folder as the truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avs.classes import VOC_CLASSES

# image id -> objects (class, difficult), split
IMAGES = {
    "000001": ([("dog", False), ("person", False)], "train"),
    "000002": ([("car", True)], "train"),  # only a difficult car: flag 0
    "000003": ([("car", False), ("car", True)], "val"),
    "000004": ([("cat", False)], "test"),
    "000005": ([("dog", True), ("cat", False)], "test"),
    "000006": ([("person", False)], "test"),
}


def _xml(objects) -> str:
    objs = "".join(f"<object><name>{n}</name><difficult>{int(d)}</difficult></object>" for n, d in objects)
    return f"<annotation><filename>x.jpg</filename>{objs}</annotation>"


@pytest.fixture()
def voc(tmp_path) -> Path:
    from PIL import Image

    root = tmp_path / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for image_id, (objects, _) in IMAGES.items():
        Image.fromarray(np.full((20, 30, 3), int(image_id) * 30, np.uint8)).save(
            root / "JPEGImages" / f"{image_id}.jpg"
        )
        (root / "Annotations" / f"{image_id}.xml").write_text(_xml(objects))
    for split in ("train", "val", "test"):
        ids = [i for i, (_, s) in IMAGES.items() if s == split]
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for c in VOC_CLASSES:  # the devkit's flags, written the way VOC ships them
            lines = []
            for i in ids:
                flags = [0 if d else 1 for n, d in IMAGES[i][0] if n == c]
                lines.append(f"{i} {max(flags) if flags else -1:2d}\n")
            (root / "ImageSets" / "Main" / f"{c}_{split}.txt").write_text("".join(lines))
    return root


def test_voc_reader_flags_and_manifest(voc, tmp_path):
    from avs.data import detect_dataset, load_manifest
    from avs.data.voc import read_voc_flags

    flags = read_voc_flags(voc, "train")
    car, dog, person = (VOC_CLASSES.index(c) for c in ("car", "dog", "person"))
    assert flags["000001"][dog] == 1 and flags["000001"][person] == 1 and flags["000001"][car] == -1
    assert flags["000002"][car] == 0  # difficult only
    assert read_voc_flags(voc, "val")["000003"][car] == 1  # a non-difficult instance wins
    # without the per-class files the flags come from the annotations, the same way
    bare = tmp_path / "bare"
    shutil.copytree(voc, bare)
    for f in (bare / "ImageSets" / "Main").glob("*_*.txt"):
        f.unlink()
    for split in ("train", "val", "test"):
        a, b = read_voc_flags(voc, split), read_voc_flags(bare, split)
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)

    assert detect_dataset(voc) == "voc"
    rows = {r["clip_id"]: r for r in load_manifest(voc).to_pylist()}
    assert set(rows) == {f"voc/{i}" for i in IMAGES}
    assert sorted(rows["voc/000001"]["labels"]) == ["dog", "person"] and rows["voc/000002"]["labels"] == []
    assert rows["voc/000005"]["labels"] == ["cat"] and rows["voc/000005"]["split"] == "test"
    (voc / "JPEGImages" / "000004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000004"):
        load_manifest(voc)


def test_voc07_11_point_ap_by_hand_and_sklearn():
    from sklearn.metrics import average_precision_score

    from avs.eval.ranking import voc07_average_precision

    flags = np.asarray([1, -1, 1, 0, -1])
    scores = np.asarray([0.9, 0.8, 0.7, 0.95, 0.1])
    # ranked: difficult (skipped), TP, FP, TP, FP -> recall 0 .5 .5 1 1, precision - 1 .5 .67 .5;
    # t = 0 .. 0.5: max precision 1 (6 thresholds), t = 0.6 .. 1: 2/3 (5 thresholds)
    assert voc07_average_precision(flags, scores) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    keep = flags != 0
    sk = average_precision_score(flags[keep] > 0, scores[keep])
    assert sk == pytest.approx((1 + 2 / 3) / 2)  # the two APs differ: interpolated at 11 points vs exact
    assert voc07_average_precision(np.asarray([1, 1, -1]), np.asarray([0.9, 0.8, 0.1])) == pytest.approx(1.0)
    assert voc07_average_precision(np.asarray([-1, 0]), np.asarray([0.2, 0.1])) is None
    with pytest.raises(ValueError, match="flags"):
        voc07_average_precision(np.asarray([2]), np.asarray([0.1]))


def test_evaluate_with_a_voc_folder_skips_difficult_images(voc, tmp_path):
    from sklearn.metrics import average_precision_score

    from avs.eval.job import EvaluateConfig, run_evaluate
    from avs.eval.ranking import voc07_average_precision

    rng = np.random.default_rng(0)
    ids = [f"voc/{i}" for i in IMAGES]
    scores = rng.random((len(ids), len(VOC_CLASSES)))
    table = pa.table({"clip_id": ids, **{c: scores[:, j] for j, c in enumerate(VOC_CLASSES)}})
    meta = {b"avs.classes": json.dumps(list(VOC_CLASSES)).encode(), b"avs.kind": b"clip_scores"}
    (tmp_path / "p").mkdir()
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "p" / "predictions.parquet")
    run_evaluate(EvaluateConfig(out=str(tmp_path / "rep"), inputs=(f"S={tmp_path}/p",), labels=str(voc)))
    m = json.loads((tmp_path / "rep" / "S" / "metrics.json").read_text())
    car = VOC_CLASSES.index("car")
    flags = np.asarray([-1, 0, 1, -1, -1, -1])  # car: 000002 difficult, 000003 true
    keep = flags != 0
    assert m["per_class"]["car"]["difficult"] == 1 and m["per_class"]["car"]["positives"] == 1
    assert m["per_class"]["car"]["ap"] == pytest.approx(average_precision_score(flags[keep] > 0, scores[keep, car]))
    assert m["per_class"]["car"]["ap_voc07"] == pytest.approx(voc07_average_precision(flags, scores[:, car]))
    assert m["per_class"]["aeroplane"]["ap"] is None and m["map_voc07"] is not None
    assert "VOC07 11-point" in (tmp_path / "rep" / "multilabel_systems.md").read_text()


def test_demo_voc_set_reads_back(tmp_path):
    """The generated VOC layout: ImageSets flags equal the devkit's derivation from the annotations, and the
    set has difficult-only images to exercise the devkit's rule."""
    from avs.data import load_manifest
    from avs.data.demo_voc import DRAWN, write_voc_demo
    from avs.data.voc import flags_from_annotation, read_annotation, read_voc_flags

    info = write_voc_demo(tmp_path, sizes={"train": 12, "val": 6, "test": 12}, seed=2)
    root = Path(info["root"])
    assert load_manifest(root).num_rows == 30
    difficult = 0
    for split in ("train", "val", "test"):
        for image_id, flags in read_voc_flags(root, split).items():
            derived = flags_from_annotation(read_annotation(root / "Annotations" / f"{image_id}.xml"))
            assert (flags == derived).all()
            difficult += int((flags == 0).sum())
            assert all(flags[VOC_CLASSES.index(c)] == -1 for c in VOC_CLASSES if c not in DRAWN)
    assert difficult > 0
