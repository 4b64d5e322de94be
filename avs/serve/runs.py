"""A trained run loaded for serving: its model and task (as ``avs predict`` rebuilds them from the checkpoint) and
the extraction config of the feature sets it was trained on, rebuilt from its shards' ``_feature_set.json`` (so an
upload gets exactly the features, and the config hash, that training read).

    run = load_run("a01", "runs/a01", device="cpu")
    inputs = [run.task.inputs_from_tables(tables) for tables in (upload_1, upload_2)]   # x + keys of each upload
    outputs = predict_clips(run, inputs)                          # their rows through the model together
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avs.shards.config import AudioConfig, ExtractConfig, FeatureSetConfig, VideoConfig, feature_set_hash

FEATURE_SET_FILE = "_feature_set.json"


@dataclasses.dataclass
class ServedRun:
    name: str
    model: Any  # torch.nn.Module in eval mode on ``device``
    task: Any  # avs.train.task.Task rebuilt from the checkpoint
    classes: tuple[str, ...]
    kind: str  # "clip_probs" | "frame_scores"
    extract: ExtractConfig  # the feature sets the run was trained on, as extracted
    hashes: dict[str, str]  # feature set -> config hash (equal to the shards')
    about: dict[str, Any]  # model file, model name, task, epoch, shards
    device: str = "cpu"


def _identity(shards: str, name: str) -> dict[str, Any]:
    from avs.shards.storage import Storage

    storage = Storage(shards)
    rel = f"{name}/{FEATURE_SET_FILE}"
    if not storage.exists(rel):
        raise FileNotFoundError(
            f"{storage.path(rel)} not found: a served run takes its feature settings from the shards it was "
            f"trained on (its checkpoint names {shards}); make them reachable at that path"
        )
    return json.loads(storage.read_bytes(rel))


def extract_config_of(shards: str, features: Sequence[str]) -> ExtractConfig:
    """The ExtractConfig that wrote ``features`` under ``shards``; every set's hash is checked against the shards'."""
    sets, audio, video = [], None, None
    stored: dict[str, str] = {}
    for name in features:
        doc = _identity(shards, name)
        ident = doc["identity"]
        stored[name] = doc["hash"]
        sets.append(FeatureSetConfig(name=ident["name"], extractor=ident["extractor"], params=ident["params"]))
        if ident["modality"] == "audio":
            this = AudioConfig(**ident["audio"])
        else:
            v = dict(ident["video"])
            seg = v.pop("audio_segments", None)  # (its decoder backend is not part of an audio set's identity)
            this = AudioConfig(**{k: x for k, x in seg.items() if k != "backend"}) if seg is not None else None
            video = VideoConfig(**{k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
        if this is not None:
            if audio is not None and this != audio:
                raise ValueError(f"{shards}: the feature sets {list(features)} were extracted with different audio")
            audio = this
    cfg = ExtractConfig(
        input="-", out="-", audio=audio or AudioConfig(), video=video or VideoConfig(), features=tuple(sets)
    )
    for f in cfg.features:
        got = feature_set_hash(cfg, f)
        if got != stored[f.name]:
            raise ValueError(
                f"{shards}/{f.name}: its settings hash to {got} here but {stored[f.name]} in the shards (written by "
                "another avs version?)"
            )
    return cfg


def load_run(name: str, path: str, device: str = "cpu") -> ServedRun:
    """Load a run folder of ``avs train`` (or a checkpoint file) for serving; errors name what is missing."""
    from avs.models.checkpoint import load_model
    from avs.models.files import model_file
    from avs.train.predict import task_of

    file = model_file(path)
    model, meta = load_model(file)
    model = model.eval().to(device)
    task = task_of(meta)
    extra = meta.get("extra", {})
    run = extra["run"]
    cfg = extract_config_of(run["shards"], list(run["features"]))
    about = {
        "run": name,
        "model_file": file,
        "model": meta.get("model_name"),
        "task": extra["task"]["name"],
        "epoch": extra.get("epoch"),
        "shards": run["shards"],
        "features": list(run["features"]),
    }
    hashes = {f.name: feature_set_hash(cfg, f) for f in cfg.features}
    return ServedRun(name, model, task, tuple(task.classes()), task.prediction, cfg, hashes, about, device)


def clip_aggregate(task_name: str) -> str:
    """How a clip's rows make one clip answer: the mean of softmax probabilities (scene classification, paper
    000's per-clip mean of 1-s segments) or the maximum of multi-label scores (paper 002's frame-to-clip max)."""
    return "max" if task_name == "multilabel" else "mean"


MODEL_ROWS = 64  # rows per forward pass: a long video's frames never go through the model at once


def predict_clips(run: ServedRun, batches: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Several uploads' model inputs (``run.task.inputs_from_tables``: ``x`` + keys) -> one answer each; their rows
    go through the model together, ``MODEL_ROWS`` at a time (Serve batches requests into this)."""
    import torch

    from avs.train.predict import _frame_output, _output

    sizes = [len(b["x"]) for b in batches]
    x = np.concatenate([np.asarray(b["x"], np.float32) for b in batches])
    parts = []
    with torch.inference_mode():
        for start in range(0, len(x), MODEL_ROWS):
            chunk = torch.as_tensor(x[start : start + MODEL_ROWS], device=run.device)
            parts.append(run.task.predict_scores(run.model, chunk).float().cpu().numpy().astype(np.float64))
    scores = np.concatenate(parts)
    answers, start = [], 0
    for batch, n in zip(batches, sizes, strict=True):
        part = scores[start : start + n]
        start += n
        if run.kind == "frame_scores":  # (1, frames, classes) for the whole clip
            hop_s = float(run.task.info["hop_s"])
            rows = _frame_output(batch, part, run.classes, hop_s)
            events = run.task.decode({str(batch["clip_id"][0]): part[0]})
            answers.append({
                "kind": "sed_events",
                "hop_s": hop_s,
                "events": [
                    {"onset_s": round(a, 3), "offset_s": round(b, 3), "label": c}
                    for a, b, c in next(iter(events.values()), [])
                ],
                "rows": rows,
            })  # fmt: skip
            continue
        rows = _output(batch, part, run.classes)
        how = clip_aggregate(run.about["task"])
        clip = part.max(axis=0) if how == "max" else part.mean(axis=0)
        answers.append({
            "kind": "multilabel_scores" if how == "max" else "class_probabilities",
            "clip": {"aggregate": how, "scores": dict(zip(run.classes, clip.tolist(), strict=True)),
                     "top": run.classes[int(clip.argmax())]},
            "rows": rows,
        })  # fmt: skip
    return answers
