"""Ensemble rules of paper 000 sec. 2.4 and the post-processing of its equation (1), on hand-made score tables."""

from __future__ import annotations

import numpy as np
import pytest

from avs.ensemble import (
    ClampConfig,
    EnsembleConfig,
    Scores,
    average_segments,
    classwise_select,
    combine_families,
    ensemble_paper000,
    low_confidence_rows,
    postprocess_clamp,
    replace_low_confidence,
)

CLASSES = ("airport", "bus", "park", "tram")


def S(ids, rows, classes=CLASSES):
    return Scores(np.asarray(ids), np.asarray(rows, dtype=np.float64), classes)


# ------------------------------------------------------------------------------------------------ eq. (1)


def test_clamp_equation1_on_interval_boundaries():
    up = lambda v: np.nextafter(v, 1.0)  # the next float above v
    x = np.array([0.0, 1e-9, 0.001, 0.06, up(0.06), 0.1, 0.20, up(0.20), 0.5, 0.70, up(0.70), 0.995, 1.0])
    want = np.array([0.001, 0.001, 0.001, 0.001, 0.06, 0.06, 0.06, up(0.20), 0.5, 0.70, 0.99, 0.99, 0.99])
    assert np.array_equal(postprocess_clamp(x), want)
    # same on a Scores table, row layout kept, no renormalisation by default
    s = S(["a"], [[0.05, 0.15, 0.0, 0.8]])
    out = postprocess_clamp(s)
    assert isinstance(out, Scores) and np.array_equal(out.probs, [[0.001, 0.06, 0.001, 0.99]])
    assert np.allclose(postprocess_clamp(s, renormalize=True).probs.sum(1), 1.0)


def test_clamp_thresholds_configurable():
    cfg = ClampConfig(low=0.1, mid=0.3, high=0.9, low_value=0.01, mid_value=0.1, high_value=0.95)
    x = np.array([0.1, 0.2, 0.3, 0.5, 0.9, 0.91])
    assert np.array_equal(postprocess_clamp(x, cfg), [0.01, 0.1, 0.1, 0.5, 0.9, 0.95])
    with pytest.raises(ValueError):
        ClampConfig(low=0.5, mid=0.2)


# ------------------------------------------------------------------------------------------------ segments


def test_average_segments_mean_per_clip_in_first_seen_order():
    seg = S(["b", "a", "b", "a", "a"], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0]])
    out = average_segments(seg)
    assert list(out.clip_ids) == ["b", "a"]
    assert np.allclose(out.probs, [[0.5, 0, 0.5, 0], [0, 2 / 3, 0, 1 / 3]])
    # pyarrow in -> same result
    again = average_segments(seg.to_arrow(with_prediction=False))
    assert np.allclose(again.probs, out.probs) and again.classes == CLASSES


# ------------------------------------------------------------------------------------------------ class-wise


def test_classwise_select_uses_audio_only_for_chosen_classes():
    a = S(["x", "y"], [[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    v = S(["x", "y"], [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    c = S(["y", "x"], [[0.2, 0.2, 0.2, 0.4], [0.5, 0.3, 0.1, 0.1]])  # other row order: aligned by clip id
    out = classwise_select(a, [v, c], classes=("bus", "park", "tram"), renormalize=False)
    cx = np.array([0.5, 0.3, 0.1, 0.1])
    cy = np.array([0.2, 0.2, 0.2, 0.4])
    want_x = [(0.7 + cx[0]) / 2, (0.2 + 0.1 + cx[1]) / 3, (0.3 + 0.1 + cx[2]) / 3, (0.4 + 0.1 + cx[3]) / 3]
    want_y = [(0.1 + cy[0]) / 2, (0.3 + 0.1 + cy[1]) / 3, (0.2 + 0.1 + cy[2]) / 3, (0.1 + 0.7 + cy[3]) / 3]
    assert list(out.clip_ids) == ["x", "y"]
    assert np.allclose(out.probs, [want_x, want_y])
    norm = classwise_select(a, [v, c], classes=("bus", "park", "tram"))
    assert np.allclose(norm.probs.sum(1), 1.0)
    assert np.allclose(norm.probs, out.probs / out.probs.sum(1, keepdims=True))
    # a single video table: audio + video mean on bus/park/tram, video alone elsewhere
    one = classwise_select(a, v, classes=("tram",), renormalize=False)
    assert np.allclose(one.probs[0], [0.7, 0.1, 0.1, (0.4 + 0.1) / 2])


def test_combine_families_weights_and_checks():
    a = S(["x"], [[1.0, 0.0, 0.0, 0.0]])
    b = S(["x"], [[0.0, 1.0, 0.0, 0.0]])
    out = combine_families({"a": a, "b": b}, weights={"a": 3.0, "b": 1.0})
    assert np.allclose(out.probs, [[0.75, 0.25, 0, 0]])
    with pytest.raises(ValueError, match="different clips"):
        combine_families([a, S(["z"], [[1, 0, 0, 0]])])
    with pytest.raises(ValueError, match="no family"):
        combine_families([a, b], class_masks={0: ("bus",), 1: ("bus",)})


# ------------------------------------------------------------------------------------------------ replacement


def test_replace_low_confidence_rule():
    audio = S(
        ["n1", "n2", "d1", "d2"],
        [
            [0.05, 0.05, 0.85, 0.05],  # max 0.85
            [0.75, 0.05, 0.10, 0.10],  # max 0.75
            [0.10, 0.80, 0.05, 0.05],  # max 0.80
            [0.25, 0.25, 0.25, 0.25],  # max 0.25
        ],
    )
    video = S(
        ["n1", "n2", "d1", "d2"],
        [
            [0.40, 0.30, 0.20, 0.10],  # max 0.40: 0.45 below audio -> replaced (night scene of Fig. 2)
            [0.50, 0.20, 0.20, 0.10],  # max 0.50: exactly 0.25 below -> kept with margin 0.25 (strict ">")
            [0.70, 0.10, 0.10, 0.10],  # max 0.70: 0.10 below -> kept
            [0.97, 0.01, 0.01, 0.01],  # video more confident -> kept
        ],
    )
    out = replace_low_confidence(video, audio, margin=0.20)
    assert np.array_equal(out.probs[0], audio.probs[0])
    assert np.array_equal(out.probs[1], audio.probs[1])  # 0.25 > 0.20
    assert np.array_equal(out.probs[2:], video.probs[2:])
    assert list(low_confidence_rows(video, audio, margin=0.25)) == [True, False, False, False]
    assert np.array_equal(replace_low_confidence(video, audio, margin=0.25).probs[1], video.probs[1])


# ------------------------------------------------------------------------------------------------ whole rule


def test_ensemble_paper000_end_to_end():
    # one clip, audio: 2 models x 2 segments; frames: 1 model x 2 frames; clip: 1 model x 1 row
    a1 = S(["c", "c"], [[0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.1, 0.7]])
    a2 = S(["c", "c"], [[0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]])
    v1 = S(["c", "c"], [[0.4, 0.2, 0.2, 0.2], [0.4, 0.2, 0.2, 0.2]])
    c1 = S(["c"], [[0.1, 0.1, 0.1, 0.7]])
    out = ensemble_paper000([a1, a2], {"frame": [v1], "clip": [c1]}, EnsembleConfig(audio_classes=("tram",)))
    A = np.array([0.1, 0.1, 0.25, 0.55])
    assert np.allclose(out["audio"].probs[0], A)
    # frame max 0.4 is 0.15 below audio max 0.55: kept; clip max 0.7: kept
    assert np.array_equal(out["frame_replaced"].probs, out["frame"].probs)
    V, C = np.array([0.4, 0.2, 0.2, 0.2]), np.array([0.1, 0.1, 0.1, 0.7])
    raw = np.concatenate([(V + C)[:3] / 2, [(A[3] + V[3] + C[3]) / 3]])
    assert np.allclose(out["ensemble"].probs[0], raw / raw.sum())
    assert np.array_equal(out["ensemble_pp"].probs, postprocess_clamp(out["ensemble"].probs))


def test_scores_arrow_roundtrip():
    s = S(["x", "y"], [[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    t = s.to_arrow()
    assert t.column("scene_label").to_pylist() == ["tram", "airport"]
    back = Scores.from_arrow(t)
    assert back.classes == CLASSES and np.array_equal(back.probs, s.probs)
