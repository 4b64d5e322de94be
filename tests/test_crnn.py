"""CRNN of paper 003 (DCASE 2020 task 4 baseline, turpaultn/dcase20_task4 baseline/models/CRNN.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avs.models import create_model, load_model, model_config, model_names, save_checkpoint
from avs.models.crnn import CRNN, CRNNConfig, state_dict_from_reference
from avs.models.init_from import classifier_prefixes, freeze_trunk, init_from

NAME = "crnn-dcase2020"


@pytest.fixture(scope="module")
def model() -> CRNN:
    torch.manual_seed(0)
    return create_model(NAME).eval()


@pytest.fixture(scope="module")
def logmel() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 628, 128)  # 10 s at 16 kHz, hop 255 (config.py:35), 128 mels (config.py:34)


@pytest.fixture(scope="module")
def short() -> torch.Tensor:
    torch.manual_seed(2)
    return torch.randn(2, 64, 128)  # 64 frames -> 16: keeps the CPU tests fast


def test_registered_and_defaults():
    assert NAME in model_names()
    cfg = model_config(NAME)
    assert isinstance(cfg, CRNNConfig)
    assert cfg.filters == (16, 32, 64, 128, 128, 128, 128)
    assert cfg.pooling == ((2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2))
    assert (cfg.in_chans, cfg.num_classes, cfg.rnn_hidden, cfg.rnn_layers, cfg.dropout) == (1, 10, 128, 2, 0.5)
    assert cfg.attention and cfg.rnn_dropout == 0.0
    assert cfg.output_frames() == 157 and cfg.output_frames(628) == 157


def test_shapes_and_probabilities(model, logmel):
    with torch.no_grad():
        strong, weak = model(logmel)
    assert strong.shape == (2, 157, 10)  # 628 frames / (2 * 2) time pooling = 157
    assert weak.shape == (2, 10)
    for p in (strong, weak):
        assert torch.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0
    # the reference's layout (batch, 1, frames, mels) gives the same result
    with torch.no_grad():
        strong4, weak4 = model(logmel.unsqueeze(1))
    assert torch.equal(strong, strong4) and torch.equal(weak, weak4)
    assert model.num_features == 256 and model.num_classes == 10 and model.model_name == NAME


def test_weak_is_the_attention_pooling_of_strong(model, short):
    with torch.no_grad():
        feats = model.forward_features(short)
        strong, weak = model.forward_head(feats)
        sof = torch.softmax(model.head["dense_softmax"](feats), dim=-1).clamp(1e-7, 1)  # CRNN.py:90-92
    torch.testing.assert_close(weak, (strong * sof).sum(1) / sof.sum(1))
    assert weak.min() >= strong.min(1).values.min() - 1e-6  # a weighted mean over time of strong


def test_forward_is_head_of_features(model, short):
    with torch.no_grad():
        feats = model.forward_features(short)
        assert feats.shape == (2, 16, 256)  # BGRU output, 2 * 128
        strong, weak = model(short)
        strong2, weak2 = model.forward_head(feats)
        emb = model.forward_head(feats, pre_logits=True)
    assert torch.equal(strong, strong2) and torch.equal(weak, weak2)
    assert torch.equal(emb, feats)  # eval mode: dropout is the identity


def test_parameter_count_by_hand(model):
    # Layer list of main.py:237-244 -> CRNN.py / CNN.py / RNN.py, counted by hand.
    filters = [16, 32, 64, 128, 128, 128, 128]
    ins = [1, *filters[:-1]]
    conv = sum(3 * 3 * i * o + o for i, o in zip(ins, filters, strict=True))  # Conv2d 3x3 weight + bias
    assert conv == (9 * 1 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128) + 3 * (
        9 * 128 * 128 + 128
    )
    assert conv == 160 + 4640 + 18496 + 73856 + 3 * 147584 == 539904
    bn = sum(2 * o for o in filters)  # BatchNorm2d weight + bias (running stats are buffers)
    assert bn == 1248
    glu = sum(o * o + o for o in filters)  # GLU's Linear(C, C) (CNN.py:9)
    assert glu == 272 + 1056 + 4160 + 4 * 16512 == 71536
    h = 128
    # nn.GRU per layer and direction: 3 gates x (W_ih: h x in, W_hh: h x h, b_ih: h, b_hh: h); bidirectional
    gru_l1 = 2 * 3 * (h * 128 + h * h + 2 * h)  # input: the CNN's 128 channels (CRNN.py:28)
    gru_l2 = 2 * 3 * (h * 2 * h + h * h + 2 * h)  # input: 2 * 128 of layer 1
    assert (gru_l1, gru_l2) == (198144, 296448)
    dense = 256 * 10 + 10  # CRNN.py:37 Linear(n_RNN_cell * 2, nclass), strong
    dense_softmax = 256 * 10 + 10  # CRNN.py:40, attention
    total = conv + bn + glu + gru_l1 + gru_l2 + dense + dense_softmax
    assert total == 1_112_420
    # main.py:307 logs this count (trainable parameters); paper 003 states no parameter count
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == total
    assert sum(p.numel() for p in model.cnn.parameters()) == conv + bn + glu
    assert sum(p.numel() for p in model.rnn.parameters()) == gru_l1 + gru_l2


def test_layers_follow_the_reference():
    m = create_model(NAME)
    bns = [x for x in m.cnn if isinstance(x, nn.BatchNorm2d)]
    assert len(bns) == 7 and all(b.eps == 1e-3 and b.momentum == 0.99 for b in bns)  # CNN.py:49
    assert [type(x).__name__ for x in m.cnn[:5]] == ["Conv2d", "BatchNorm2d", "GLU", "Dropout", "AvgPool2d"]
    drops = [x for x in m.modules() if isinstance(x, nn.Dropout)]
    assert len(drops) == 8 and all(d.p == 0.5 for d in drops)  # 7 conv blocks (conv_dropout) + after the GRU
    assert m.rnn.bidirectional and m.rnn.num_layers == 2 and m.rnn.hidden_size == 128 and m.rnn.dropout == 0


def test_reference_init():
    torch.manual_seed(0)
    m = create_model(NAME)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert len(convs) == 7 and len(linears) == 7 + 2  # 7 GLU linears + dense + dense_softmax
    assert all(torch.all(c.bias == 0) for c in convs)
    assert all(torch.all(lin.bias == 0) for lin in linears)
    big = m.cnn.glu6.linear.weight
    assert abs(big.std().item() - 0.01) < 1e-3  # N(0, 0.01)
    bn = m.cnn.batchnorm6
    assert torch.all(bn.bias == 0) and abs(bn.weight.mean().item() - 1) < 0.01 and bn.weight.std() < 0.05
    w = m.cnn.conv6.weight  # Xavier uniform, gain sqrt(2): bound = sqrt(2) * sqrt(6 / (fan_in + fan_out))
    bound = 2**0.5 * (6 / (128 * 9 + 128 * 9)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    for p in m.rnn.parameters():
        if p.ndim > 1:  # orthogonal: tall (3h, in) matrices have orthonormal columns
            torch.testing.assert_close(p.T @ p, torch.eye(p.shape[1]), atol=1e-4, rtol=0)
        else:  # GRU biases keep PyTorch's default U(-1/sqrt(h), 1/sqrt(h)) (utils.py:53-56 leaves them)
            assert p.abs().max() <= 128**-0.5 and p.abs().max() > 0


def test_reset_classifier_keeps_trunk(short):
    m = create_model(NAME).eval()
    trunk = {k: v.clone() for k, v in m.state_dict().items() if not k.startswith("head.")}
    with torch.no_grad():
        feats = m.forward_features(short)
    m.reset_classifier(5)
    assert m.num_classes == 5 and m.cfg.num_classes == 5 and not m.training
    assert m.head["dense"].out_features == 5 and m.head["dense_softmax"].out_features == 5
    for k, v in m.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, trunk[k]), k
    with torch.no_grad():
        strong, weak = m(short)
        assert torch.equal(m.forward_features(short), feats)
    assert strong.shape == (2, 16, 5) and weak.shape == (2, 5)
    m.reset_classifier(0)
    assert len(m.get_classifier()) == 0 and m.num_classes == 0
    with torch.no_grad():
        assert torch.equal(m(short), feats)  # no head: the per-frame features


def test_classifier_prefixes_cover_both_heads(model):
    head = model.get_classifier()
    assert set(head) == {"dense", "dense_softmax"}
    assert classifier_prefixes(model) == ("head.",)
    m = create_model(NAME)
    names = freeze_trunk(m, trainable=classifier_prefixes(m))
    assert sorted(names) == [
        "head.dense.bias",
        "head.dense.weight",
        "head.dense_softmax.bias",
        "head.dense_softmax.weight",
    ]
    # a 10-class checkpoint into a 20-class model: everything but the heads loads
    target = create_model(NAME, num_classes=20)
    report = init_from(model.state_dict(), target, drop=classifier_prefixes(target))
    assert set(report.missing) == {n for n in target.state_dict() if n.startswith("head.")}
    assert torch.equal(target.cnn.conv3.weight, model.cnn.conv3.weight)


def test_no_attention_weak_is_mean():
    torch.manual_seed(0)
    m = create_model(NAME, attention=False).eval()
    assert set(m.get_classifier()) == {"dense"}
    with torch.no_grad():
        strong, weak = m(torch.randn(1, 100, 128))
    assert strong.shape == (1, 25, 10)
    torch.testing.assert_close(weak, strong.mean(1))  # CRNN.py:95


def test_config_checks_and_json_form():
    with pytest.raises(ValueError, match="frequency bins"):
        create_model(NAME, n_mels=64)  # 64 / 2**7 -> 0 bins
    with pytest.raises(ValueError, match="one entry per block"):
        create_model(NAME, filters=[16, 32])
    cfg = model_config(NAME, {"pooling": [[2, 2], [2, 2], [1, 2], [1, 2], [1, 2], [1, 2], [1, 2]]})
    assert cfg == CRNNConfig()
    with pytest.raises(ValueError, match="expected"):
        create_model(NAME)(torch.randn(2, 2, 628, 128))


def test_train_mode_backward(short):
    m = create_model(NAME).train()
    strong, weak = m(short)
    target = torch.zeros_like(weak)
    loss = nn.functional.binary_cross_entropy(weak, target) + nn.functional.binary_cross_entropy(
        strong, torch.zeros_like(strong)
    )
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_checkpoint_round_trip(tmp_path, short, suffix):
    torch.manual_seed(0)
    m = create_model(NAME)
    m.train()
    m(short)  # move the BatchNorm running statistics away from their defaults
    m.reset_classifier(7)
    m.eval()
    path = save_checkpoint(tmp_path / f"crnn{suffix}", m, {"epoch": 3})
    loaded, meta = load_model(path)
    loaded.eval()
    assert meta["model_name"] == NAME and meta["extra"] == {"epoch": 3}
    assert isinstance(loaded, CRNN) and loaded.cfg == m.cfg and loaded.num_classes == 7
    with torch.no_grad():
        a, b = m(short), loaded(short)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_state_dict_from_reference():
    # The reference's nested state dict (CRNN.py:54-58), keys written out from CNN.py / RNN.py module names.
    m = create_model(NAME)
    own = m.state_dict()
    cnn = {}
    for i in range(7):
        for key in ("conv{}.weight", "conv{}.bias", "glu{}.linear.weight", "glu{}.linear.bias"):
            cnn[key.format(i)] = own[f"cnn.{key.format(i)}"].clone() + 1
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            cnn[f"batchnorm{i}.{key}"] = own[f"cnn.batchnorm{i}.{key}"].clone() + 1
    rnn = {
        f"rnn.{kind}_l{layer}{direction}": own[f"rnn.{kind}_l{layer}{direction}"].clone() + 1
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for layer in (0, 1)
        for direction in ("", "_reverse")
    }
    dense = {"weight": own["head.dense.weight"] + 1, "bias": own["head.dense.bias"] + 1}
    flat = state_dict_from_reference({"cnn": cnn, "rnn": rnn, "dense": dense})
    result = m.load_state_dict(flat, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == ["head.dense_softmax.bias", "head.dense_softmax.weight"]
    assert torch.equal(m.rnn.weight_hh_l1_reverse, rnn["rnn.weight_hh_l1_reverse"])
    assert torch.equal(m.cnn.glu4.linear.weight, cnn["glu4.linear.weight"])


def test_init_choice_reference_or_pytorch():
    from avs.models.crnn import GLU

    ref = create_model("crnn-dcase2020")
    torch_init = create_model("crnn-dcase2020", init="pytorch")
    glu_ref = [m.linear.weight.std().item() for m in ref.modules() if isinstance(m, GLU)]
    glu_pt = [m.linear.weight.std().item() for m in torch_init.modules() if isinstance(m, GLU)]
    assert all(abs(s - 0.01) < 0.003 for s in glu_ref)  # reference weights_init: N(0, 0.01)
    assert all(s > 0.04 for s in glu_pt)  # PyTorch's kaiming-uniform default: 1 / sqrt(3 C) >= 0.05
    with pytest.raises(ValueError, match="init"):
        create_model("crnn-dcase2020", init="xavier")
