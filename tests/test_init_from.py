"""init_from: a pretext checkpoint starts a model with another head size; a frozen trunk trains only the head."""

import pytest
import torch

from avs.models.checkpoint import save_checkpoint
from avs.models.init_from import freeze_trunk, init_from


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
