"""Focal losses (paper 000 sec. 3, paper 002 eq. (1)-(2)), augmentations and the training recipe (paper 000 sec. 3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avs.config import from_dict, to_dict
from avs.train.augment import (
    AudioAugment,
    AudioAugmentConfig,
    AugmentConfig,
    FrameAugmentConfig,
    apply_gain_db,
    augment_audio,
    augment_frames,
    frame_eval_transform,
    frame_train_transform,
    freq_mask,
)
from avs.train.losses import BinaryFocalLoss, FocalLoss, binary_focal_loss, focal_loss

# ------------------------------------------------------------------------------------------------ focal loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_gamma0_is_cross_entropy(reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 10, generator=g) * 3
    target = torch.randint(0, 10, (16,), generator=g)
    got = focal_loss(logits, target, gamma=0.0, reduction=reduction)
    want = F.cross_entropy(logits, target, reduction=reduction)
    assert torch.allclose(got, want, atol=1e-6)


def test_focal_gamma2_matches_direct_formula():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 10, generator=g, dtype=torch.float64) * 2
    target = torch.randint(0, 10, (32,), generator=g)
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    p_t = p[torch.arange(32), target]
    want = (-((1 - p_t) ** 2) * torch.log(p_t)).mean()
    got = focal_loss(logits, target, gamma=2.0)
    assert torch.allclose(got.double(), want, atol=1e-6)
    # with per-class alpha
    alpha = torch.linspace(0.1, 1.0, 10, dtype=torch.float64)
    want_a = (-alpha[target] * (1 - p_t) ** 2 * torch.log(p_t)).mean()
    assert torch.allclose(focal_loss(logits, target, gamma=2.0, alpha=alpha).double(), want_a, atol=1e-6)
    # module == function; one-hot soft targets == hard targets
    assert torch.allclose(FocalLoss(gamma=2.0)(logits, target), got)
    one_hot = F.one_hot(target, 10).double()
    assert torch.allclose(focal_loss(logits, one_hot, gamma=2.0), got, atol=1e-6)


def test_focal_ignore_index_and_gradients():
    logits = torch.tensor([[50.0, -50.0, 0.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], requires_grad=True)
    target = torch.tensor([1, 2, -100])
    loss = focal_loss(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[2] == 0)  # ignored row
    both = focal_loss(logits.detach()[:2], target[:2])
    assert torch.allclose(loss.detach(), both)


def test_binary_focal_hard_targets_match_torchvision():
    from torchvision.ops import sigmoid_focal_loss

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 5, generator=g) * 3
    target = (torch.rand(8, 5, generator=g) > 0.5).float()
    want = sigmoid_focal_loss(logits, target, alpha=-1, gamma=2.0, reduction="none").sum(1).mean()
    assert torch.allclose(binary_focal_loss(logits, target), want, atol=1e-6)
    assert torch.allclose(BinaryFocalLoss()(logits, target), want, atol=1e-6)


def test_binary_focal_soft_targets_paper002_formula():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.rand(6, 4, generator=g, dtype=torch.float64)  # soft labels
    p = torch.sigmoid(logits)
    p_hat = 1 - (y - p).abs()  # paper 002 eq. (2)
    want = (-((1 - p_hat) ** 2) * torch.log(p_hat)).sum(1)  # eq. (1), summed over classes
    got = binary_focal_loss(logits, y, reduction="none")
    assert torch.allclose(got.double(), want, atol=1e-6)
    extreme = torch.tensor([[100.0, -100.0]], requires_grad=True)
    loss = binary_focal_loss(extreme, torch.tensor([[0.0, 1.0]]))
    loss.backward()
    assert torch.isfinite(extreme.grad).all() and loss.item() == pytest.approx(200.0)  # -log sigmoid(-100) = 100, x2


# ------------------------------------------------------------------------------------------------ audio augment


def test_gain_shifts_only_the_static_channel():
    x = torch.randn(2, 3, 16, 10)
    y = apply_gain_db(x, torch.tensor([3.0, -6.0]))
    assert torch.allclose(y[:, 0] - x[:, 0], torch.tensor([3.0, -6.0]).view(2, 1, 1).expand(2, 16, 10))
    assert torch.equal(y[:, 1:], x[:, 1:])


def test_freq_mask_same_band_on_all_channels():
    x = torch.randn(2, 3, 20, 8)
    y = freq_mask(x, torch.tensor([[2], [10]]), torch.tensor([[3], [0]]), value=-1.0)
    assert (
        torch.all(y[0, :, 2:5] == -1.0)
        and torch.equal(y[0, :, :2], x[0, :, :2])
        and torch.equal(y[0, :, 5:], x[0, :, 5:])
    )
    assert torch.equal(y[1], x[1])  # zero width: nothing masked
    z = freq_mask(x, torch.tensor([[0], [0]]), torch.tensor([[1], [1]]))  # "mean" fill
    assert torch.allclose(z[:, :, 0, 0], x.mean(dim=(2, 3)))


def test_augment_audio_random_but_reproducible():
    x = torch.randn(4, 3, 64, 20)
    cfg = AudioAugmentConfig(freq_mask_param=10, num_freq_masks=2)
    a = augment_audio(x, cfg, torch.Generator().manual_seed(0))
    b = augment_audio(x, cfg, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    aug = AudioAugment(cfg)
    assert aug.eval()(x) is x


def test_frame_transforms_follow_paper000():
    from torchvision.transforms import v2

    cfg = FrameAugmentConfig()
    t = frame_train_transform(cfg).transforms
    kinds = [type(s) for s in t]
    assert kinds == [
        v2.Resize,
        v2.RandomAffine,
        v2.ColorJitter,
        v2.GaussianBlur,
        v2.ToDtype,
        v2.RandomErasing,
        v2.Normalize,
    ]
    assert list(t[0].size) == [448, 448]
    affine = t[1]
    assert (
        list(affine.degrees) == [-10.0, 10.0]
        and list(affine.translate) == [0.1, 0.1]
        and list(affine.scale) == [0.5, 1.5]
    )
    assert list(t[3].kernel_size) == [11, 11]
    assert t[5].p == 0.5  # torchvision default
    small = FrameAugmentConfig(size=(32, 40))
    frames = torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8)  # (batch, H, W, 3) decoded frames
    torch.manual_seed(0)
    out = augment_frames(frames, frame_train_transform(small))
    assert out.shape == (2, 3, 32, 40) and out.dtype == torch.float32
    ev = augment_frames(frames, frame_eval_transform(small))
    assert torch.equal(ev, augment_frames(frames, frame_eval_transform(small)))


def test_augment_config_roundtrip():
    cfg = AugmentConfig()
    assert from_dict(AugmentConfig, to_dict(cfg)) == cfg
    cfg2 = from_dict(AugmentConfig, {"audio": {"freq_mask_value": 0.0}, "frames": {"size": [224, 224]}})
    assert cfg2.audio.freq_mask_value == 0.0 and cfg2.frames.size == (224, 224)


# ------------------------------------------------------------------------------------------------ paper 000 recipe


def test_paper000_presets_recipe():
    """Paper 000 §3 as the presets hold it: SGD (IBN-Net: lr 0.1, momentum 0.9, wd 1e-4), lr / 10 after epochs
    5, 10, 15 of 20, focal loss gamma 2, batch 24 / 20 / 48 per family."""
    from avs.config import from_dict
    from avs.train.config import TrainConfig, train_config
    from avs.train.optim import Schedule, build_optimizer
    from avs.train.presets import TRAIN_PRESETS
    from avs.train.tasks.scene import SceneConfig, loss_function

    batch = {f: TRAIN_PRESETS[f"dcase2021-t1b-{f}"]["batch_size"] for f in ("logmel", "frame", "clip")}
    assert batch == {"logmel": 24, "frame": 20, "clip": 48}
    cfg = train_config({"shards": "s", "out": "o", "preset": "dcase2021-t1b-frame"})
    assert cfg.epochs == 20 and cfg.schedule.milestones == (5, 10, 15) and cfg.model == "frame-hrnet-w18"
    scene = from_dict(SceneConfig, cfg.task_params)
    assert scene.focal_gamma == 2.0 and scene.select_best_by == "val_accuracy" and scene.input == "frame"
    opt = build_optimizer(torch.nn.Linear(4, 2).parameters(), cfg.optimizer)
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert group["momentum"] == 0.9 and group["lr"] == 0.1 and group["weight_decay"] == 1e-4 and not group["nesterov"]
    sched = Schedule(opt, cfg.schedule)
    lrs = []
    for _ in range(cfg.epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.after_step()  # per-epoch schedule: a step does not move it
        sched.after_epoch()
    assert lrs == pytest.approx([0.1] * 5 + [0.01] * 5 + [0.001] * 5 + [0.0001] * 5)
    assert isinstance(loss_function(scene), FocalLoss)
    # the defaults of TrainConfig are the same recipe, and the preset's values yield to the user's
    plain = TrainConfig(shards="s", out="o")
    assert plain.optimizer == cfg.optimizer and plain.schedule == cfg.schedule and plain.epochs == 20
    mine = train_config(
        {"shards": "s", "out": "o", "preset": "dcase2021-t1b-logmel", "task_params": {"focal_gamma": 3}}
    )
    assert mine.task_params["focal_gamma"] == 3 and mine.task_params["loss"] == "focal" and mine.batch_size == 24
    with pytest.raises(KeyError, match="unknown training preset"):
        train_config({"shards": "s", "out": "o", "preset": "nope"})
