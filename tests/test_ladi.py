"""LADI-style multi-annotator answers -> soft labels (paper 002 §2.1, Fig. 1)."""

from __future__ import annotations

import numpy as np
import pytest

from avs.classes import LADI_CLASS_COUNTS, LADI_CLASSES, LADI_NONE_CLASSES
from avs.data.ladi import LabelMatcher, read_answers, soft_label_table, soft_labels


def test_table1_classes_and_counts_are_data():
    assert len(LADI_CLASSES) == 37 and len(LADI_NONE_CLASSES) == 5
    assert LADI_CLASS_COUNTS["lava"] == 67 and LADI_CLASS_COUNTS["damage: none"] == 98412


def test_fig1_example_from_a_ladi_answers_file(tmp_path):
    path = tmp_path / "ladi_aggregated_responses_url.tsv"
    rows = ["url\tWorkerId\tAnswer"]
    for worker, answer in enumerate(
        ["damage:flood/water", "damage:flood/water", "damage:smoke/fire", "damage:flood/water",
         "damage:flood/water", "damage:none"]
    ):  # fmt: skip
        rows.append(f"https://x/img1.jpg\tW{worker}\t{answer}")
    rows.append("https://x/img2.jpg\tW9\tinfrastructure:bridge|infrastructure:road")
    rows.append("https://x/img2.jpg\tW8\tinfrastructure:road")
    path.write_text("\n".join(rows) + "\n")
    answers = read_answers(path)
    y = soft_labels(answers["https://x/img1.jpg"], LADI_CLASSES)
    want = {"flooding / water damage": 1.0, "smoke / fire": 0.25, "damage: none": 0.25}
    assert {LADI_CLASSES[i]: float(v) for i, v in enumerate(y) if v} == want  # "the rest 34 classes are 0"
    images, table, n = soft_label_table(answers, LADI_CLASSES)
    assert images == ["https://x/img1.jpg", "https://x/img2.jpg"] and n.tolist() == [6, 2]
    assert table[1, LADI_CLASSES.index("road")] == 1.0 and table[1, LADI_CLASSES.index("bridge")] == 0.5


def test_plain_csv_and_unknown_labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("image,annotator,labels\na.png,1,cat;dog\na.png,2,dog\nb.png,1,\n")
    answers = read_answers(path, classes=("cat", "dog"))
    assert answers == {"a.png": [["cat", "dog"], ["dog"]], "b.png": [[]]}
    np.testing.assert_allclose(soft_labels(answers["a.png"], ("cat", "dog")), [0.5, 1.0])
    assert soft_labels(answers["b.png"], ("cat", "dog")).tolist() == [0.0, 0.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("image,annotator,labels\na.png,1,cat|unicorn\n")
    with pytest.raises(ValueError, match="'unicorn' x1"):
        read_answers(bad, classes=("cat", "dog"))
    assert read_answers(bad, classes=("cat", "dog"), unknown="ignore") == {"a.png": [["cat"]]}
    with pytest.raises(ValueError, match="no image column"):
        (tmp_path / "x.csv").write_text("foo,labels\n1,cat\n")
        read_answers(tmp_path / "x.csv", classes=("cat",))


def test_label_matching_forms():
    m = LabelMatcher(LADI_CLASSES)
    assert m("flooding / water damage") == m("damage:flood/water") == "flooding / water damage"
    assert m("vehicles:none") == "vehicle: none" and m("water:none") == "water: none"
    assert m("Damage (misc)") == "damage (misc)" and m("environment:snow/ice") == "snow/ice"
    assert m("water:river/stream") == "river / stream" and m("nothing") is None
