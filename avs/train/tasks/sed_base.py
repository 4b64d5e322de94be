"""What the sound event detection tasks share (papers 003 and 004): DESED-style inputs, validation, prediction.

A SED task trains on 10-s clips of the shards in three streams chosen by the manifest's ``label_kind``:
synthetic strongly labelled soundscapes (``strong``: frame targets from ``events``), weakly labelled recordings
(``weak``: clip targets from ``labels``) and unlabeled recordings (``unlabeled``). ``SEDTask`` reads them
(``prepare``), standardises the log-mels per mel band, validates by event-based F1 on the strongly labelled clips
of the validation split (frame probabilities -> threshold -> median filter -> events -> sed_eval) and predicts
frame scores. A subclass adds its modules and its training step:

    @register_task("sed-mean-teacher", config=MeanTeacherConfig)
    class MeanTeacherSED(SEDTask):
        def build(self): ...                                   # TaskModules(net=CRNN)
        def training_step(self, mods, batch, step): ...        # losses on the combined streams
        def validation_probs(self, mods, x): ...               # {"": student frames, "_teacher": teacher frames}
        def strong_of(self, outputs): ...                      # the model's frame probabilities (prediction)

Its config needs the fields ``strong_batch``, ``weak_batch``, ``unlabeled_batch``, ``standardize``,
``threshold``, ``median_filter_s`` and ``select_best_by``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from avs.train.data import channel_stats, feature_info, fixed_list_to_numpy
from avs.train.losses import bce_probs
from avs.train.streams import StreamSpec
from avs.train.targets import multi_hot, strong_frames, weak_from_events
from avs.train.task import Prepared, Task, TaskModules

STREAMS = ("strong", "weak", "unlabeled")  # label_kind values of the manifest, one training stream each
KIND_CODE = {"strong": 0, "weak": 1, "unlabeled": 2}


def sed_rows(
    table: pa.Table, *, column: str, shape: tuple[int, ...], classes: tuple[str, ...], n_out: int, hop_s: float
) -> dict[str, np.ndarray]:
    """Shard rows -> ``x`` (rows, frames, mels) dB, ``strong`` (rows, n_out, classes) frame targets,
    ``weak`` (rows, classes) clip targets, ``kind`` (rows,) 0 strong / 1 weak / 2 unlabeled."""
    x = fixed_list_to_numpy(table.column(column), shape)  # (rows, mels, frames)
    x = np.ascontiguousarray(np.swapaxes(x, 1, 2))  # (rows, frames, mels): the CRNN's layout
    kinds = table.column("label_kind").to_pylist()
    events = table.column("events").to_pylist() if "events" in table.column_names else [None] * len(kinds)
    labels = table.column("labels").to_pylist() if "labels" in table.column_names else [None] * len(kinds)
    strong = np.zeros((len(kinds), n_out, len(classes)), np.float32)
    weak = np.zeros((len(kinds), len(classes)), np.float32)
    for i, kind in enumerate(kinds):
        if kind == "strong":
            strong[i] = strong_frames(events[i] or [], classes, n_out, hop_s, unknown="ignore")
            weak[i] = weak_from_events(events[i] or [], classes, unknown="ignore")
        elif kind == "weak":
            weak[i] = multi_hot([labels[i] or []], classes, unknown="ignore")[0]
    code = np.asarray([KIND_CODE.get(k, 2) for k in kinds], np.int64)
    return {"x": x, "strong": strong, "weak": weak, "kind": code, "vid": np.asarray(table.column("__vid"), np.int64)}


class SEDTask(Task):
    """Base of the SED tasks: inputs, streams, standardisation, validation by event-F1, frame-score prediction."""

    prediction = "frame_scores"
    split_validation = False  # event metrics need every validation clip

    def __init__(self, cfg, run) -> None:
        super().__init__(cfg, run)
        self.monitor = (cfg.select_best_by, "min" if cfg.select_best_by == "val_loss" else "max")
        self.info = dict(run.spec or {})
        self._val: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []  # (vid, {suffix: frame probs}) per batch

    # ------------------------------------------------------------------ driver
    def _read(
        self,
        first,
        split: str | None,
        kinds: tuple[str, ...] | None,
        limit: int | None,
        exclude_split: str | None = None,
    ):
        import ray.data
        from ray.data.expressions import col, lit

        from avs.shards.storage import Storage

        storage = Storage(first.folder)
        cols = [c for c in ("clip_id", "split", "label_kind", "labels", "events") if c in first.columns]
        ds = ray.data.read_parquet(storage.path(""), filesystem=storage.fs).select_columns([*cols, first.column])
        if split is not None:
            ds = ds.filter(expr=col("split") == lit(split))
        if exclude_split is not None:
            ds = ds.filter(expr=col("split") != lit(exclude_split))
        if kinds is not None:
            ds = ds.filter(expr=col("label_kind").is_in(list(kinds)))
        return ds.limit(limit) if limit else ds

    def _metadata(self, first) -> dict[str, list]:
        """The label columns of every row (clip_id, split, label_kind, labels, events), read with pyarrow."""
        import pyarrow.parquet as pq

        from avs.shards.storage import Storage

        storage = Storage(first.folder)
        cols = [c for c in ("clip_id", "split", "label_kind", "labels", "events") if c in first.columns]
        table = pq.read_table(storage.path(""), filesystem=storage.fs, columns=cols)
        return {
            c: table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
            for c in ("clip_id", "split", "label_kind", "labels", "events")
        }

    def prepare(self) -> Prepared:
        from avs.models import create_model

        run, cfg = self.run, self.cfg
        if len(run.features) != 1:
            raise ValueError(f"{self.name} reads one log-mel set, got {list(run.features)}")
        first = feature_info(run.shards, run.features[0])
        if len(first.shape) != 2 or "label_kind" not in first.columns:
            raise ValueError(
                f"{first.folder}: {self.name} needs (mels, frames) rows of whole clips with the manifest's "
                "label_kind (extract a DESED manifest with an SED preset: dcase2020-sed, dcase2019-tritrain); "
                f"shape {first.shape}"
            )
        n_mels, n_frames = int(first.shape[0]), int(first.shape[1])
        params = first.identity.get("params") or {}
        audio = first.identity.get("audio") or {}
        if "hop_length" not in params or "sample_rate_hz" not in audio:
            raise ValueError(f"{first.folder}: no hop_length / sample_rate_hz in its avs.feature_set metadata")
        in_hop_s = float(params["hop_length"]) / float(audio["sample_rate_hz"])  # input frame hop (s)
        classes = tuple(run.classes) if run.classes else self._classes(first)
        model_params = {**dict(run.model_params), "num_classes": len(classes)}
        fields = _model_fields(run.model)
        for key, value in (("n_mels", n_mels), ("n_frames", n_frames)):
            if key in fields:
                model_params.setdefault(key, value)
        model_params.update(self.task_model_params(fields))
        probe = create_model(run.model, dict(model_params)).eval()
        with torch.no_grad():
            strong = self.strong_of(probe(torch.zeros(1, n_frames, n_mels)))
        n_out = int(strong.shape[1])
        hop_s = in_hop_s * n_frames / n_out  # 003: 255 x 4 / 16 kHz = 63.75 ms, 157 frames per 10 s
        val_split = run.val_split
        # training clips: every split but the validation one (None: every split holds training clips)
        sizes = {"strong": cfg.strong_batch, "weak": cfg.weak_batch, "unlabeled": cfg.unlabeled_batch}
        datasets: dict[str, Any] = {}
        rows: dict[str, int] = {}
        spec_base = {
            "column": first.column,
            "shape": [n_mels, n_frames],
            "classes": list(classes),
            "n_out": n_out,
            "hop_s": hop_s,
        }
        fn = {**spec_base, "shape": (n_mels, n_frames), "classes": classes}
        meta = self._metadata(first)  # one pyarrow read of the label columns (no features)
        in_val = np.asarray([v == val_split for v in meta["split"]]) if val_split is not None else None
        for name, size in sizes.items():
            if size == 0:
                continue
            chosen = np.asarray([k == name for k in meta["label_kind"]])
            if in_val is not None:
                chosen &= ~in_val
            rows[name] = min(int(chosen.sum()), run.max_train_rows or int(chosen.sum()))
            if rows[name] < size:
                raise ValueError(
                    f"stream {name!r}: {rows[name]} clips with label_kind {name!r} outside split {val_split!r}, "
                    f"fewer than its {size} rows per step (set task_params.{name}_batch=0 to leave it out)"
                )
            ds = self._read(first, None, (name,), None, exclude_split=val_split)
            ds = ds.limit(run.max_train_rows) if run.max_train_rows else ds
            ds = ds.map_batches(_with_vid, batch_format="pyarrow").map_batches(
                sed_rows, batch_format="pyarrow", fn_kwargs=fn
            )
            datasets[name] = ds.randomize_block_order(seed=run.seed + len(datasets))
        truth = _truth(meta, val_split, run.max_val_rows)
        rows["val"] = len(truth)
        if not truth:
            raise ValueError(f"no strongly labelled clips in validation split {val_split!r} of {first.folder}")
        val = self._read(first, val_split, ("strong",), run.max_val_rows)
        datasets["val"] = val.map_batches(_with_vid_of, batch_format="pyarrow", fn_kwargs={"ids": list(truth)})
        datasets["val"] = datasets["val"].map_batches(sed_rows, batch_format="pyarrow", fn_kwargs=fn)
        mean = std = None
        if cfg.standardize:  # per mel band, over every training clip and frame: one pass
            kinds = tuple(k for k in sizes if k in datasets)
            stats = self._read(first, None, kinds, run.max_train_rows, exclude_split=val_split)
            stats = stats.map_batches(
                _mels_first, batch_format="pyarrow", fn_kwargs={"column": first.column, "shape": (n_mels, n_frames)}
            )
            mean, std = channel_stats(stats)
        spec = {
            **spec_base,
            "rows": {k: v for k, v in rows.items() if k != "val"},
            "truth": truth,
            "durations": {cid: float(n_frames * in_hop_s) for cid in truth},
            "mean": list(mean) if mean else None,
            "std": list(std) if std else None,
            "median_frames": _median_frames(cfg.median_filter_s, hop_s),
        }
        return Prepared(
            datasets=datasets,
            rows=rows,
            spec=spec,
            model_params=model_params,
            summary={"classes": list(classes), "rows": rows, "frame_hop_s": hop_s, "frames_out": n_out},
        )

    def _classes(self, first) -> tuple[str, ...]:
        import pyarrow.parquet as pq

        from avs.shards.storage import Storage

        storage = Storage(first.folder)
        table = pq.read_table(storage.path(""), filesystem=storage.fs, columns=["labels"])
        found = sorted({lab for row in table.column("labels").to_pylist() for lab in (row or []) if lab})
        if len(found) < 2:
            raise ValueError(f"found {len(found)} event class(es) in {first.folder}: name them (--classes / a preset)")
        return tuple(found)

    def train_streams(self) -> list[StreamSpec]:
        cfg = self.cfg
        sizes = {"strong": cfg.strong_batch, "weak": cfg.weak_batch, "unlabeled": cfg.unlabeled_batch}
        rows = (self.info.get("rows") or {}) if self.info else {}
        names = [n for n in STREAMS if sizes[n] > 0]
        # the epoch ends with the stream that runs out first, as the reference's MultiStreamBatchSampler (zip)
        lead = min(names, key=lambda n: rows.get(n, 0) // sizes[n]) if rows else names[0]
        return [StreamSpec(n, sizes[n], lead=n == lead) for n in names]

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        # x (batch, frames, mels); the statistics are per mel band
        if self.info.get("mean") is None:
            return x
        m = torch.as_tensor(self.info["mean"], dtype=x.dtype, device=x.device).view(1, 1, -1)
        s = torch.as_tensor(self.info["std"], dtype=x.dtype, device=x.device).view(1, 1, -1)
        return (x - m) / s

    # ------------------------------------------------------------------ hooks of the subclasses
    def task_model_params(self, fields: set[str]) -> dict[str, Any]:
        """Model parameters the task's config decides (``fields``: the model config's field names)."""
        return {}

    def validation_probs(self, mods: TaskModules, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frame probabilities ``(batch, n_out, classes)`` of the validated models by metric suffix; the first
        is the model's own (validation loss, ``val_event_f1``)."""
        return {"": self.strong_of(mods.net(x))}

    def strong_of(self, outputs: Any) -> torch.Tensor:
        """The frame probabilities in a forward's outputs (the CRNN's ``(strong, weak)``: ``strong``)."""
        return outputs[0]

    # ------------------------------------------------------------------ validation
    def validation_step(self, mods: TaskModules, batch) -> dict[str, float]:
        x = self._norm(batch["x"].float())
        probs = {k: v.float() for k, v in self.validation_probs(mods, x).items()}
        first = next(iter(probs.values()))
        loss = bce_probs(first, batch["strong"].float())
        self._val.append((batch["vid"].cpu().numpy(), {k: v.cpu().numpy() for k, v in probs.items()}))
        n = int(x.shape[0])
        return {"rows": float(n), "loss": float(loss) * n}

    def validation_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        out = super().validation_metrics(sums)
        batches, self._val = self._val, []
        if not batches:
            return out
        vid = np.concatenate([b[0] for b in batches])
        ids = list(self.info["truth"])
        for suffix in batches[0][1]:
            scores = np.concatenate([b[1][suffix] for b in batches])
            detected = self.decode({ids[v]: scores[i] for i, v in enumerate(vid) if v >= 0})
            out[f"val_event_f1{suffix}"] = event_f1(detected, self._truth_events(), self.classes())
        return out

    def _truth_events(self) -> dict[str, list[tuple[float, float, str]]]:
        return {cid: [(float(a), float(b), str(c)) for a, b, c in ev] for cid, ev in self.info["truth"].items()}

    def decode(self, scores: Mapping[str, np.ndarray]) -> dict[str, list[tuple[float, float, str]]]:
        """Frame probabilities per clip -> events (threshold, median filter, frames to seconds)."""
        from avs.eval.sed_post import decode_events

        classes = tuple(self.info["classes"])
        return {
            cid: decode_events(s, classes, self.info["hop_s"], self.cfg.threshold, self.info["median_frames"])
            for cid, s in scores.items()
        }

    # ------------------------------------------------------------------ prediction
    def classes(self) -> tuple[str, ...]:
        return tuple(self.info["classes"])

    def predict_dataset(self, split: str | None, limit: int | None):
        """Whole clips of ``split`` (any label kind): keys + ``x`` (rows, frames, mels)."""
        first = feature_info(self.run.shards, self.run.features[0])
        ds = self._read(first, split, None, limit)
        return ds.map_batches(
            _predict_rows,
            batch_format="pyarrow",
            fn_kwargs={"column": first.column, "shape": tuple(self.info["shape"])},
        )

    def inputs_from_tables(self, tables):
        """One whole clip (``avs serve``): keys + ``x`` (1, frames, mels), as ``predict_dataset``."""
        name = self.run.features[0]  # a float feature set's column is named like the set
        return _predict_rows(tables[name], name, tuple(self.info["shape"]))

    def predict_scores(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.strong_of(model(self._norm(x.float()))).float()  # (batch, n_out, classes)


def event_f1(detected: Mapping[str, list], truth: Mapping[str, list], classes: tuple[str, ...]) -> float:
    """Macro event-based F1 (sed_eval, 200 ms collar, 20 % offset collar; 003 §3.3) as a fraction, over every
    validation clip (a clip without events counts its detections as false positives); 0 when no class has
    truth events."""
    from avs.eval.sed import event_based_f1

    got = event_based_f1(detected, truth, classes, files=sorted(truth))["macro"]
    return float(got) if got is not None else 0.0


def _median_frames(seconds: float, hop_s: float) -> int:
    from avs.eval.sed_post import median_window_frames  # (lazy: sed_eval and friends load with avs.eval.sed)

    return median_window_frames(seconds, hop_s)


def _predict_rows(table: pa.Table, column: str, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    x = np.ascontiguousarray(np.swapaxes(fixed_list_to_numpy(table.column(column), shape), 1, 2))
    n = table.num_rows
    out = {"x": x, "clip_id": np.asarray(table.column("clip_id").to_pylist(), dtype=object)}
    out["split"] = np.asarray(
        table.column("split").to_pylist() if "split" in table.column_names else [""] * n, dtype=object
    )
    out["start_s"] = np.zeros(n)  # whole clips: frame times count from the clip's start
    return out


def _model_fields(name: str) -> set[str]:
    from avs.models.base import MODELS, _import_builtin_models

    _import_builtin_models()
    return {f.name for f in dataclasses.fields(MODELS.get(name).config)}


def _mels_first(table: pa.Table, column: str, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"x": fixed_list_to_numpy(table.column(column), shape)}  # (rows, mels, frames): channel_stats per mel


def _with_vid(table: pa.Table) -> pa.Table:
    return table.append_column("__vid", pa.array(np.full(table.num_rows, -1), pa.int64()))


def _with_vid_of(table: pa.Table, ids: list[str]) -> pa.Table:
    index = {c: i for i, c in enumerate(ids)}
    vid = [index.get(c, -1) for c in table.column("clip_id").to_pylist()]
    return table.append_column("__vid", pa.array(vid, pa.int64()))


def _truth(meta: Mapping[str, list], split: str | None, limit: int | None) -> dict[str, list[list[Any]]]:
    """Validation truth {clip_id: [[onset_s, offset_s, label], ...]} of the strong clips of ``split``."""
    truth: dict[str, list[list[Any]]] = {}
    for cid, sp, kind, events in zip(meta["clip_id"], meta["split"], meta["label_kind"], meta["events"], strict=True):
        if kind != "strong" or (split is not None and sp != split):
            continue
        truth[str(cid)] = [[float(e["onset_s"]), float(e["offset_s"]), str(e["label"])] for e in (events or [])]
        if limit and len(truth) >= limit:
            break
    return dict(sorted(truth.items()))
