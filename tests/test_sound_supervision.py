"""Paper 001's frame CNNs (torchvision AlexNet / ResNet-18 with the avs model interface), their ImageNet weights
from a local file, init_from a pretext run with another head size, and frozen-trunk ("Head") training."""

from __future__ import annotations

import types

import pytest
import torch

ARCHS = {"frame-alexnet": "alexnet", "frame-resnet18": "resnet18"}


@pytest.mark.parametrize("name", list(ARCHS))
def test_interface_and_torchvision_weights(name, tmp_path):
    """Loaded from a torchvision state dict (as the ImageNet file is), the model computes torchvision's network:
    the same logits once its classifier holds torchvision's last layer."""
    import torchvision.models as tvm

    from avs.models import create_model
    from avs.models.torchvision_cnn import imagenet_weights_file

    arch = ARCHS[name]
    torch.manual_seed(0)
    ref = getattr(tvm, arch)(weights=None).eval()
    enum = {"alexnet": tvm.AlexNet_Weights, "resnet18": tvm.ResNet18_Weights}[arch]
    torch.save(ref.state_dict(), tmp_path / enum.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    assert imagenet_weights_file(arch, str(tmp_path)).startswith(str(tmp_path))
    model = create_model(name, weights="imagenet", cache_dir=str(tmp_path), num_classes=1000, input_size=None).eval()
    last = ref.classifier[6] if arch == "alexnet" else ref.fc
    model.classifier.load_state_dict(last.state_dict())
    x = torch.randn(2, 3, 96, 112)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5)
        fmap = model.forward_features(x)
        assert torch.equal(model.forward_head(fmap), model(x))
        assert model.forward_head(fmap, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(20)
    assert model(x).shape == (2, 20) and model.cfg.num_classes == 20


def test_missing_imagenet_weights_name_the_place(tmp_path):
    from avs.models import MissingWeightsError, create_model

    with pytest.raises(MissingWeightsError, match=str(tmp_path)):
        create_model("frame-alexnet", weights="imagenet", cache_dir=str(tmp_path))


def test_init_from_a_pretext_run_with_another_head(tmp_path):
    """A 15-cluster pretext model into a 20-class transfer model: the trunk (and AlexNet's fc6 / fc7) load, the
    classifier is dropped and stays freshly initialised."""
    from avs.models import create_model, save_checkpoint
    from avs.models.init_from import classifier_prefixes, init_from

    torch.manual_seed(0)
    pretext = create_model("frame-alexnet", num_classes=15)
    save_checkpoint(tmp_path / "pretext.safetensors", pretext)
    torch.manual_seed(1)
    transfer = create_model("frame-alexnet", num_classes=20)
    fresh = transfer.classifier.weight.clone()
    report = init_from(tmp_path / "pretext.safetensors", transfer, drop=classifier_prefixes(transfer))
    assert set(report.missing) == {"classifier.weight", "classifier.bias"}
    assert torch.equal(transfer.features[0].weight, pretext.features[0].weight)
    assert torch.equal(transfer.fc_layers[1].weight, pretext.fc_layers[1].weight)  # fc6
    assert torch.equal(transfer.classifier.weight, fresh)


@pytest.mark.parametrize("with_init", [False, True], ids=["random-start", "pretext-start"])
def test_frozen_trunk_training_changes_only_the_head(with_init, tmp_path):
    """The engine's freeze_trunk (voc07-transfer-head): SGD steps move AlexNet's fc6-fc8 only."""
    from avs.models import create_model, save_checkpoint
    from avs.train.loop import _init_from

    torch.manual_seed(0)
    if with_init:
        save_checkpoint(tmp_path / "p.safetensors", create_model("frame-alexnet", num_classes=15))
    net = create_model("frame-alexnet", num_classes=20, input_size=(64, 64))
    cfg = types.SimpleNamespace(
        init_from=str(tmp_path / "p.safetensors") if with_init else None,
        init_drop=("head",),
        freeze_trunk=True,
        trainable=("fc_layers.", "head"),
    )
    _init_from(net, cfg, rank=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(torch.randn(4, 3, 64, 64)), torch.ones(4, 20))
        loss.backward()
        opt.step()
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"fc_layers.1.weight", "fc_layers.1.bias", "fc_layers.4.weight", "fc_layers.4.bias"} | {
        "classifier.weight",
        "classifier.bias",
    }


def test_pretext_and_transfer_presets_build():
    from avs.config import from_dict
    from avs.train.config import TrainConfig
    from avs.train.presets import train_preset

    for name in ("owens-pretext-alexnet", "owens-pretext-resnet18", "voc07-transfer-all", "voc07-transfer-head"):
        cfg = from_dict(TrainConfig, {**train_preset(name), "shards": "s", "out": "o"})
        assert cfg.schedule.name == "onecycle" and cfg.optimizer.name == "adamw"
    head = from_dict(TrainConfig, {**train_preset("voc07-transfer-head"), "shards": "s", "out": "o"})
    assert head.freeze_trunk and head.init_drop == ("head",) and len(head.classes) == 20


def test_fig3_sweep_presets_have_k_classes():
    from avs.config import from_dict
    from avs.train.config import TrainConfig
    from avs.train.presets import FIG3_KS, train_preset

    assert 15 in FIG3_KS and 30 in FIG3_KS  # 001: the tables' k and the knee of Fig. 3
    for arch in ("alexnet", "resnet18"):
        for k in FIG3_KS:
            cfg = from_dict(TrainConfig, {**train_preset(f"owens-pretext-{arch}-k{k}"), "shards": "s", "out": "o"})
            assert cfg.model == f"frame-{arch}" and cfg.model_params["num_classes"] == k == len(cfg.classes)
            assert cfg.classes[-1] == str(k - 1) and cfg.epochs == 200
