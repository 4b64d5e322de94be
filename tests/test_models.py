"""Models of paper 000: registry entries, timm wrappers, CLIP Late Fusion Network (Table 1), safe checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from avs.models import (
    MissingWeightsError,
    UnsafeCheckpointError,
    create_model,
    load_checkpoint,
    load_model,
    model_config,
    model_names,
    save_checkpoint,
)
from avs.models.checkpoint import is_avs_checkpoint, read_checkpoint
from avs.models.timm_cnn import resolve_timm_weights

TINY = "test_efficientnet"  # timm's tiny test model (~0.1M parameters)


# ------------------------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    "name, backbone, input_size",
    [
        ("logmel-regnetx-064", "regnetx_064.pycls_in1k", (256, 100)),
        ("logmel-resnest50d", "resnest50d.in1k", (256, 100)),
        ("logmel-tf-efficientnet-b1-ns", "tf_efficientnet_b1.ns_jft_in1k", (256, 100)),
        ("frame-regnetx-064", "regnetx_064.pycls_in1k", (448, 448)),
        ("frame-resnest50d", "resnest50d.in1k", (448, 448)),
        ("frame-hrnet-w18", "hrnet_w18.ms_in1k", (448, 448)),
    ],
)
def test_paper000_entries_resolve_timm_names(name, backbone, input_size):
    import timm

    cfg = model_config(name)
    assert cfg.backbone == backbone
    assert cfg.input_size == input_size
    assert cfg.num_classes == 10 and cfg.in_chans == 3
    assert cfg.pretrained and not cfg.random_init  # real weights unless asked otherwise
    assert backbone in timm.list_pretrained(backbone)


def test_registry_lists_all_models():
    names = model_names()
    for name in ("clip-late-fusion", "timm-cnn", "logmel-resnest50d", "frame-hrnet-w18"):
        assert name in names
    with pytest.raises(KeyError, match="registered"):
        create_model("no-such-model")


@pytest.mark.parametrize(
    "name, params_m",
    [("frame-regnetx-064", 24.60), ("frame-resnest50d", 25.45), ("frame-hrnet-w18", 19.27)],
)
def test_frame_cnn_parameter_counts_match_table5(name, params_m):
    # Table 5 of paper 000 (V01-V03); built on the meta device: no memory, no forward.
    with torch.device("meta"):
        model = create_model(name, random_init=True)
    n = sum(p.numel() for p in model.parameters())
    assert round(n / 1e6, 2) == params_m


def test_overrides_and_config_types():
    cfg = model_config("timm-cnn", {"backbone": TINY, "input_size": [32, 48]}, random_init=True)
    assert cfg.input_size == (32, 48) and cfg.random_init
    with pytest.raises(ValueError, match="unknown option"):
        model_config("timm-cnn", backbone=TINY, no_such_field=1)
    with pytest.raises(ValueError, match="contradict"):
        model_config("timm-cnn", backbone=TINY, random_init=True, checkpoint="x.pt")


# ------------------------------------------------------------------------------------------------ timm wrappers


def test_timm_wrapper_random_init_logits_and_interface():
    torch.manual_seed(0)
    model = create_model("timm-cnn", backbone=TINY, random_init=True, input_size=(64, 40)).eval()
    x = torch.randn(3, 3, 50, 30)
    with torch.no_grad():
        feats = model.forward_features(x)  # (3, 256, 2, 2): 64 x 40 input, stride 32
        logits = model(x)
        pooled = model.forward_head(feats, pre_logits=True)
        old_path = model.backbone.get_classifier()(pooled)  # the composition forward has always computed
    assert feats.shape == (3, model.backbone.num_features, 2, 2)
    assert pooled.shape == (3, model.num_features) and logits.shape == (3, 10)
    assert torch.equal(model.forward_head(feats), logits) and torch.equal(old_path, logits)
    torch.testing.assert_close(pooled, feats.mean(dim=(2, 3)))  # global average pooling, no dropout in eval
    assert model.model_name == "timm-cnn" and model.weights_source == "random"


@pytest.mark.parametrize("backbone, channels", [(TINY, 256), ("resnet10t", 512)])
def test_timm_forward_features_is_the_unpooled_map_of_the_resized_input(backbone, channels):
    torch.manual_seed(0)
    model = create_model("timm-cnn", backbone=backbone, random_init=True, input_size=(64, 96)).eval()
    x = torch.randn(2, 3, 50, 30)
    with torch.no_grad():
        fmap = model.forward_features(x)  # (2, C, 64 / 32, 96 / 32)
        direct = model.backbone.forward_features(model.resize_input(x))
        out = model(x)
        head_of_fmap = model.forward_head(fmap)
    assert fmap.shape == (2, channels, 2, 3) and model.num_features == channels
    assert torch.equal(fmap, direct)  # resizing happens inside forward_features
    assert torch.equal(out, head_of_fmap)
    with pytest.raises(ValueError, match="batch, chans"):
        model.forward_features(torch.randn(3, 50, 30))


def test_timm_forward_matches_head_of_features_in_train_mode():
    model = create_model("timm-cnn", backbone="resnet10t", random_init=True, input_size=None, drop_rate=0.5)
    model.train()
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(3)
    out = model(x)
    torch.manual_seed(3)
    again = model.forward_head(model.forward_features(x))  # same dropout draws
    assert torch.equal(out, again)


def test_timm_reset_classifier_keeps_trunk_and_changes_outputs(tmp_path):
    torch.manual_seed(0)
    model = create_model("timm-cnn", backbone="resnet10t", random_init=True, input_size=None).eval()
    x = torch.randn(2, 3, 32, 32)
    trunk = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("backbone.fc.")}
    old_head = model.backbone.fc.weight.clone()
    with torch.no_grad():
        emb = model.forward_head(model.forward_features(x), pre_logits=True)
    model.reset_classifier(20)
    assert model.num_classes == 20 and model.cfg.num_classes == 20 and model.cfg.backbone == "resnet10t"
    assert model.backbone.fc.weight.shape == (20, model.num_features)
    assert not model.backbone.fc.training  # follows the model's mode
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in trunk.items())
    assert not torch.equal(model.backbone.fc.weight[:10], old_head)  # freshly initialised
    with torch.no_grad():
        assert model(x).shape == (2, 20)
        assert torch.equal(model.forward_head(model.forward_features(x), pre_logits=True), emb)
    rebuilt, meta = load_model(save_checkpoint(tmp_path / "m20.safetensors", model))
    assert meta["config"]["num_classes"] == 20 and rebuilt.eval()(x).shape == (2, 20)
    torch.testing.assert_close(rebuilt(x), model(x))
    model.reset_classifier(0)  # no classifier: forward returns the pooled embedding
    with torch.no_grad():
        assert torch.equal(model(x), emb)
    with pytest.raises(ValueError, match="num_classes"):
        model.reset_classifier(-1)


def test_logmel_preset_resizes_input_to_256x100():
    model = create_model("logmel-resnest50d", backbone=TINY, random_init=True).eval()
    x = torch.randn(2, 3, 256, 94)  # 1 s at 48 kHz, hop 512, 256 mels
    assert model.resize_input(x).shape == (2, 3, 256, 100)
    same = torch.randn(2, 3, 256, 100)
    assert model.resize_input(same) is same
    with torch.no_grad():
        assert model(x).shape == (2, 10)


def test_missing_pretrained_weights_error_is_clear(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        create_model("logmel-resnest50d", cache_dir=str(tmp_path))
    msg = str(err.value)
    assert "resnest50d.in1k" in msg and str(tmp_path) in msg and "random_init=True" in msg
    with pytest.raises(MissingWeightsError, match="no weights given"):
        create_model("timm-cnn", backbone=TINY, pretrained=False)
    with pytest.raises(MissingWeightsError, match="not found"):
        create_model("timm-cnn", backbone=TINY, checkpoint=str(tmp_path / "none.pth"))


def _fake_hf_cache(cache: Path, repo_id: str, filename: str, state: dict) -> None:
    from safetensors.torch import save_file

    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    snap = folder / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    save_file(state, str(snap / filename))


def test_pretrained_tag_loads_from_local_hf_cache(tmp_path):
    import timm

    torch.manual_seed(1)
    imagenet = timm.create_model("resnet10t", pretrained=False)  # stands in for the 1000-class weights
    state = {k: v.clone().contiguous() for k, v in imagenet.state_dict().items()}
    _fake_hf_cache(tmp_path, "timm/resnet10t.c3_in1k", "model.safetensors", state)
    cfg = model_config("timm-cnn", backbone="resnet10t.c3_in1k", cache_dir=str(tmp_path))
    assert resolve_timm_weights(cfg).endswith("model.safetensors")
    model = create_model("timm-cnn", cfg)
    assert torch.equal(model.backbone.conv1[0].weight, state["conv1.0.weight"])  # backbone from the file
    assert model.backbone.fc.weight.shape == (10, model.num_features)  # new 10-class head


def test_local_checkpoint_initialises_backbone_and_adapts(tmp_path):
    import timm

    src = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "imagenet.pth"
    torch.save(src.state_dict(), path)
    model = create_model("timm-cnn", backbone="resnet10t", checkpoint=str(path), num_classes=4)
    assert torch.equal(model.backbone.layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    assert model.forward_head(torch.zeros(1, model.num_features, 2, 2)).shape == (1, 4)  # (batch, C, H', W')
    assert model.get_classifier()(torch.zeros(1, model.num_features)).shape == (1, 4)


# ------------------------------------------------------------------------------------------------ CLIP late fusion


def test_clip_late_fusion_matches_table1():
    model = create_model("clip-late-fusion")
    dims = (640, 512, 512)  # RN50x4, RN101, ViT-B/32
    assert len(model.branches) == 3
    for branch, d in zip(model.branches, dims, strict=True):
        kinds = [type(m) for m in branch]
        assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear]
        assert (branch[0].in_features, branch[0].out_features) == (d, 512)
        assert branch[1].num_features == 512
        assert branch[3].p == 0.2
        assert (branch[4].in_features, branch[4].out_features) == (512, 256)
    assert (model.fusion.in_features, model.fusion.out_features) == (768, 128)
    assert (model.head.in_features, model.head.out_features) == (128, 10)

    def branch_params(d):
        return (d * 512 + 512) + (512 + 512) + (512 * 256 + 256)  # Linear, BatchNorm1d (weight, bias), Linear

    expected = branch_params(640) + branch_params(512) + branch_params(512) + (768 * 128 + 128) + (128 * 10 + 10)
    assert expected == 1_350_282  # Table 5: C04 has 1.35M parameters
    assert sum(p.numel() for p in model.parameters()) == expected


def test_clip_late_fusion_inputs_and_interface():
    torch.manual_seed(0)
    model = create_model("clip-late-fusion").eval()
    a, b, c = torch.randn(4, 640), torch.randn(4, 512), torch.randn(4, 512)
    with torch.no_grad():
        out_tuple = model((a, b, c))
        out_dict = model({"ViT-B/32": c, "RN101": b, "RN50x4": a})
        out_cat = model(torch.cat([a, b, c], dim=1))
        feats = model.forward_features((a, b, c))  # (4, 256 * 3): concatenated branch outputs
        emb = model.forward_head(feats, pre_logits=True)  # (4, 128): Linear(768, 128)
        branch_out = [br(t) for br, t in zip(model.branches, (a, b, c), strict=True)]  # 3 x (4, 256)
        table1 = model.head(model.fusion(torch.cat(branch_out, dim=1)))  # Table 1, written out
    assert out_tuple.shape == (4, 10) and feats.shape == (4, 768) and emb.shape == (4, model.num_features)
    assert model.num_features == 128
    assert torch.allclose(out_tuple, out_dict) and torch.allclose(out_tuple, out_cat)
    assert torch.equal(model.forward_head(feats), out_tuple) and torch.equal(table1, out_tuple)
    assert model.get_classifier() is model.head
    with pytest.raises(ValueError, match="RN101"):
        model((a, torch.randn(4, 640), c))
    with pytest.raises(KeyError, match="missing"):
        model({"RN50x4": a})


def test_clip_late_fusion_reset_classifier(tmp_path):
    torch.manual_seed(0)
    model = create_model("clip-late-fusion").eval()
    x = torch.randn(3, 1664)
    keep = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    with torch.no_grad():
        emb = model.forward_head(model.forward_features(x), pre_logits=True)
    model.reset_classifier(20)
    assert (model.head.in_features, model.head.out_features) == (128, 20)
    assert model.num_classes == 20 and model.cfg.num_classes == 20 and model.cfg.input_dims == (640, 512, 512)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in keep.items())
    with torch.no_grad():
        assert model(x).shape == (3, 20)
        assert torch.equal(model.forward_head(model.forward_features(x), pre_logits=True), emb)
    rebuilt, _ = load_model(save_checkpoint(tmp_path / "c20.pt", model))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model(x))
    model.reset_classifier(0)
    with torch.no_grad():
        assert torch.equal(model(x), emb)
    with pytest.raises(ValueError, match="num_classes"):
        model.reset_classifier(-2)


# ------------------------------------------------------------------------------------------------ checkpoints


class Evil:
    """Any custom class: unpickling it would run arbitrary code paths."""

    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_checkpoint_roundtrip(tmp_path, suffix):
    torch.manual_seed(0)
    model = create_model("clip-late-fusion")
    model.train()
    model(torch.randn(8, 1664))  # move the BatchNorm running stats
    path = save_checkpoint(tmp_path / f"m{suffix}", model, {"epoch": 3, "val_accuracy": 0.9})
    assert is_avs_checkpoint(path)
    other = create_model("clip-late-fusion")
    meta = load_checkpoint(path, other)
    assert meta["extra"] == {"epoch": 3, "val_accuracy": 0.9} and meta["model_name"] == "clip-late-fusion"
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    rebuilt, meta2 = load_model(path)
    assert isinstance(rebuilt, type(model)) and meta2["config"]["dropout"] == 0.2
    rebuilt.eval()
    model.eval()
    x = torch.randn(2, 1664)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x))


def test_checkpoint_with_optimizer_and_timm_model(tmp_path):
    from avs.train.config import PAPER000_OPTIMIZER, PAPER000_SCHEDULE
    from avs.train.optim import build_optimizer, build_scheduler

    model = create_model("timm-cnn", backbone=TINY, random_init=True, input_size=None)
    opt = build_optimizer(model.parameters(), PAPER000_OPTIMIZER)
    sched = build_scheduler(opt, PAPER000_SCHEDULE)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    sched.step()
    path = save_checkpoint(tmp_path / "last.pt", model, {"epoch": 1}, optimizer=opt, scheduler=sched)
    model2 = create_model("timm-cnn", backbone=TINY, random_init=True, input_size=None)
    opt2 = build_optimizer(model2.parameters(), PAPER000_OPTIMIZER)
    sched2 = build_scheduler(opt2, PAPER000_SCHEDULE)
    load_checkpoint(path, model2, optimizer=opt2, scheduler=sched2)
    assert sched2.last_epoch == 1 and opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    # an avs checkpoint given as `checkpoint=` restores the whole model (head included)
    model3 = create_model("timm-cnn", backbone=TINY, checkpoint=str(path), input_size=None)
    assert torch.equal(model3.backbone.classifier.weight, model.backbone.classifier.weight)
    with pytest.raises(ValueError, match="safetensors"):
        save_checkpoint(tmp_path / "x.safetensors", model, optimizer=opt)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "y.pt", model, {"bad": object()})


def test_checkpoint_refuses_pickled_objects(tmp_path, capsys):
    model = create_model("clip-late-fusion")
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": model.state_dict(), "payload": Evil()}, path)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        load_checkpoint(path, model)
    with pytest.raises(UnsafeCheckpointError):
        create_model("timm-cnn", backbone=TINY, checkpoint=str(path))
    assert "unpickled!" not in capsys.readouterr().out


def test_checkpoint_strips_ddp_prefix(tmp_path):
    model = create_model("clip-late-fusion")
    path = tmp_path / "ddp.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    other = create_model("clip-late-fusion")
    load_checkpoint(path, other)
    assert torch.equal(other.head.weight, model.head.weight)
    state, meta, training = read_checkpoint(path)
    assert meta == {} and training == {} and all(k.startswith("module.") for k in state)
