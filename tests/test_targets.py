"""Target encoders: values worked out by hand, and the DCASE baseline's strong-label convention."""

import math

import numpy as np
import pytest

from avs.train.targets import class_index, cluster_id, multi_hot, soft_scores, strong_frames, weak_from_events

SED = ["Dog", "Speech", "Alarm"]


def test_class_index_first_label_and_unlabelled():
    got = class_index([["bus"], ["park", "bus"], [], None], ["park", "bus"])
    assert got.tolist() == [1, 0, -1, -1] and got.dtype == np.int64
    with pytest.raises(ValueError, match="'tram' is not one of"):
        class_index([["tram"]], ["park", "bus"])
    assert class_index([["tram"]], ["park"], unknown="ignore").tolist() == [-1]


def test_multi_hot():
    got = multi_hot([["Dog", "Alarm"], [], ["Speech", "Speech"]], SED)
    np.testing.assert_array_equal(got, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError):
        multi_hot([["Cat"]], SED)


def test_soft_scores_paper_002_figure_1():
    classes = ["damage:flood/water", "damage:smoke/fire", "damage:none"]
    answers = [["damage:flood/water"] * 4 + ["damage:smoke/fire", "damage:none"], []]
    np.testing.assert_allclose(soft_scores(answers, classes), [[1.0, 0.25, 0.25], [0, 0, 0]])


def test_strong_frames_by_hand():
    hop = 0.5  # frames [0, .5) [.5, 1) [1, 1.5) [1.5, 2) ...
    events = [{"onset_s": 0.6, "offset_s": 1.2, "label": "Dog"}, ("0.0", "0.5", "Speech"), (3.7, 9.0, "Alarm")]
    y = strong_frames(events, SED, n_frames=8, frame_hop_s=hop)
    assert y.shape == (8, 3)
    assert np.flatnonzero(y[:, 0]).tolist() == [1, 2]  # touches frames 1 (0.5-1.0) and 2 (1.0-1.5)
    assert np.flatnonzero(y[:, 1]).tolist() == [0]  # ends exactly at a frame boundary: frame 1 is off
    assert np.flatnonzero(y[:, 2]).tolist() == [7]  # clipped to the clip's 8 frames
    with pytest.raises(ValueError, match="ends"):
        strong_frames([(2.0, 1.0, "Dog")], SED, 8, hop)


def test_strong_frames_match_the_baseline_formula_at_the_crnn_hop():
    hop = 255 * 4 / 16_000  # paper 003's CRNN output hop: 63.75 ms, 157 frames per 10 s
    rng = np.random.default_rng(0)
    for _ in range(50):
        onset = float(rng.uniform(0, 9.5))
        offset = float(min(10.0, onset + rng.uniform(0, 3)))
        y = strong_frames([(onset, offset, "Speech")], SED, 157, hop)[:, 1]
        first = int(np.clip(onset / hop, 0, 157))  # DESED_task Encoder: int(_time_to_frame(onset))
        stop = int(math.ceil(np.clip(offset / hop, 0, 157)))  # int(np.ceil(_time_to_frame(offset)))
        want = np.zeros(157)
        want[first:stop] = 1
        np.testing.assert_array_equal(y, want)


def test_weak_from_events_and_cluster_id():
    np.testing.assert_array_equal(weak_from_events([(0, 1, "Alarm"), (2, 3, "Alarm")], SED), [0, 0, 1])
    np.testing.assert_array_equal(weak_from_events([], SED), [0, 0, 0])
    assert cluster_id([3, 0, -1], k=15).tolist() == [3, 0, -1]
    with pytest.raises(ValueError, match=r"\[0, 15\)"):
        cluster_id([15], k=15)
