"""Predictions (``avs predict``): class probabilities of a trained model, or of a zero-shot CLIP set, per row.

    summary = run_predict(PredictConfig(out="preds/a01", model="runs/a01"))
    summary = run_predict(PredictConfig(out="preds/c01", zeroshot="zeroshot_rn101", shards="feats"))

Writes into ``out``:
  - ``predictions.parquet``: one row per 1-s segment (log-mel) or frame (frames / CLIP sets), sorted by
    clip_id, segment: ``clip_id``, ``segment``, ``split``, ``label`` (the first label, "" when none),
    ``start_s``, ``end_s`` (a frame's time for video rows: start_s = end_s), then one float64 column per class
    (softmax probabilities) in class order. This is the layout ``avs.ensemble.Scores.from_arrow`` reads (every
    float column but the key columns is a class); the class order is also in the schema metadata
    ``avs.classes`` (JSON), the source in ``avs.predict``.
  - ``config.yaml`` (the final config), ``predict.json`` (summary, written last).

A trained model (``best/model.safetensors`` of ``avs train``, or a ``model.pt`` checkpoint) carries its input
spec in its metadata (feature sets, classes, log-mel standardisation), so predictions rebuild exactly the
evaluation inputs of training. The model runs in a Ray Data stage that holds it (``Predictor``: loaded in
``__init__``, applied in ``__call__``; GPU actors when CUDA is there).

``zeroshot``: the probabilities a ``clip-zeroshot`` feature set stored (paper 000 Table 2, C01-C03: "No
Training") are written as they are, columns in ``classes`` order (default: the extractor's class list).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Any, Literal, TextIO

import numpy as np
import pyarrow as pa
import yaml

import avs
from avs.config import from_dict, to_dict
from avs.flags import opt
from avs.predictions import PREDICTIONS_FILE
from avs.shards.storage import Storage
from avs.train.data import DataSpec, feature_info, split_dataset

OUT_KEYS = ("clip_id", "segment", "split", "label", "start_s", "end_s")


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    out: str = opt(help="output folder: predictions.parquet, config.yaml, predict.json")
    model: str | None = opt(None, help="a trained model: run folder of `avs train` (best/model.safetensors) or a file")
    zeroshot: str | None = opt(
        None, help="instead of a model: the stored probabilities of a clip-zeroshot set (paper 000 C01-C03)"
    )
    shards: str | None = opt(None, help="shard root (default: the one the model was trained on; needed for zeroshot)")
    split: str | None = opt("evaluate", help="rows of this split, or 'all' / none for every row")
    classes: tuple[str, ...] | None = opt(None, help="zeroshot: output class order (default: the extractor's)")
    batch_size: int = opt(128, help="rows per model call")
    device: Literal["auto", "cpu", "cuda"] = opt("auto", help="model device; auto: CUDA when the Ray cluster has GPUs")
    concurrency: int = opt(1, help="model actors")
    max_rows: int | None = opt(None, help="smoke runs: the first N rows only")

    def __post_init__(self) -> None:
        if (self.model is None) == (self.zeroshot is None):
            raise ValueError("PredictConfig: give exactly one of model (a trained checkpoint) and zeroshot (a set)")
        if self.zeroshot is not None and not self.shards:
            raise ValueError("PredictConfig: zeroshot needs shards (the root folder of the feature sets)")
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("PredictConfig: batch_size and concurrency must be >= 1")


def _read_bytes(path: str) -> bytes:
    storage = Storage(path)
    with storage.fs.open_input_stream(storage.root) as fh:
        return fh.read()


def _load_from_bytes(data: bytes, suffix: str, map_location: str = "cpu"):
    from avs.models.checkpoint import load_model

    with tempfile.TemporaryDirectory(prefix="avs-model-") as tmp:
        path = os.path.join(tmp, "model" + suffix)
        with open(path, "wb") as fh:
            fh.write(data)
        return load_model(path, map_location=map_location)


def task_of(meta: dict[str, Any], shards: str | None = None):
    """The training task a checkpoint was trained with, rebuilt from its metadata (``shards``: read the inputs
    from another shard root)."""
    from avs.train.task import RunInfo, create_task

    extra = meta.get("extra", {})
    if "task" not in extra or "run" not in extra:
        raise ValueError("no task in the checkpoint metadata (not written by `avs train`)")
    run = from_dict(RunInfo, extra["run"])
    if shards:
        run = dataclasses.replace(run, shards=shards)
    return create_task(extra["task"]["name"], extra["task"]["params"], run)


class Predictor:
    """Ray Data stage holding a trained model: batch of ``x`` + keys -> keys + one score column per class, as the
    model's training task predicts (``Task.predict_scores``)."""

    def __init__(self, model_bytes: Any, suffix: str, device: str = "cpu") -> None:
        """``model_bytes``: the checkpoint's bytes, or an ObjectRef to them (how run_predict hands them over: a
        model of hundreds of MB stays in the object store once instead of inside every actor's constructor)."""
        import ray
        import torch

        if isinstance(model_bytes, ray.ObjectRef):
            model_bytes = ray.get(model_bytes)

        self.device = torch.device(device)
        model, meta = _load_from_bytes(model_bytes, suffix)
        self.model = model.eval().to(self.device)
        self.task = task_of(meta)
        self.classes = self.task.classes()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        # writable (a copy only where Ray Data hands a read-only view): torch warns on non-writable arrays
        x = torch.as_tensor(np.require(batch["x"], dtype=np.float32, requirements="W"), device=self.device)
        amp = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=amp):
            scores = self.task.predict_scores(self.model, x).float().cpu().numpy().astype(np.float64)
        if self.task.prediction == "frame_scores":  # (rows, frames, classes): one output row per frame
            return _frame_output(batch, scores, self.classes, float(self.task.info["hop_s"]))
        return _output(batch, scores, self.classes)


def _frame_output(batch: dict[str, np.ndarray], scores: np.ndarray, classes, hop_s: float) -> dict[str, np.ndarray]:
    """Frame scores ``(rows, frames, classes)`` -> one row per (clip, frame): segment = frame index, start_s /
    end_s = the frame's span in seconds from the row's start (frame t covers [t hop, (t + 1) hop))."""
    rows, frames, _ = scores.shape
    t = np.tile(np.arange(frames), rows)
    start = np.repeat(np.asarray(batch.get("start_s", np.zeros(rows)), np.float64), frames) + t * hop_s
    out: dict[str, np.ndarray] = {
        "clip_id": np.repeat(np.asarray(batch["clip_id"]), frames),
        "segment": t.astype(np.int32),
        "split": np.repeat(np.asarray(batch.get("split", np.asarray([""] * rows, dtype=object))), frames),
        "label": np.asarray([""] * (rows * frames), dtype=object),
        "start_s": start,
        "end_s": start + hop_s,
    }
    flat = scores.reshape(rows * frames, len(classes))
    for j, name in enumerate(classes):
        out[name] = flat[:, j]
    return out


def _output(batch: dict[str, np.ndarray], probs: np.ndarray, classes) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    n = len(probs)
    for key in OUT_KEYS:
        if key in batch:
            out[key] = np.asarray(batch[key])
        elif key == "end_s" and "start_s" in batch:
            out[key] = np.asarray(batch["start_s"])
        elif key in ("start_s", "end_s") and "timestamp_s" in batch:
            out[key] = np.asarray(batch["timestamp_s"])
        else:
            out[key] = np.full(n, np.nan) if key in ("start_s", "end_s") else np.asarray([""] * n, dtype=object)
    for j, name in enumerate(classes):
        out[name] = probs[:, j]
    return out


DETECTIONS_FILE = "detections.tsv"  # DCASE format: filename onset offset event_label


def frame_scores_by_clip(table: pa.Table, classes) -> dict[str, np.ndarray]:
    """A frame_scores predictions table -> {clip_id: (frames, classes) scores in frame order}."""
    table = table.sort_by([("clip_id", "ascending"), ("segment", "ascending")])
    ids = table.column("clip_id").to_pylist()
    scores = np.stack([table.column(c).to_numpy() for c in classes], axis=1)
    out: dict[str, np.ndarray] = {}
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            out[ids[start]] = scores[start:i]
            start = i
    return out


def write_detections(out: Storage, table: pa.Table, classes, task) -> int:
    """Decode frame scores into events with the task's post-processing; writes ``detections.tsv``; -> events."""
    events = task.decode(frame_scores_by_clip(table, classes))
    lines = ["filename\tonset\toffset\tevent_label"]
    for cid in sorted(events):
        name = str(cid).rsplit("/", 1)[-1]
        name = name if name.endswith(".wav") else f"{name}.wav"
        for onset, offset, label in events[cid]:
            lines.append(f"{name}\t{onset:.3f}\t{offset:.3f}\t{label}")
    out.write_bytes(DETECTIONS_FILE, ("\n".join(lines) + "\n").encode())
    return len(lines) - 1


def _zeroshot_batch(batch: dict[str, np.ndarray], order: list[int], classes: list[str]) -> dict[str, np.ndarray]:
    x = np.asarray(batch["x"], dtype=np.float64)
    return _output(batch, x[:, order] if len(x) else np.zeros((0, len(order))), classes)


def _to_table(ds, classes: tuple[str, ...]) -> pa.Table:
    tables = [t for t in ds.iter_batches(batch_format="pyarrow", batch_size=None) if t.num_rows]
    if not tables:
        raise ValueError("no rows to predict (check --split / --shards)")
    table = pa.concat_tables(tables, promote_options="permissive")
    cols = {
        "clip_id": table.column("clip_id").cast(pa.string()),
        "segment": table.column("segment").cast(pa.int32()),
        "split": table.column("split").cast(pa.string()),
        "label": table.column("label").cast(pa.string()),
        "start_s": table.column("start_s").cast(pa.float64()),
        "end_s": table.column("end_s").cast(pa.float64()),
    }
    for c in classes:
        cols[c] = table.column(c).cast(pa.float64())
    out = pa.table(cols)
    return out.sort_by([("clip_id", "ascending"), ("segment", "ascending")])


def run_predict(cfg: PredictConfig, stream: TextIO | None = None) -> dict[str, Any]:
    """Write the predictions of ``cfg`` (see the module docstring); returns the summary."""
    import ray

    from avs.models.files import model_file
    from avs.ray_start import init_ray
    from avs.train.loop import quiet_ray_logs

    log = stream or sys.stderr
    t_start = time.perf_counter()
    out = Storage(cfg.out)
    split = None if cfg.split in (None, "all") else cfg.split
    init_ray()
    quiet_ray_logs()
    source: dict[str, Any]
    if cfg.zeroshot is not None:
        info = feature_info(cfg.shards, cfg.zeroshot)
        stored = list(info.extractor.get("classes") or [])
        if info.kind != "vector" or len(info.shape) != 1 or len(stored) != info.shape[0]:
            raise ValueError(
                f"{info.folder} is not a clip-zeroshot set (needs a [n_classes] column and the class "
                f"names in its avs.extractor metadata)"
            )
        classes = tuple(cfg.classes or stored)
        missing = [c for c in classes if c not in stored]
        if missing:
            raise ValueError(f"{cfg.zeroshot} has no classes {missing}; it has {stored}")
        spec = DataSpec(
            shards=cfg.shards,
            family="clip",
            features=(cfg.zeroshot,),
            columns=(info.column,),
            shapes=(info.shape,),
            classes=classes,
        )
        ds = split_dataset(spec, split, limit=cfg.max_rows, keep_keys=True, drop_unlabeled=False)
        ds = ds.map_batches(
            _zeroshot_batch,
            batch_format="numpy",
            fn_kwargs={"order": [stored.index(c) for c in classes], "classes": list(classes)},
        )
        source = {"kind": "zeroshot", "feature_set": cfg.zeroshot, "extractor": info.extractor}
        kind = "clip_probs"
        device = "cpu"
    else:
        path = model_file(cfg.model)
        data = _read_bytes(path)
        suffix = ".safetensors" if path.endswith(".safetensors") else ".pt"
        model, meta = _load_from_bytes(data, suffix)
        extra = meta.get("extra", {})
        task = task_of(meta, cfg.shards)
        classes = task.classes()
        kind = task.prediction
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if cfg.device == "cuda" and gpus <= 0:
            raise ValueError("device=cuda but the Ray cluster has no GPU")
        device = "cuda" if (cfg.device == "cuda" or (cfg.device == "auto" and gpus > 0)) else "cpu"
        ds = task.predict_dataset(split, cfg.max_rows)
        ds = ds.map_batches(
            Predictor,
            fn_constructor_kwargs={"model_bytes": ray.put(data), "suffix": suffix, "device": device},
            batch_size=cfg.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=cfg.concurrency),
            num_gpus=1 if device == "cuda" else None,
        )
        source = {
            "kind": "model",
            "model": path,
            "model_name": meta.get("model_name"),
            "task": extra["task"]["name"],
            "input": (extra.get("data") or {}).get("family"),
            "features": list(extra["run"]["features"]),
            "epoch": extra.get("epoch"),
            "shards": extra["run"]["shards"],
            "val_metrics": extra.get("metrics"),
        }
        del model
    print(
        f"[avs predict] {source.get('model_name') or source.get('feature_set')} on split "
        f"{split or 'all'} of {cfg.shards or source.get('shards')} ({device})",
        file=log,
        flush=True,
    )
    t = time.perf_counter()
    table = _to_table(ds, classes)
    predict_s = time.perf_counter() - t
    meta_bytes = {
        b"avs.classes": json.dumps(list(classes)).encode(),
        b"avs.kind": kind.encode(),
        b"avs.predict": json.dumps({**source, "split": split}, default=str).encode(),
        b"avs.version": avs.__version__.encode(),
    }
    outputs = {"predictions": out.path(PREDICTIONS_FILE)}
    if kind == "frame_scores":
        meta_bytes[b"avs.hop_s"] = repr(float(task.info["hop_s"])).encode()
    table = table.replace_schema_metadata(meta_bytes)
    out.makedirs()
    out.write_table(PREDICTIONS_FILE, table)
    out.write_bytes("config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
    row_accuracy = None
    if kind == "clip_probs":
        probs = np.stack([table.column(c).to_numpy() for c in classes], axis=1)
        index = {c: i for i, c in enumerate(classes)}
        y = np.asarray([index.get(v, -1) for v in table.column("label").to_pylist()])
        known = y >= 0
        row_accuracy = float((probs[known].argmax(1) == y[known]).mean()) if known.any() else None
    detections = None
    if kind == "frame_scores":  # post-processed events (threshold, median filter) as a DCASE detections TSV
        detections = write_detections(out, table, classes, task)
        outputs["detections"] = out.path(DETECTIONS_FILE)
    summary = {
        "source": source,
        "split": split,
        "rows": table.num_rows,
        "clips": len(set(table.column("clip_id").to_pylist())),
        "classes": list(classes),
        "kind": kind,
        "row_accuracy": row_accuracy,
        "events": detections,
        "device": device,
        "seconds": {"predict": round(predict_s, 3), "total": round(time.perf_counter() - t_start, 3)},
        "rows_per_s": table.num_rows / predict_s if predict_s > 0 else None,
        "outputs": {**outputs, "config": out.path("config.yaml"), "summary": out.path("predict.json")},
    }
    out.write_json("predict.json", summary)
    return summary
