"""Training presets: a paper's recipe by name, so users write ``avs train SHARDS --preset dcase2021-t1b-logmel``.

Each preset is a nested mapping of ``TrainConfig`` fields merged under the user's YAML, flags and ``--set``
(``avs.config.deep_merge``); every number cites its paper (../shared/seeds/) and section. ``train_preset(name)``
returns a copy; ``TRAIN_PRESETS`` lists them.

Paper 000 (Okazaki et al., DCASE2021 Task 1B) §3, for all three families: "we used SGD with Momentum method";
"The learning rate is divided by 10 when the training model reached 5 epoch, 10 epoch and 15 epoch"; "Epoch: 20";
"Other hyper-parameters are the same as used in IBN-Net [29] GitHub repository" (lr 0.1, momentum 0.9, weight
decay 1e-4, no Nesterov: IBN-Net ``imagenet.py`` defaults; its 0.1 was for batch 256, and the paper says
nothing about scaling it, so it is kept); "We trained these models with Focal Loss [30] which gamma parameter is
2.0"; "we used best epoch models in the validation accuracy of each model". Batch sizes differ by family.
"""

from __future__ import annotations

import copy
from typing import Any

from avs.classes import SCENE_CLASSES

_PAPER000 = {
    "task": "scene",
    "classes": list(SCENE_CLASSES),  # TAU Urban Audio-Visual Scenes 2021: 10 scenes (000 §1)
    "train_split": "train",  # TAU fold1 train / evaluate (000 §3, Table 2 "fold1")
    "val_split": "evaluate",
    "epochs": 20,  # 000 §3 "Epoch: 20"
    "optimizer": {
        "name": "sgd",  # 000 §3 "SGD with Momentum"
        "lr": 0.1,  # IBN-Net imagenet.py default (000 §3 defers to IBN-Net)
        "momentum": 0.9,  # IBN-Net imagenet.py default
        "nesterov": False,  # IBN-Net: plain momentum
        "weight_decay": 1e-4,  # IBN-Net imagenet.py default
    },
    # 000 §3 "divided by 10 when the training model reached 5 epoch, 10 epoch and 15 epoch"
    "schedule": {"name": "multistep", "interval": "epoch", "milestones": [5, 10, 15], "gamma": 0.1},
    "task_params": {
        "loss": "focal",  # 000 §3 "Focal Loss [30]"
        "focal_gamma": 2.0,  # 000 §3 "gamma parameter is 2.0"
        "select_best_by": "val_accuracy",  # 000 §3 "best epoch models in the validation accuracy"
        "augment": True,  # 000 §3 augmentations of each family (avs.train.augment)
    },
}


def _paper000(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(_PAPER000)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # 000 §2.1 / Table 2 A02: ResNeSt-50d on 3-channel log-mel of 1-s segments, "Resized to 256x100x3" (§3, the
    # model's input_size); "Train batch size: 24" (§3)
    "dcase2021-t1b-logmel": _paper000(
        model="logmel-resnest50d",
        features=["logmel"],
        batch_size=24,  # 000 §3 (2.1)
        task_params={"input": "logmel"},
    ),
    # 000 §2.2 / Table 2 V03: HRNet-W18 on video frames, "Resized to 448x448x3" (§3); "Train batch size: 20"
    "dcase2021-t1b-frame": _paper000(
        model="frame-hrnet-w18",
        features=["frames"],
        batch_size=20,  # 000 §3 (2.2)
        task_params={"input": "frame"},
    ),
    # 000 §2.3 / Table 1 C04: CLIP Late Fusion Network on RN50x4, RN101 and ViT-B/32 image features;
    # "Train batch size: 48" (§3)
    "dcase2021-t1b-clip": _paper000(
        model="clip-late-fusion",
        features=["clip_rn50x4", "clip_rn101", "clip_vitb32"],
        batch_size=48,  # 000 §3 (2.3)
        task_params={"input": "clip"},
    ),
}
# 000 Table 2 A01 / A03, V01 / V02: the other backbones of each family, same recipe
for _name, _model in (
    ("dcase2021-t1b-logmel-regnetx", "logmel-regnetx-064"),
    ("dcase2021-t1b-logmel-efficientnet", "logmel-tf-efficientnet-b1-ns"),
):
    TRAIN_PRESETS[_name] = {**copy.deepcopy(TRAIN_PRESETS["dcase2021-t1b-logmel"]), "model": _model}
for _name, _model in (
    ("dcase2021-t1b-frame-regnetx", "frame-regnetx-064"),
    ("dcase2021-t1b-frame-resnest", "frame-resnest50d"),
):
    TRAIN_PRESETS[_name] = {**copy.deepcopy(TRAIN_PRESETS["dcase2021-t1b-frame"]), "model": _model}
# 000 Table 3 S03 / S04: the same models on five location-disjoint folds of the whole development set; a run
# per fold (--fold 0 .. 4), the fold models' predictions averaged by `avs ensemble` (several inputs per family)
for _family in ("logmel", "frame", "clip"):
    TRAIN_PRESETS[f"dcase2021-t1b-{_family}-5fold"] = {
        **copy.deepcopy(TRAIN_PRESETS[f"dcase2021-t1b-{_family}"]),
        "folds": 5,  # 000 Table 3: five train / validation splits without location overlap
        "fold": 0,  # choose with --fold k
        "fold_column": "location",  # TAU's recording location ("identifier")
        "train_split": "all",  # 000 Table 3: "we splitted the whole dataset" (train + evaluate of fold1)
    }


def train_preset(name: str) -> dict[str, Any]:
    try:
        return copy.deepcopy(TRAIN_PRESETS[name])
    except KeyError:
        raise KeyError(f"unknown training preset {name!r}; known: {sorted(TRAIN_PRESETS)}") from None
