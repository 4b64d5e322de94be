"""Paper 002 §2.5's clip ranking: clip max over frames, top-k per class, fusion, and AP / AP@k / LRAP against
scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, label_ranking_average_precision_score

from avs.eval.ranking import average_precision_at_k, clip_max, fuse, lrap, mean_average_precision, top_k


def test_clip_max_and_top_k():
    ids = ["b", "a", "b", "c", "a"]
    frames = np.array([[0.1, 0.9], [0.4, 0.2], [0.7, 0.3], [0.5, 0.5], [0.2, 0.6]])
    clips, scores = clip_max(ids, frames)
    assert clips.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(scores, [[0.4, 0.6], [0.7, 0.9], [0.5, 0.5]])
    ranked = top_k(clips, scores, ["flood", "smoke"], k=2)
    assert ranked["flood"] == [("b", 0.7), ("c", 0.5)]
    assert ranked["smoke"] == [("b", 0.9), ("a", 0.6)]
    tie = top_k(["z", "y"], np.array([[0.5], [0.5]]), ["x"], k=5)["x"]
    assert [c for c, _ in tie] == ["y", "z"]  # ties in clip-id order, k larger than the clips


def test_fusion_weights():
    a, b = np.array([[0.9, 0.0]]), np.array([[0.0, 0.6]])
    np.testing.assert_allclose(fuse([a, b]), [[0.45, 0.3]])
    np.testing.assert_allclose(fuse([a, b], [2, 1]), [[0.6, 0.2]])  # Table 3's 2:1
    with pytest.raises(ValueError):
        fuse([a, np.zeros((2, 2))])


def test_ap_against_sklearn_and_by_hand_at_depth_k():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.2
    s = rng.random(200)
    assert average_precision_at_k(y, s) == pytest.approx(average_precision_score(y, s))
    assert average_precision_at_k(y, s, k=1000) == pytest.approx(average_precision_score(y, s))
    # ranks 1..5 with relevance 1 0 1 0 1: AP@3 = (P@1 + P@3) / R = (1 + 2/3) / 3
    truth = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    assert average_precision_at_k(truth, scores, k=3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(truth, scores, k=1) == pytest.approx(1 / 3)
    assert average_precision_at_k(np.array([0, 0, 1]), np.array([0.9, 0.8, 0.1]), k=2) == 0.0
    assert average_precision_at_k(np.zeros(3), scores[:3]) is None
    # by brute force: the definition on random lists
    for k in (5, 17, 40):
        order = np.argsort(-s, kind="stable")[:k]
        hits = np.cumsum(y[order])
        want = sum(hits[r] / (r + 1) for r in range(len(order)) if y[order][r]) / y.sum()
        assert average_precision_at_k(y, s, k=k) == pytest.approx(want)


def test_map_and_lrap():
    rng = np.random.default_rng(1)
    truth = rng.random((50, 4)) < 0.3
    truth[:, 3] = False  # a class with no relevant clip is left out of the mean
    scores = rng.random((50, 4))
    got = mean_average_precision(truth, scores, ["a", "b", "c", "d"], k=None)
    want = [average_precision_score(truth[:, j], scores[:, j]) for j in range(3)]
    assert got["map"] == pytest.approx(np.mean(want)) and got["per_class"]["d"] is None
    soft = rng.random((50, 4))
    assert lrap(soft >= 0.5, scores) == pytest.approx(label_ranking_average_precision_score(soft >= 0.5, scores))
