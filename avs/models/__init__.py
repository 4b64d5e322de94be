"""Models by name (paper 000: log-mel CNNs, frame CNNs, CLIP Late Fusion Network) with one interface.

    from avs.models import create_model
    model = create_model("clip-late-fusion")                          # Table 1 of paper 000
    model = create_model("frame-resnest50d", checkpoint="w.safetensors")

See ``avs.models.base`` (registry, interface), ``avs.models.timm_cnn``, ``avs.models.clip_fusion`` and
``avs.models.checkpoint`` (safe save / load).
"""

from avs.models.base import MODELS, MissingWeightsError, create_model, model_config, model_names, register_model
from avs.models.checkpoint import UnsafeCheckpointError, load_checkpoint, load_model, save_checkpoint

__all__ = [
    "MODELS",
    "MissingWeightsError",
    "UnsafeCheckpointError",
    "create_model",
    "load_checkpoint",
    "load_model",
    "model_config",
    "model_names",
    "register_model",
    "save_checkpoint",
]
