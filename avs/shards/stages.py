"""Ray Data stages of the extraction pipeline (callable classes: load in ``__init__``, work in ``__call__``).

    input blocks {clip_id, path, row, block}          (one block per decode batch, numbered by ``block``)
      -> DecodeStage   -> segment rows {clip_id, row, block, segment, start_s, end_s, n_segments, audio, error_*}
      -> FeatureStage  -> features computed, whole clips sent to a part writer (avs/shards/part_writer.py);
                          returns one small row per clip {clip_id, n_rows, error_stage, error_type, error_message}

On CPU the two are one stage, ``AudioStage`` (decode and features in one actor per core, each with its own
decoder child): the decoded audio then never crosses the object store, and with one actor per core the
cores stay busy without a decode / feature balance to tune. On GPUs they stay apart, so the GPU's actor
never waits for CPU decoding.

A clip that fails becomes one row whose ``error_type`` is set, so failures travel with the data and the
driver counts exactly: every input clip comes back once, written or failed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from avs.decode.errors import InfrastructureError
from avs.shards.config import AudioConfig, FeatureSetConfig
from avs.shards.writer import FeatureSink, clip_tables

ERROR_COLUMNS = ("error_stage", "error_type", "error_message")
# Video rows decoded on CPU because the GPU decoder failed for a reason of the machine: why ("" otherwise).
# Carried onto the status rows, where the driver counts it (run.json: counts.gpu_fallbacks).
FALLBACK_COLUMN = "decode_fallback"


def error_fields(stage: str, exc: BaseException) -> dict[str, str]:
    from avs.decode.errors import error_kind

    message = str(exc).strip() or repr(exc)
    return {"error_stage": stage, "error_type": error_kind(exc), "error_message": message[:2000]}


class DecodeStage:
    """Decode each clip in a guarded child process, convert channels, resample, cut into segments."""

    def __init__(self, audio: AudioConfig, timeout_s: float, plugins: tuple[str, ...] = ()) -> None:
        from avs.decode.guard import GuardedDecoder

        self.audio = audio
        self.decoder = GuardedDecoder(
            timeout_s=timeout_s, plugins=plugins, backend=audio.backend, channels=audio.channels
        )
        self.shape = (audio.n_channels(), audio.segment_samples())  # (channels, samples) of one segment
        self.decoder.start()  # now, while the other actors start, not on the first clip

    def decode_clip(self, path: str) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, str]]:
        """-> (segments (n, channels, samples), starts_s (n,), {}) or (None, None, error fields)."""
        from avs.decode.segments import resample, segment_clip, to_channels

        a = self.audio
        try:
            audio, rate = self.decoder.decode(path)
        except InfrastructureError:  # the decoder process cannot start here: the run stops, no file is blamed
            raise
        except Exception as exc:
            return None, None, error_fields("decode", exc)
        try:
            audio = resample(to_channels(audio, a.channels), rate, a.sample_rate_hz)
            segments, starts = segment_clip(
                audio, a.sample_rate_hz, a.segment_seconds, a.hop_seconds, a.clip_seconds, a.min_last_fraction
            )
        except Exception as exc:
            return None, None, error_fields("segment", exc)
        return segments, starts, {}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cols: dict[str, list] = defaultdict(list)
        audio: list[np.ndarray] = []
        seconds = self.shape[1] / self.audio.sample_rate_hz
        for clip_id, path, row, block in zip(
            batch["clip_id"], batch["path"], batch["row"], batch["block"], strict=True
        ):
            t0 = time.perf_counter()
            segments, starts, error = self.decode_clip(str(path))
            n = 1 if segments is None else len(segments)
            cols["decode_s"] += [(time.perf_counter() - t0) / n] * n
            cols["clip_id"] += [str(clip_id)] * n
            cols["row"] += [int(row)] * n
            cols["block"] += [int(block)] * n
            cols["n_segments"] += [n] * n
            if segments is None:
                cols["segment"].append(-1)
                cols["start_s"].append(0.0)
                audio.append(np.zeros((1, *self.shape), np.float32))
            else:
                cols["segment"] += list(range(n))
                cols["start_s"] += [float(s) for s in starts]
                audio.append(segments.astype(np.float32, copy=False))
            for key in ERROR_COLUMNS:
                cols[key] += [error.get(key, "")] * n
        out = {k: np.asarray(v, dtype=object if k in ("clip_id", *ERROR_COLUMNS) else None) for k, v in cols.items()}
        out["end_s"] = out["start_s"] + seconds
        out["audio"] = np.concatenate(audio) if audio else np.zeros((0, *self.shape), np.float32)
        return out


class AudioStage:
    """CPU: ``DecodeStage`` then ``FeatureStage`` in one actor (input blocks -> status rows per clip)."""

    def __init__(self, audio: AudioConfig, timeout_s: float, plugins: tuple[str, ...] = (), **feature_kw: Any) -> None:
        self.decode = DecodeStage(audio, timeout_s, plugins)
        self.features = FeatureStage(audio, **feature_kw)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.features(self.decode(batch))


def finite_rows(values: np.ndarray) -> np.ndarray:
    """(rows, ...) -> (rows,) True where every value is finite. One summing pass (a NaN or inf makes the
    row's sum non-finite); only rows whose sum is not finite are looked at value by value (a sum of finite
    values can overflow)."""
    flat = values.reshape(len(values), -1)
    ok = np.isfinite(flat.sum(axis=1, dtype=np.float64))
    for i in np.flatnonzero(~ok):
        ok[i] = bool(np.isfinite(flat[i]).all())
    return ok


def pick_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available on this worker")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def build_extractors(features: tuple[FeatureSetConfig, ...], device: str, sample_rate_hz: int) -> dict[str, Any]:
    """Feature set name -> its extractor on ``device``, in eval mode, weights loaded now (not on the first batch)."""
    from avs.features.base import create_extractor

    extractors = {
        f.name: create_extractor(f.extractor, f.params, sample_rate_hz=sample_rate_hz).to(device).eval()
        for f in features
    }
    for ext in extractors.values():
        if hasattr(ext, "load"):
            ext.load()
    return extractors


class FeatureWorker:
    """What the feature stages of both branches hold: extractors built once on the worker's device
    (weights loaded now, not on the first batch), the part writers and the manifest columns to carry.

    ``carried``: a one-item list holding the manifest columns' object reference (a small constructor
    argument; the table itself stays in the object store once). ``writers``: part-writer actor handles.
    """

    def __init__(
        self,
        features: tuple[FeatureSetConfig, ...],
        sinks: tuple[FeatureSink, ...],
        writers: list[Any],
        carried: list[Any],
        device: str = "auto",
        threads: int | None = None,
        sample_rate_hz: int = 0,
    ) -> None:
        import ray
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.extractors = build_extractors(features, self.device, sample_rate_hz)
        self.sinks = sinks
        self.writers = writers
        self.carried = ray.get(carried[0])  # manifest columns copied onto rows, indexed by manifest row

    def send(self, block: int, tables: dict[str, pa.Table] | None) -> None:
        """Hand whole clips to the part writer of ``block`` (the same writer for a retried block). Returns
        once the writer has queued them (it writes in its own thread), so the status rows this worker
        returns next never run ahead of the clips they report."""
        import ray

        if tables is not None:
            ray.get(self.writers[block % len(self.writers)].append.remote(tables))


class FeatureStage(FeatureWorker):
    """Compute every audio feature set on the segments of whole clips (CUDA when present), write the good
    clips as Parquet parts, and return one small status row per clip."""

    def __init__(self, audio: AudioConfig, features: tuple[FeatureSetConfig, ...], **kwargs: Any) -> None:
        super().__init__(features, sample_rate_hz=audio.sample_rate_hz, **kwargs)

    def _compute(self, extractor: Any, audio: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(audio).to(self.device, non_blocking=True)
            return extractor(x).float().cpu().numpy()

    def compute(self, audio: np.ndarray, ok: np.ndarray, errors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Features of the rows ``ok``; a row that fails (or gives non-finite values) gets error fields."""
        out: dict[str, np.ndarray] = {}
        for sink in self.sinks:
            extractor = self.extractors[sink.name]
            rows = np.flatnonzero(ok)
            values = None
            if len(rows) == len(audio):  # the usual case: every row, straight from the extractor (no copy)
                try:
                    values = self._compute(extractor, audio)
                except Exception:
                    values = None
            if values is None:
                values = np.zeros((len(audio), *sink.shape), dtype=np.float32)
                try:
                    values[rows] = self._compute(extractor, audio[rows])
                except Exception:  # find the rows that fail, keep the others
                    for i in rows:
                        try:
                            values[i] = self._compute(extractor, audio[i : i + 1])[0]
                        except Exception as exc:
                            self._fail(errors, ok, i, f"{sink.name}: {exc}", type(exc).__name__)
            for i in np.flatnonzero(ok & ~finite_rows(values)):
                self._fail(errors, ok, i, f"{sink.name}: non-finite feature values", "non_finite")
            out[sink.name] = values
        return out

    @staticmethod
    def _fail(errors: dict[str, np.ndarray], ok: np.ndarray, i: int, message: str, kind: str) -> None:
        ok[i] = False
        errors["error_stage"][i], errors["error_type"][i], errors["error_message"][i] = "features", kind, message[:2000]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        audio = batch.pop("audio")  # (rows, channels, samples) float32
        errors = {k: np.array(batch[k], dtype=object) for k in ERROR_COLUMNS}
        ok = errors["error_type"] == ""
        t0 = time.perf_counter()
        feats = self.compute(audio, ok, errors)
        feature_s = (time.perf_counter() - t0) / max(1, len(audio))  # seconds per row

        status, tables = finish_batch(batch, ok, errors, feats, feature_s, self.sinks, self.carried)
        self.send(int(batch["block"][0]), tables)
        return status


def finish_batch(
    batch: dict[str, np.ndarray],
    ok: np.ndarray,
    errors: dict[str, np.ndarray],
    feats: dict[str, Any],
    feature_s: float,
    sinks: tuple[FeatureSink, ...],
    carried: pa.Table,
    extra_keys: tuple[str, ...] = (),
) -> tuple[dict[str, np.ndarray], dict[str, pa.Table] | None]:
    """Group rows by clip -> (one status row per clip {clip_id, n_rows, decode_s, feature_s, error_*, and
    decode_fallback when the rows have it},
    one table per feature set holding the clips whose rows are all here and good, or None).

    ``feats``: feature set -> (rows, *shape) float32 array, or a list of bytes (binary feature sets).
    ``feature_s``: feature seconds per row. ``extra_keys``: more per-row columns to store (frame_index...).
    """
    clip_rows: dict[str, list[int]] = defaultdict(list)
    for i, cid in enumerate(batch["clip_id"]):
        clip_rows[str(cid)].append(i)
    status: dict[str, list] = defaultdict(list)
    good: list[int] = []  # rows to write, clip by clip, segments in order
    for cid, rows in clip_rows.items():
        first = rows[0]
        bad = [i for i in rows if not ok[i]]
        complete = len(rows) == int(batch["n_segments"][first])
        status["clip_id"].append(cid)
        status["decode_s"].append(float(np.sum(batch["decode_s"][rows])))
        status["feature_s"].append(feature_s * len(rows))
        if FALLBACK_COLUMN in batch:
            status[FALLBACK_COLUMN].append(str(batch[FALLBACK_COLUMN][first]))
        if bad or not complete:
            e = bad[0] if bad else first
            fields = (errors["error_stage"][e], errors["error_type"][e], errors["error_message"][e])
            if not bad:  # cannot happen unless Ray Data split a clip across blocks
                fields = ("pipeline", "split_clip", f"{len(rows)} of {batch['n_segments'][first]} segments")
            status["n_rows"].append(0)
            for key, value in zip(ERROR_COLUMNS, fields, strict=True):
                status[key].append(str(value))
        else:
            good.extend(sorted(rows, key=lambda i: int(batch["segment"][i])))
            status["n_rows"].append(len(rows))
            for key in ERROR_COLUMNS:
                status[key].append("")
    tables = None
    if good:
        idx = slice(None) if good == list(range(len(batch["clip_id"]))) else np.asarray(good)  # slices: no copy
        keys = {k: batch[k][idx] for k in ("clip_id", "segment", "start_s", "end_s", *extra_keys)}
        values = {
            n: v[idx] if isinstance(v, np.ndarray) or isinstance(idx, slice) else [v[i] for i in idx]
            for n, v in feats.items()
        }
        tables = clip_tables(sinks, keys, values, carried.take(pa.array(batch["row"][idx])))
    text = ("clip_id", *ERROR_COLUMNS, FALLBACK_COLUMN)
    out = {k: np.asarray(v, dtype=object if k in text else None) for k, v in status.items()}
    return out, tables
