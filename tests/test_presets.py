"""Paper presets: the settings the papers' own code used (padding, test-time frames, cluster count)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from avs.cluster.config import ClusterConfig
from avs.decode.video import sample_times
from avs.features.base import extractor_config
from avs.presets import PRESETS
from avs.shards.config import AudioConfig, VideoConfig

PAPER_PRESETS = [
    "dcase2021-t1b",
    "dcase2021-t1b-test",
    "dcase2020-sed",
    "dcase2019-tritrain",
    "owens-texture",
    "owens-mfcc",
]


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_paper_presets_pad_centred_frames_by_reflection(name: str) -> None:
    # Every paper used librosa < 0.10 (or, paper 003, passed pad_mode="reflect" itself); avs's default
    # follows librosa >= 0.10 (zeros), so each STFT feature set of a paper preset says "reflect".
    for fs in PRESETS[name]["features"]:
        cfg = extractor_config(fs["extractor"], fs["params"])
        fields = {f.name for f in dataclasses.fields(cfg)}
        if fs["extractor"] in ("logmel", "mfcc"):
            assert cfg.center and cfg.pad_mode == "reflect", (name, fs["name"])
        else:  # texture (one whole-window FFT), frames, CLIP: no framed STFT, nothing to pad
            assert "pad_mode" not in fields, (name, fs["name"])


def test_dcase2020_sed_uses_the_baseline_window() -> None:
    cfg = extractor_config("logmel", PRESETS["dcase2020-sed"]["features"][0]["params"])
    assert (cfg.window, cfg.periodic_window) == ("hamming", False)  # np.hamming(2048) in the baseline code


def test_dcase2021_t1b_test_scores_five_frames_per_1s_video() -> None:
    train, test = PRESETS["dcase2021-t1b"], PRESETS["dcase2021-t1b-test"]
    assert test["features"] == train["features"] and test["audio"] == train["audio"]
    assert train["video"]["n_frames"] == 12  # 000 §2.2: 12 per 10-s file
    video = VideoConfig(**test["video"])
    rule = video.rule(AudioConfig(**test["audio"]))
    np.testing.assert_allclose(sample_times(1.0, rule), [0.1, 0.3, 0.5, 0.7, 0.9])  # 000 §3: five per test video
    # the ffmpeg-like alternative (fps=5) stays one setting away
    fps5 = VideoConfig(**{**test["video"], "sampling": "fps", "fps": 5.0}).rule(AudioConfig())
    np.testing.assert_allclose(sample_times(1.0, fps5), [0.0, 0.2, 0.4, 0.6, 0.8])


def test_cluster_default_is_paper001_k15() -> None:
    assert ClusterConfig(features="f", out="o").k == 15  # paper 001 Tables 1-2, Figure 3 (left)
