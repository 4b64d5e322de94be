"""Models by name (paper 000: log-mel CNNs, frame CNNs, CLIP Late Fusion Network; paper 003: CRNN) with one
interface.

    from avs.models import create_model
    model = create_model("clip-late-fusion")                          # Table 1 of paper 000
    model = create_model("frame-resnest50d", checkpoint="w.safetensors")
    strong, weak = create_model("crnn-dcase2020")(logmel)             # paper 003 §3.2, (batch, 628, 128) log-mel

    name                           module                  model
    logmel-regnetx-064             avs.models.timm_cnn     paper 000 log-mel CNNs
    logmel-resnest50d              avs.models.timm_cnn
    logmel-tf-efficientnet-b1-ns   avs.models.timm_cnn
    frame-regnetx-064              avs.models.timm_cnn     paper 000 video-frame CNNs
    frame-resnest50d               avs.models.timm_cnn
    frame-hrnet-w18                avs.models.timm_cnn
    timm-cnn                       avs.models.timm_cnn     any timm backbone + linear classifier
    frame-alexnet                  avs.models.torchvision_cnn   paper 001 frame CNNs (sound-cluster pretext,
    frame-resnet18                 avs.models.torchvision_cnn   Pascal VOC transfer): torchvision AlexNet, ResNet-18
    clip-late-fusion               avs.models.clip_fusion  paper 000 CLIP Late Fusion Network (Table 1)
    crnn-dcase2020                 avs.models.crnn         paper 003 CRNN, DCASE 2020 task 4 baseline: forward
                                                           returns (strong, weak) frame / clip probabilities

See ``avs.models.base`` (registry, interface), ``avs.models.timm_cnn``, ``avs.models.clip_fusion``,
``avs.models.crnn`` and ``avs.models.checkpoint`` (safe save / load).
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
