"""CLIP image embeddings and zero-shot CLIP (paper 000, sec. 2.3) with open_clip_torch.

    cfg = ClipEncoderConfig("RN50x4")                           # OpenAI weights, from the local cache
    embed = ClipImageEmbedder(cfg, device="cuda")               # built once (a Ray stage's __init__)
    emb = embed(frames)                                         # (n, H, W, 3) uint8 -> (n, 640) float32, unit norm
    zs = ZeroShotClassifier(embed.model, embed.tokenizer, ["street_traffic", "park"])
    probs = zs(emb)                                             # (n, 2) softmax(logit_scale * emb @ text.T)

Weights (never downloaded here; never silently random):
  1. ``checkpoint``: a local file. ``.safetensors`` through safetensors; other files with
     ``torch.load(weights_only=True)`` (plain tensors only, no arbitrary unpickling); a TorchScript archive
     (OpenAI's original ``ViT-B-32.pt`` etc.) through ``torch.jit.load``, whose loader restores TorchScript
     modules and tensors, not arbitrary Python objects; only its ``state_dict`` is kept.
  2. else the open_clip ``pretrained`` tag (e.g. "openai"), looked up in the local caches only: the
     Hugging Face hub cache (``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``) for the tag's hub
     repository, then open_clip's download folder (``~/.cache/clip``) for the tag's URL file; ``cache_dir``
     replaces both. Nothing is fetched (the lookups are ``huggingface_hub.try_to_load_from_cache`` and a
     file check). Missing -> ``MissingWeightsError`` naming the model, the tag and every place looked in.
  3. random weights only with ``random_weights=True`` (tests, smoke runs).

The open_clip model names follow the paper's encoders: "RN101" (512-d), "RN50x4" (640-d, 288 px input),
"ViT-B-32" (512-d). With OpenAI weights they use QuickGELU: ``quick_gelu=None`` follows the tag's setting.

Preprocessing runs in torch on the whole batch, on the model's device, and reproduces open_clip's eval
transform (PIL): resize the shortest side to the input size (bicubic, antialiased; torchvision's uint8 kernel
follows PIL's), centre crop, scale to [0, 1], normalise with the model's mean / std. Frames differ from the PIL
path by at most a grey level or two after the resize; the embeddings agree to cosine > 0.999 (tested).
Other open_clip resize modes ("longest", non-square inputs) use open_clip's own PIL transform per image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

log = logging.getLogger(__name__)

CLIP_EMBED_DIMS = {
    "RN50": 1024,
    "RN101": 512,
    "RN50x4": 640,
    "RN50x16": 768,
    "ViT-B-32": 512,
    "ViT-B-16": 512,
    "ViT-L-14": 768,
}


class MissingWeightsError(FileNotFoundError):
    """The weights a CLIP config asks for are not on this machine (nothing is downloaded)."""


@dataclasses.dataclass(frozen=True)
class ClipEncoderConfig:
    model: str = "ViT-B-32"  # open_clip model name: "RN50x4", "RN101", "ViT-B-32" (paper 000, Table 2: C01-C03)
    pretrained: str | None = "openai"  # open_clip pretrained tag, from the local cache only
    checkpoint: str | None = None  # local weights file (.safetensors / state dict / TorchScript); wins over tag
    random_weights: bool = False  # random init: only when asked for explicitly (tests)
    precision: Literal["auto", "fp32", "fp16"] = "auto"  # auto: fp16 on CUDA, fp32 on CPU; fp16 only on CUDA
    quick_gelu: bool | None = None  # None: as the pretrained tag was trained (OpenAI weights: True)
    cache_dir: str | None = None  # replaces the HF hub cache and ~/.cache/clip when looking for tag weights
    batch_size: int = 64  # images per forward pass

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "fp16"):
            raise ValueError(f"ClipEncoderConfig.precision must be 'auto', 'fp32' or 'fp16', got {self.precision!r}")
        if self.random_weights and self.checkpoint:
            raise ValueError("ClipEncoderConfig: random_weights=True and a checkpoint contradict each other")
        if self.batch_size < 1:
            raise ValueError(f"ClipEncoderConfig.batch_size must be >= 1, got {self.batch_size}")


# ------------------------------------------------------------------------------------------------ weights


def _hf_cache_dir(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001
        return os.path.expanduser("~/.cache/huggingface/hub")


def _tag_cfg(model: str, tag: str) -> dict[str, Any]:
    import open_clip

    tag_cfg = open_clip.get_pretrained_cfg(model, tag)
    if not tag_cfg:
        known = open_clip.list_pretrained_tags_by_model(model)
        raise ValueError(f"open_clip has no pretrained tag {tag!r} for model {model!r}; known tags: {known}")
    return dict(tag_cfg)


def local_checkpoint(path: str, what: str) -> str:
    """The expanded path of a local weights file, or ``MissingWeightsError`` naming ``what`` and the path."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise MissingWeightsError(f"{what}: checkpoint file not found: {path}")
    return path


def resolve_weights(cfg: ClipEncoderConfig) -> str | None:
    """The local weights file ``cfg`` asks for (``None`` = random weights); never downloads.

    Raises ``MissingWeightsError`` naming the model, the tag and every place looked in.
    """
    if cfg.random_weights:
        return None
    if cfg.checkpoint:
        return local_checkpoint(cfg.checkpoint, f"CLIP {cfg.model!r}")
    if not cfg.pretrained:
        raise MissingWeightsError(
            f"CLIP {cfg.model!r}: no weights given; set pretrained (an open_clip tag such as 'openai'), "
            "checkpoint (a local file), or random_weights=True to use random weights on purpose"
        )
    if os.path.isfile(os.path.expanduser(cfg.pretrained)):  # open_clip also accepts a file path here
        return os.path.expanduser(cfg.pretrained)
    tag_cfg = _tag_cfg(cfg.model, cfg.pretrained)
    looked: list[str] = []
    hf_hub = tag_cfg.get("hf_hub", "")
    if hf_hub:
        from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo_id, filename = os.path.split(hf_hub)  # "org/repo/" -> the default file name (as open_clip)
        filename = filename or HF_WEIGHTS_NAME
        names = [filename]
        if filename == HF_WEIGHTS_NAME:
            names.insert(0, HF_SAFE_WEIGHTS_NAME)
        elif filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")
        hub_dir = _hf_cache_dir(cfg.cache_dir)
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None
        for name in names:
            looked.append(f"HF hub cache {hub_dir}: {repo_id}/{name}")
            if try_to_load_from_cache is not None:
                found = try_to_load_from_cache(repo_id, name, cache_dir=hub_dir)
                if isinstance(found, str) and os.path.isfile(found):
                    return found
    url = tag_cfg.get("url", "")
    if url:
        clip_dir = cfg.cache_dir or os.path.expanduser("~/.cache/clip")
        candidate = os.path.join(clip_dir, os.path.basename(url))
        looked.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    raise MissingWeightsError(
        f"CLIP {cfg.model!r} pretrained={cfg.pretrained!r}: weights are not on this machine (nothing is downloaded)."
        f" Looked in: {'; '.join(looked) or '(no location known for this tag)'}. Copy the weights there"
        f" (open_clip.create_model({cfg.model!r}, pretrained={cfg.pretrained!r}) on a machine with internet"
        " fills these caches), or pass checkpoint=PATH; random weights only with random_weights=True."
    )


def _is_torchscript(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") for n in z.namelist())  # torch.jit.save's marker


def load_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, loaded safely (see the module docstring)."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    if _is_torchscript(path):
        module = torch.jit.load(path, map_location="cpu")
        state = module.state_dict()
        for key in ("input_resolution", "context_length", "vocab_size"):
            state.pop(key, None)
        return dict(state)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    if state and next(iter(state)).startswith("module."):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def clip_embed_dim(model_name: str) -> int:
    """Embedding size of an open_clip model name (from its config; no model is built)."""
    import open_clip

    model_cfg = open_clip.get_model_config(model_name)
    if model_cfg is None:
        raise ValueError(f"unknown open_clip model {model_name!r}")
    return int(model_cfg["embed_dim"])


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _quiet_open_clip_random_init_warning():
    """open_clip logs "initialized randomly" when built without a tag; avs loads the weights itself."""
    root = logging.getLogger()
    drop = _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def load_clip(cfg: ClipEncoderConfig, device: str | torch.device = "cpu") -> tuple[Any, Any, int]:
    """(model in eval mode on ``device``, open_clip's PIL eval transform, embedding size)."""
    import open_clip
    from open_clip.factory import load_checkpoint
    from open_clip.transform import PreprocessCfg, image_transform_v2

    device = torch.device(device)
    if cfg.precision == "auto":
        cfg = dataclasses.replace(cfg, precision="fp16" if device.type == "cuda" else "fp32")
    if cfg.precision == "fp16" and device.type != "cuda":
        raise ValueError("ClipEncoderConfig.precision='fp16' needs a CUDA device; use fp32 on CPU")
    if open_clip.get_model_config(cfg.model) is None:
        raise ValueError(f"unknown open_clip model {cfg.model!r}; known: {open_clip.list_models()}")
    weights = resolve_weights(cfg)  # before building anything: a missing file fails fast
    tag_cfg: dict[str, Any] = {}
    if cfg.pretrained and not cfg.random_weights and open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained):
        tag_cfg = dict(open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained))
    quick_gelu = cfg.quick_gelu if cfg.quick_gelu is not None else bool(tag_cfg.get("quick_gelu", False))
    preprocess_keys = ("mean", "std", "interpolation", "resize_mode")
    # Random weights are drawn from a fixed seed (without touching the caller's RNG), so two embedders of
    # one random config (two Ray workers, a test) agree.
    with _quiet_open_clip_random_init_warning(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(
            cfg.model,
            pretrained=None,  # weights are loaded below, from the resolved local file only
            precision=cfg.precision,
            device=device,
            force_quick_gelu=quick_gelu,
            force_preprocess_cfg={k: tag_cfg[k] for k in preprocess_keys if k in tag_cfg} or None,
            pretrained_image=False,
            pretrained_text=False,
        )
    if weights is not None:
        if weights.endswith(".safetensors") or not _is_torchscript(weights):
            load_checkpoint(model, weights, strict=True, weights_only=True, device="cpu")
        else:
            model.load_state_dict(load_state_dict(weights), strict=True)
        log.info("CLIP %s: weights loaded from %s", cfg.model, weights)
    else:
        log.warning("CLIP %s: RANDOM weights (random_weights=True); embeddings carry no meaning", cfg.model)
    model.eval()
    preprocess = image_transform_v2(PreprocessCfg(**open_clip.get_model_preprocess_cfg(model)), is_train=False)
    embed_dim = int(getattr(model.visual, "output_dim", 0) or clip_embed_dim(cfg.model))
    return model, preprocess, embed_dim


# ------------------------------------------------------------------------------------------------ embedder


def _as_uint8_nhwc(frames: Any) -> torch.Tensor:
    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (n, height, width, 3) RGB, got {tuple(t.shape)} {t.dtype}")
    return t


class ClipImageEmbedder:
    """Frames -> unit-norm CLIP image embeddings; holds one model (build once, call per batch).

    ``__call__(frames)``: numpy (n, H, W, 3) uint8 -> numpy (n, dim) float32; a torch uint8 tensor (CPU or
    CUDA, e.g. DALI's frames) -> a float32 tensor on the embedder's device.
    """

    def __init__(self, cfg: ClipEncoderConfig, device: str | torch.device | None = None) -> None:
        import open_clip

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.cfg = cfg
        self.device = torch.device(device)
        self.model, self.pil_preprocess, self.embed_dim = load_clip(cfg, self.device)
        self.tokenizer = open_clip.get_tokenizer(cfg.model)
        pp = open_clip.get_model_preprocess_cfg(self.model)
        size = pp["size"]
        self.image_size: tuple[int, int] = (int(size), int(size)) if isinstance(size, int) else tuple(size)
        self.resize_mode: str = pp.get("resize_mode", "shortest")
        self.interpolation: str = pp.get("interpolation", "bicubic")
        conv1 = getattr(self.model.visual, "conv1", None)  # the first layer's dtype is the input's (fp16: conv in fp16)
        self.dtype = (
            conv1.weight.dtype if conv1 is not None else (torch.float16 if cfg.precision == "fp16" else torch.float32)
        )
        self.mean = torch.tensor(pp["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(pp["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        square = self.image_size[0] == self.image_size[1]
        self._torch_preprocess = self.resize_mode == "squash" or (self.resize_mode == "shortest" and square)

    def preprocess(self, frames: Any) -> torch.Tensor:
        """(n, H, W, 3) uint8 -> (n, 3, h, w) float32 normalised, on the embedder's device."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        x = _as_uint8_nhwc(frames)
        if not self._torch_preprocess:  # open_clip's own PIL transform, one image at a time
            from PIL import Image

            imgs = [self.pil_preprocess(Image.fromarray(f.cpu().numpy())) for f in x]
            return torch.stack(imgs).to(self.device)
        x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2)  # (n, 3, H, W) uint8
        mode = InterpolationMode.BILINEAR if self.interpolation == "bilinear" else InterpolationMode.BICUBIC
        h, w = self.image_size
        if self.resize_mode == "squash":
            x = TF.resize(x, [h, w], interpolation=mode, antialias=True)
        else:  # shortest side -> h (torchvision's rule, as open_clip's Resize(int)), then centre crop
            x = TF.resize(x, [h], interpolation=mode, antialias=True)
            x = TF.center_crop(x, [h, w])
        x = x.float().div_(255.0)
        return (x - self.mean) / self.std  # (n, 3, h, w)

    @torch.inference_mode()
    def embed(self, frames: Any) -> torch.Tensor:
        """(n, H, W, 3) uint8 -> (n, dim) float32 unit-norm tensor on the embedder's device."""
        x = _as_uint8_nhwc(frames)
        out = []
        for start in range(0, x.shape[0], self.cfg.batch_size):
            pixels = self.preprocess(x[start : start + self.cfg.batch_size]).to(self.dtype)
            emb = self.model.encode_image(pixels).float()  # (b, dim)
            out.append(torch.nn.functional.normalize(emb, dim=-1))
        if not out:
            return torch.zeros((0, self.embed_dim), dtype=torch.float32, device=self.device)
        return torch.cat(out)

    def __call__(self, frames: Any) -> Any:
        emb = self.embed(frames)
        return emb if isinstance(frames, torch.Tensor) else emb.cpu().numpy().astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------------ zero-shot


class ZeroShotClassifier:
    """Zero-shot CLIP: per-frame class probabilities softmax(logit_scale * image_emb @ text_emb.T).

    ``model``: an open_clip CLIP model or a ``ClipImageEmbedder``; ``tokenizer``: ``open_clip.get_tokenizer``.
    Prompts are ``template.format(name)`` with underscores in class names read as spaces
    ("street_traffic" -> "a photo of a street traffic."); several templates are averaged (CLIP's prompt
    ensembling). ``logit_scale``: None = the model's learnt ``exp(logit_scale)`` (100 for OpenAI CLIP).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        class_names: Sequence[str],
        template: str | Sequence[str] = "a photo of a {}.",
        logit_scale: float | None = None,
    ) -> None:
        if isinstance(model, ClipImageEmbedder):
            model = model.model
        if not class_names:
            raise ValueError("ZeroShotClassifier needs at least one class name")
        self.class_names = list(class_names)
        templates = [template] if isinstance(template, str) else list(template)
        self.prompts = [[t.format(name.replace("_", " ")) for t in templates] for name in self.class_names]
        device = next(model.parameters()).device
        with torch.inference_mode():
            per_template = []
            for j in range(len(templates)):
                tokens = tokenizer([p[j] for p in self.prompts]).to(device)
                text = model.encode_text(tokens).float()  # (n_classes, dim)
                per_template.append(torch.nn.functional.normalize(text, dim=-1))
            text = torch.nn.functional.normalize(torch.stack(per_template).mean(0), dim=-1)
        self.text_embeddings = text  # (n_classes, dim) float32, unit norm
        if logit_scale is None:
            scale = getattr(model, "logit_scale", None)
            logit_scale = float(scale.detach().float().exp().item()) if scale is not None else 100.0
        self.logit_scale = float(logit_scale)

    def logits(self, image_embeddings: Any) -> torch.Tensor:
        e = (
            image_embeddings
            if isinstance(image_embeddings, torch.Tensor)
            else torch.from_numpy(np.asarray(image_embeddings, dtype=np.float32))
        )
        e = torch.nn.functional.normalize(e.float().to(self.text_embeddings.device), dim=-1)
        return self.logit_scale * e @ self.text_embeddings.T  # (n, n_classes)

    def __call__(self, image_embeddings: Any) -> Any:
        """(n, dim) embeddings -> (n, n_classes) probabilities (numpy in, numpy out; torch in, torch out)."""
        probs = self.logits(image_embeddings).softmax(dim=-1)
        return probs if isinstance(image_embeddings, torch.Tensor) else probs.cpu().numpy()


def default_cache_dirs() -> list[Path]:
    """Where tag weights are looked for by default (HF hub cache, open_clip's URL cache)."""
    return [Path(_hf_cache_dir(None)), Path(os.path.expanduser("~/.cache/clip"))]
