"""init_from: a pretext checkpoint starts a model with another head size; a frozen trunk trains only the head."""

import pytest
import torch

from avs.models import create_model
from avs.models.checkpoint import save_checkpoint
from avs.models.init_from import classifier_prefixes, freeze_trunk, init_from


class Net(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, classes)

    def forward(self, x):
        return self.head(self.trunk(x))


def test_a_15_cluster_checkpoint_starts_a_20_class_model(tmp_path):
    torch.manual_seed(0)
    pretext = Net(15)
    path = tmp_path / "pretext.safetensors"
    save_checkpoint(path, pretext)
    transfer = Net(20)
    fresh_head = transfer.head.weight.clone()
    with pytest.raises(ValueError, match="could not be loaded"):
        init_from(path, Net(20))  # the head's shape differs and was not dropped
    report = init_from(path, transfer, drop=("head.",))
    assert set(report.dropped) == {"head.weight", "head.bias"} and not report.shape_mismatch
    assert "trunk.0.weight" in report.loaded and "trunk.1.running_mean" in report.loaded
    assert set(report.missing) == {"head.weight", "head.bias"}
    torch.testing.assert_close(transfer.trunk[0].weight, pretext.trunk[0].weight)
    torch.testing.assert_close(transfer.head.weight, fresh_head)  # the new head keeps its initialisation


def test_ddp_prefixes_and_unexpected_keys():
    src = {f"module.{k}": v for k, v in Net(3).state_dict().items()}
    src["module.extra.weight"] = torch.zeros(2)
    report = init_from(src, Net(3))
    assert report.unexpected == ("extra.weight",) and not report.missing


def test_frozen_trunk_changes_only_the_head():
    torch.manual_seed(1)
    net = Net(4)
    names = freeze_trunk(net, trainable=("head.",))
    assert names == ["head.weight", "head.bias"]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    net.trunk.eval()  # keep batch-norm statistics fixed too
    loss = net(torch.randn(5, 8)).pow(2).mean()
    loss.backward()
    opt.step()
    after = net.state_dict()
    for k in before:
        changed = not torch.equal(before[k], after[k])
        assert changed == k.startswith("head."), k
    with pytest.raises(ValueError, match="nothing would train"):
        freeze_trunk(net, trainable=("classifier.",))


# ------------------------------------------------------------------------------------------------ registered models

TIMM = {"backbone": "resnet10t", "random_init": True, "input_size": None}  # head: backbone.fc


def _trunk(model: torch.nn.Module, head: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith(head)}


def _assert_same_trunk(a: torch.nn.Module, b: torch.nn.Module, head: tuple[str, ...]) -> None:
    ta, tb = _trunk(a, head), _trunk(b, head)
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def test_classifier_prefixes_name_each_models_head():
    assert classifier_prefixes(create_model("timm-cnn", **TIMM)) == ("backbone.fc.",)
    assert classifier_prefixes(create_model("timm-cnn", **{**TIMM, "backbone": "test_efficientnet"})) == (
        "backbone.classifier.",
    )
    clip = create_model("clip-late-fusion")
    assert classifier_prefixes(clip) == ("head.",)
    clip.reset_classifier(7)
    assert classifier_prefixes(clip) == ("head.",)
    with pytest.raises(TypeError, match="get_classifier"):
        classifier_prefixes(Net(3))


def test_a_30_output_timm_checkpoint_starts_a_20_class_model(tmp_path):
    torch.manual_seed(0)
    pretext = create_model("timm-cnn", num_classes=30, **TIMM)
    path = save_checkpoint(tmp_path / "pretext.safetensors", pretext)
    transfer = create_model("timm-cnn", num_classes=20, **TIMM)
    head = classifier_prefixes(transfer)
    fresh_head = transfer.backbone.fc.weight.clone()
    with pytest.raises(ValueError, match="could not be loaded"):
        init_from(path, create_model("timm-cnn", num_classes=20, **TIMM))
    report = init_from(path, transfer, drop=head)
    assert set(report.dropped) == set(report.missing) == {"backbone.fc.weight", "backbone.fc.bias"}
    assert not report.shape_mismatch and not report.unexpected
    _assert_same_trunk(transfer, pretext, head)
    assert torch.equal(transfer.backbone.fc.weight, fresh_head)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert transfer.eval()(x).shape == (2, 20)
        emb = transfer.forward_head(transfer.forward_features(x), pre_logits=True)
        torch.testing.assert_close(emb, pretext.eval().forward_head(pretext.forward_features(x), pre_logits=True))


def test_reset_classifier_before_init_from_drops_the_old_head(tmp_path):
    torch.manual_seed(1)
    pretext = create_model("timm-cnn", num_classes=30, **TIMM)
    path = save_checkpoint(tmp_path / "pretext.pt", pretext)
    transfer = create_model("timm-cnn", num_classes=30, **TIMM)
    transfer.reset_classifier(20)
    report = init_from(path, transfer, drop=classifier_prefixes(transfer))
    assert set(report.missing) == {"backbone.fc.weight", "backbone.fc.bias"}
    _assert_same_trunk(transfer, pretext, ("backbone.fc.",))
    assert transfer.cfg.num_classes == 20 and transfer.backbone.fc.out_features == 20


def test_init_from_then_reset_classifier_keeps_the_loaded_trunk(tmp_path):
    torch.manual_seed(2)
    pretext = create_model("clip-late-fusion", num_classes=30)
    pretext.train()
    pretext(torch.randn(8, 1664))  # move the BatchNorm running stats: they must travel too
    path = save_checkpoint(tmp_path / "pretext.safetensors", pretext)
    transfer = create_model("clip-late-fusion", num_classes=30)
    report = init_from(path, transfer)  # same shape: everything loads
    assert not report.missing and not report.dropped
    transfer.reset_classifier(20)
    _assert_same_trunk(transfer, pretext, ("head.",))
    assert (transfer.head.out_features, transfer.cfg.num_classes) == (20, 20)
    x = torch.randn(3, 1664)
    with torch.no_grad():
        assert transfer.eval()(x).shape == (3, 20)


def test_clip_late_fusion_head_transfer_with_frozen_trunk(tmp_path):
    torch.manual_seed(3)
    path = save_checkpoint(tmp_path / "pretext.pt", create_model("clip-late-fusion", num_classes=30))
    model = create_model("clip-late-fusion", num_classes=20)
    head = classifier_prefixes(model)
    init_from(path, model, drop=head)
    assert freeze_trunk(model, trainable=head) == ["head.weight", "head.bias"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.eval()  # frozen trunk: BatchNorm statistics fixed too
    model(torch.randn(4, 1664)).pow(2).mean().backward()
    opt.step()
    after = model.state_dict()
    for k in before:
        assert (not torch.equal(before[k], after[k])) == k.startswith(head), k
    model.reset_classifier(0)  # no classifier left: nothing would train
    with pytest.raises(ValueError, match="nothing would train"):
        freeze_trunk(model, trainable=classifier_prefixes(model))
