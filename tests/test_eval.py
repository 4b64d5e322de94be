"""Metrics (against scikit-learn), location-disjoint folds, report folders."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import log_loss as sk_log_loss

from avs.ensemble import Scores
from avs.eval.folds import add_cv_folds, fold_of_each, location_folds
from avs.eval.metrics import accuracy, classification_metrics, label_indices, log_loss
from avs.eval.report import evaluate_systems, write_comparison, write_report

CLASSES = ("airport", "bus", "metro", "park", "tram")


def _random_case(n=60, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, len(CLASSES))) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.choice(CLASSES, size=n)
    return y, probs


def test_log_loss_and_accuracy_equal_sklearn():
    y, probs = _random_case()
    idx = label_indices(y, CLASSES)
    assert log_loss(y, probs, CLASSES) == pytest.approx(sk_log_loss(idx, probs, labels=range(len(CLASSES))), abs=1e-12)
    assert accuracy(y, probs, CLASSES) == accuracy_score(idx, probs.argmax(1))
    # unnormalised rows (post-processed scores) are renormalised first, as the DCASE 2021 evaluation did
    scaled = probs * np.linspace(0.5, 2.0, len(probs))[:, None]
    assert log_loss(y, scaled, CLASSES) == pytest.approx(log_loss(y, probs, CLASSES), abs=1e-12)


def test_per_class_metrics():
    y, probs = _random_case(seed=1)
    m = classification_metrics(y, probs, CLASSES)
    idx = label_indices(y, CLASSES)
    for j, c in enumerate(CLASSES):
        rows = idx == j
        assert m["per_class"][c]["n"] == rows.sum()
        assert m["per_class"][c]["log_loss"] == pytest.approx(-np.log(probs[rows, j]).mean(), abs=1e-10)
        assert m["per_class"][c]["accuracy"] == pytest.approx((probs[rows].argmax(1) == j).mean())
    assert m["n"] == len(y) and m["accuracy"] == accuracy(y, probs, CLASSES)
    empty = classification_metrics(["bus"], np.eye(5)[[1]], CLASSES)
    assert empty["per_class"]["tram"] == {"n": 0, "log_loss": None, "accuracy": None}
    with pytest.raises(ValueError, match="not in classes"):
        log_loss(["boat"], np.eye(5)[[0]], CLASSES)


def _tau_like_locations(n_locations=12, clips_per_location=(3, 5, 8)):
    locs, labels = [], []
    for k in range(n_locations):
        city = ["lisbon", "paris", "vienna"][k % 3]
        for _ in range(clips_per_location[k % len(clips_per_location)]):
            locs.append(f"{city}-{1000 + k}")
            labels.append(CLASSES[k % len(CLASSES)])
    return np.asarray(locs), np.asarray(labels)


def test_folds_are_location_disjoint_and_deterministic():
    locs, labels = _tau_like_locations()
    folds = location_folds(locs, n_splits=5)
    assert len(folds) == 5
    seen = np.zeros(len(locs), dtype=int)
    for train, val in folds:
        assert not set(locs[train]) & set(locs[val])
        assert len(train) + len(val) == len(locs)
        seen[val] += 1
    assert np.all(seen == 1)  # every clip validated exactly once
    again = location_folds(locs, n_splits=5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    strat = location_folds(locs, n_splits=5, labels=labels)
    for train, val in strat:
        assert not set(locs[train]) & set(locs[val])
    f = fold_of_each(locs)
    assert set(f) == set(range(5))
    with pytest.raises(ValueError, match="location"):
        location_folds(np.array(["a", None, "b", "c", "d", "e"], dtype=object))
    with pytest.raises(ValueError, match="at least 5"):
        location_folds(["a", "a", "b"])


def test_add_cv_folds_on_manifest():
    locs, labels = _tau_like_locations()
    manifest = pa.table(
        {
            "clip_id": [f"clip{i}" for i in range(len(locs))],
            "labels": [[lab] for lab in labels],
            "location": list(locs),
        }
    )
    out = add_cv_folds(manifest, stratify=True)
    folds = np.asarray(out.column("cv_fold").to_pylist())
    for k in range(5):
        assert not set(locs[folds == k]) & set(locs[folds != k])


def test_report_folder(tmp_path):
    y, probs = _random_case(n=40, seed=2)
    m = write_report(tmp_path / "E02", y, probs, CLASSES, name="E02")
    for name in ("metrics.json", "per_class.csv", "per_class.md", "confusion.csv", "confusion.png"):
        assert (tmp_path / "E02" / name).is_file(), name
    assert (tmp_path / "E02" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "E02" / "metrics.json").read_text())
    assert saved["log_loss"] == pytest.approx(m["log_loss"]) and saved["name"] == "E02"
    csv_lines = (tmp_path / "E02" / "per_class.csv").read_text().splitlines()
    assert csv_lines[0] == "class,n,log_loss,accuracy" and csv_lines[-1].startswith("overall,40,")
    rows = write_comparison(tmp_path, {"A04": m, "E02": m})
    assert [r[0] for r in rows] == ["A04", "E02"]
    assert "| A04 |" in (tmp_path / "systems.md").read_text()


def test_evaluate_systems_from_scores(tmp_path):
    y, probs = _random_case(n=20, seed=3)
    ids = [f"c{i}" for i in range(20)]
    truth = dict(zip(ids, y, strict=True))
    good = Scores(np.asarray(ids), probs, CLASSES)
    shuffled = Scores(np.asarray(ids[::-1]), probs[::-1], CLASSES)  # same scores, other row order
    res = evaluate_systems(tmp_path, truth, {"a": good, "b": shuffled.to_arrow()})
    assert res["a"]["log_loss"] == pytest.approx(res["b"]["log_loss"])
    assert res["a"]["log_loss"] == pytest.approx(log_loss(y, probs, CLASSES))
    assert (tmp_path / "systems.csv").read_text().count("\n") == 3
