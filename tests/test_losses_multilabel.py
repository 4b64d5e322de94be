"""Paper 002's class-balanced weights (eq. 3), none-class weights, reduced focal loss (eqs. 4-6, printed and
original forms) and outlier removal, against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from avs.train.losses import binary_focal_loss
from avs.train.losses_multilabel import (
    class_balanced_weights,
    drop_largest,
    none_class_weights,
    reduced_focal_loss,
)


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def test_class_balanced_weights_from_counts():
    w = class_balanced_weights([1, 10, 1000], beta=0.9)
    assert w.tolist() == pytest.approx([1.0, 0.1 / (1 - 0.9**10), 0.1 / (1 - 0.9**1000)], rel=1e-6)
    n = class_balanced_weights([1, 10, 1000], beta=0.9, normalize=True)
    assert float(n.sum()) == pytest.approx(3.0) and n[0] > n[1] > n[2]  # scarce classes weigh more
    w = class_balanced_weights([67, 98412], beta=0.9999)  # LADI's lava vs damage: none (Table 1)
    assert w.tolist() == pytest.approx([1e-4 / (1 - 0.9999**67), 1e-4 / (1 - 0.9999**98412)], rel=1e-5)
    with pytest.raises(ValueError, match="positive"):
        class_balanced_weights([3, 0], beta=0.99)


def test_none_class_weights():
    classes = ["flooding", "damage: none", "trees", "water: none"]
    assert none_class_weights(classes, 0.1).tolist() == pytest.approx([1.0, 0.1, 1.0, 0.1])
    assert none_class_weights(classes, 0.01, ["trees"]).tolist() == pytest.approx([1.0, 1.0, 0.01, 1.0])
    with pytest.raises(ValueError, match="not among"):
        none_class_weights(classes, 0.1, ["lava"])


def test_class_balanced_focal_loss_is_eq3():
    # one sample, y = (1, 0.25), p = (0.8, 0.5): p^ = (0.8, 0.75); CB weights of counts (1, 10), beta 0.9
    logits = torch.tensor([[logit(0.8), 0.0]])
    y = torch.tensor([[1.0, 0.25]])
    w = class_balanced_weights([1, 10], 0.9)
    terms = [-(0.2**2) * math.log(0.8), -(0.25**2) * math.log(0.75)]
    want = float(w[0]) * terms[0] + float(w[1]) * terms[1]
    assert float(binary_focal_loss(logits, y, 2.0, alpha=w)) == pytest.approx(want, rel=1e-5)


def test_reduced_focal_loss_printed_and_original_by_hand():
    # columns: (y=1, p=0.8), (y=1, p=0.2), (y=0.5, p=0.8), (y=0, p=0.3)
    logits = torch.tensor([[logit(0.8), logit(0.2), logit(0.8), logit(0.3)]])
    y = torch.tensor([[1.0, 1.0, 0.5, 0.0]])
    phat = [0.8, 0.2, 0.7, 0.7]
    # printed: w1 = [p > 0.5] -> plain -log p^, else ((1 - p^) / 0.5)^2 (-log p^)
    printed = [
        -math.log(phat[0]),
        -((0.8 / 0.5) ** 2) * math.log(phat[1]),
        -math.log(phat[2]),
        -((0.3 / 0.5) ** 2) * math.log(phat[3]),
    ]
    got = reduced_focal_loss(logits, y, th=0.5, gamma=2.0, form="printed", reduction="none")
    assert float(got[0]) == pytest.approx(sum(printed), rel=1e-5)
    # original: [p^ < 0.5] -> plain, else focal
    original = [
        -((0.2 / 0.5) ** 2) * math.log(phat[0]),
        -math.log(phat[1]),
        -((0.3 / 0.5) ** 2) * math.log(phat[2]),
        -((0.3 / 0.5) ** 2) * math.log(phat[3]),
    ]
    got = reduced_focal_loss(logits, y, th=0.5, gamma=2.0, form="original", reduction="none")
    assert float(got[0]) == pytest.approx(sum(original), rel=1e-5)
    # th 0.7: the printed switch moves with it
    got = reduced_focal_loss(logits[:, :1], y[:, :1], th=0.7, form="printed")
    assert float(got) == pytest.approx(-math.log(0.8), rel=1e-5)  # p 0.8 > 0.7: plain
    got = reduced_focal_loss(torch.tensor([[logit(0.6)]]), torch.ones(1, 1), th=0.7, form="printed")
    assert float(got) == pytest.approx(-((0.4 / 0.7) ** 2) * math.log(0.6), rel=1e-5)
    # none-class weight 0.1 on the last column scales only its term
    w = torch.tensor([1.0, 1.0, 1.0, 0.1])
    got = reduced_focal_loss(logits, y, th=0.5, alpha=w, reduction="sum")
    assert float(got) == pytest.approx(sum(printed[:3]) + 0.1 * printed[3], rel=1e-5)
    # finite and differentiable at extreme logits
    x = torch.tensor([[40.0, -40.0]], requires_grad=True)
    reduced_focal_loss(x, torch.tensor([[0.0, 1.0]])).backward()
    assert torch.isfinite(x.grad).all()


def test_outlier_removal_drops_exactly_the_largest_loss():
    per_sample = torch.tensor([1.0, 5.0, 3.0, 5.0])
    kept = drop_largest(per_sample)
    assert kept.tolist() == [1.0, 3.0, 5.0]  # one of the two maxima, the first
    assert drop_largest(torch.tensor([2.0])).tolist() == [2.0]
    x = torch.tensor([0.5, 3.0, 1.0], requires_grad=True)
    drop_largest(x * 2).mean().backward()
    assert x.grad.tolist() == pytest.approx([1.0, 0.0, 1.0])  # the outlier gets no gradient
