"""CLIP image embeddings and zero-shot CLIP (avs.features.clip_image) against direct open_clip calls."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from avs.features.clip_image import (
    ClipEncoderConfig,
    ClipImageEmbedder,
    MissingWeightsError,
    ZeroShotClassifier,
    clip_embed_dim,
    load_clip,
    load_state_dict,
    resolve_weights,
)
from avs.testing.media import pattern_frame

TINY = "avs-tiny-clip"  # a small open_clip config registered below: fast to build and to save


@pytest.fixture(scope="module", autouse=True)
def tiny_model_config(tmp_path_factory):
    cfg = {
        "embed_dim": 32,
        "quick_gelu": False,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    path = tmp_path_factory.mktemp("clipcfg") / f"{TINY}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    yield


@pytest.fixture(scope="module")
def vit_b32() -> ClipImageEmbedder:
    torch.manual_seed(0)
    return ClipImageEmbedder(ClipEncoderConfig("ViT-B-32", random_weights=True, batch_size=2), device="cpu")


def frames(n: int, width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    return np.stack([pattern_frame(3 * i + seed, width, height, color_seed=i + seed) for i in range(n)])


def direct_open_clip(embedder: ClipImageEmbedder, images: np.ndarray) -> np.ndarray:
    """open_clip's own path: PIL preprocess per image, encode_image, L2-normalise."""
    with torch.inference_mode():
        x = torch.stack([embedder.pil_preprocess(Image.fromarray(f)) for f in images])
        return torch.nn.functional.normalize(embedder.model.encode_image(x), dim=-1).numpy()


# ------------------------------------------------------------------------------------------------ embeddings


def test_embeddings_equal_direct_open_clip(vit_b32):
    images = np.concatenate([frames(3), frames(2, width=160, height=120, seed=5)[:, :64, :96]])
    emb = vit_b32(images)
    assert emb.shape == (5, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    ref = direct_open_clip(vit_b32, images)
    assert np.abs(emb - ref).max() < 1e-2
    assert (emb * ref).sum(axis=1).min() > 0.999


@pytest.mark.parametrize(("height", "width"), [(720, 1280), (224, 224), (50, 40)])
def test_batched_preprocess_matches_pil(vit_b32, height, width):
    images = frames(2, width=width, height=height, seed=1)
    ours = vit_b32.preprocess(images)
    ref = torch.stack([vit_b32.pil_preprocess(Image.fromarray(f)) for f in images])
    assert ours.shape == ref.shape == (2, 3, 224, 224)
    one_level = 1 / 255 / 0.26  # one grey level in normalised units
    assert (ours - ref).abs().max().item() <= 2.5 * one_level
    assert (ours - ref).abs().mean().item() < 0.05 * one_level


def test_batching_does_not_change_embeddings(vit_b32):
    images = frames(3, seed=2)
    together = vit_b32(images)  # batch_size=2: one batch of 2 and one of 1
    alone = np.concatenate([vit_b32(images[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    as_tensor = vit_b32(torch.from_numpy(images))
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), together, atol=1e-6)
    assert vit_b32(images[:0]).shape == (0, 512)
    with pytest.raises(ValueError, match="uint8"):
        vit_b32(images.astype(np.float32))


def test_embedding_dims_of_the_paper_encoders():
    assert {m: clip_embed_dim(m) for m in ("RN50x4", "RN101", "ViT-B-32")} == {
        "RN50x4": 640,
        "RN101": 512,
        "ViT-B-32": 512,
    }


# ------------------------------------------------------------------------------------------------ zero-shot


def test_zero_shot_probabilities(vit_b32):
    names = ["street_traffic", "park", "metro_station"]
    zs = ZeroShotClassifier(vit_b32, vit_b32.tokenizer, names)
    assert [p[0] for p in zs.prompts] == [
        "a photo of a street traffic.",
        "a photo of a park.",
        "a photo of a metro station.",
    ]
    emb = vit_b32(frames(2))
    probs = zs(emb)
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    model, tok = vit_b32.model, open_clip.get_tokenizer("ViT-B-32")
    with torch.inference_mode():
        text = torch.nn.functional.normalize(model.encode_text(tok([p[0] for p in zs.prompts])), dim=-1)
        scale = model.logit_scale.exp()
        ref = (scale * torch.from_numpy(emb) @ text.T).softmax(dim=-1).numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    assert zs.logit_scale == pytest.approx(float(scale))
    fixed = ZeroShotClassifier(vit_b32.model, vit_b32.tokenizer, names, logit_scale=100.0)
    assert fixed.logit_scale == 100.0
    two = ZeroShotClassifier(vit_b32, vit_b32.tokenizer, names, template=["a photo of a {}.", "a {} scene."])
    assert two.text_embeddings.shape == (3, 512)
    np.testing.assert_allclose(two.text_embeddings.norm(dim=-1).numpy(), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ weights


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", refuse)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_hf", refuse)
    monkeypatch.setattr(open_clip.factory, "download_pretrained", refuse)


def test_missing_pretrained_weights_give_a_clear_error(tmp_path, no_network):
    cfg = ClipEncoderConfig("ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    with pytest.raises(MissingWeightsError) as info:
        load_clip(cfg)
    message = str(info.value)
    assert "ViT-B-32" in message and "openai" in message and str(tmp_path) in message
    assert "random_weights=True" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_checkpoint_and_no_weights_at_all(tmp_path):
    with pytest.raises(MissingWeightsError, match="nope.pt"):
        load_clip(ClipEncoderConfig(TINY, checkpoint=str(tmp_path / "nope.pt")))
    with pytest.raises(MissingWeightsError, match="random_weights=True"):
        load_clip(ClipEncoderConfig(TINY, pretrained=None))
    with pytest.raises(ValueError, match="known tags"):
        load_clip(ClipEncoderConfig("ViT-B-32", pretrained="no-such-tag"))
    with pytest.raises(ValueError, match="CUDA"):
        load_clip(ClipEncoderConfig(TINY, random_weights=True, precision="fp16"), "cpu")
    with pytest.raises(ValueError, match="contradict"):
        ClipEncoderConfig(TINY, random_weights=True, checkpoint="x.pt")


def _tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return open_clip.create_model(TINY).state_dict()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script / save, to make the archive
@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript"])
def test_checkpoint_loads_safely(tmp_path, fmt, no_network):
    state = _tiny_state()
    path = tmp_path / f"tiny.{'pt' if fmt != 'safetensors' else 'safetensors'}"
    if fmt == "pt":
        torch.save({"state_dict": state}, path)
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:  # a TorchScript archive holding the same parameters (as OpenAI's original release does)
        holder = torch.nn.Module()
        for i, v in enumerate(state.values()):
            holder.register_buffer(f"b{i}", v)
        scripted = torch.jit.script(holder)
        torch.jit.save(scripted, str(path))
        names = {f"b{i}": k for i, k in enumerate(state)}
        loaded = load_state_dict(str(path))
        assert {names[k] for k in loaded} == set(state)
        return
    model, _, dim = load_clip(ClipEncoderConfig(TINY, pretrained=None, checkpoint=str(path)))
    assert dim == 32
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": Image.new("RGB", (1, 1))}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|global"):
        load_clip(ClipEncoderConfig(TINY, pretrained=None, checkpoint=str(path)))


def test_pretrained_tag_is_found_in_the_local_caches_only(tmp_path, monkeypatch, no_network):
    """A tag resolves to the HF hub cache layout or open_clip's URL file name, without any download."""
    tag = {
        "url": "https://example.invalid/models/avs-tiny-test.pt",
        "hf_hub": "avs-test/tiny-clip/",
        "quick_gelu": True,
    }
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TINY, {"testtag": tag})
    cfg = ClipEncoderConfig(TINY, pretrained="testtag", cache_dir=str(tmp_path))
    with pytest.raises(MissingWeightsError, match="avs-test/tiny-clip"):
        resolve_weights(cfg)
    state = _tiny_state()

    url_file = tmp_path / "avs-tiny-test.pt"  # open_clip's download folder layout: basename of the URL
    torch.save(state, url_file)
    assert resolve_weights(cfg) == str(url_file)

    snapshot = tmp_path / "models--avs-test--tiny-clip" / "snapshots" / "abc123"  # HF hub cache layout
    snapshot.mkdir(parents=True)
    (tmp_path / "models--avs-test--tiny-clip" / "refs").mkdir()
    (tmp_path / "models--avs-test--tiny-clip" / "refs" / "main").write_text("abc123")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "open_clip_model.safetensors"))
    assert resolve_weights(cfg) == str(snapshot / "open_clip_model.safetensors")

    model, _, _ = load_clip(cfg)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k])
    acts = {type(m).__name__ for m in model.modules()}
    assert "QuickGELU" in acts  # the tag's quick_gelu=True is applied


# ------------------------------------------------------------------------------------------------ paper encoders / gpu


@pytest.mark.parametrize(("name", "dim", "size"), [("RN50x4", 640, 288), ("RN101", 512, 224)])
def test_resnet_encoders_random_weights(name, dim, size):
    embedder = ClipImageEmbedder(ClipEncoderConfig(name, random_weights=True), device="cpu")
    assert embedder.embed_dim == dim and embedder.image_size == (size, size)
    images = frames(2, width=160, height=96)
    emb = embedder(images)
    assert emb.shape == (2, dim)
    ref = direct_open_clip(embedder, images)
    assert (emb * ref).sum(axis=1).min() > 0.999


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_fp16_matches_fp32():
    images = frames(4, width=320, height=240)
    torch.manual_seed(0)
    fp32 = ClipImageEmbedder(ClipEncoderConfig("ViT-B-32", random_weights=True), device="cuda")
    torch.manual_seed(0)
    fp16 = ClipImageEmbedder(ClipEncoderConfig("ViT-B-32", random_weights=True, precision="fp16"), device="cuda")
    a, b = fp32(images), fp16(images)
    assert (a * b).sum(axis=1).min() > 0.99
    torch.manual_seed(0)
    cpu = ClipImageEmbedder(ClipEncoderConfig("ViT-B-32", random_weights=True), device="cpu")
    assert (cpu(images) * a).sum(axis=1).min() > 0.9999  # CUDA fp32 = CPU fp32
    on_gpu = fp32(torch.from_numpy(images).cuda())
    assert on_gpu.is_cuda
    np.testing.assert_allclose(on_gpu.cpu().numpy(), a, atol=1e-5)
