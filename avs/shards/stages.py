"""Ray Data stages of the extraction pipeline (callable classes: load in ``__init__``, work in ``__call__``).

    input blocks {clip_id, path, row, part}           (one block per decode batch, numbered by ``part``)
      -> DecodeStage   -> segment rows {clip_id, row, part, segment, start_s, end_s, n_segments, audio, error_*}
      -> FeatureStage  -> features computed, parts written by the worker; returns one small row per clip
                          {clip_id, part, n_rows, error_stage, error_type, error_message}

A clip that fails becomes one row whose ``error_type`` is set, so failures travel with the data and the
driver counts exactly: every input clip comes back once, written or failed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from avs.shards.config import AudioConfig, FeatureSetConfig
from avs.shards.writer import FeatureSink, write_part

ERROR_COLUMNS = ("error_stage", "error_type", "error_message")


def error_fields(stage: str, exc: BaseException) -> dict[str, str]:
    from avs.decode.errors import error_kind

    message = str(exc).strip() or repr(exc)
    return {"error_stage": stage, "error_type": error_kind(exc), "error_message": message[:2000]}


class DecodeStage:
    """Decode each clip in a guarded child process, convert channels, resample, cut into segments."""

    def __init__(self, audio: AudioConfig, timeout_s: float, plugins: tuple[str, ...] = ()) -> None:
        from avs.decode.guard import GuardedDecoder

        self.audio = audio
        self.decoder = GuardedDecoder(timeout_s=timeout_s, plugins=plugins, backend=audio.backend)
        self.shape = (audio.n_channels(), audio.segment_samples())  # (channels, samples) of one segment

    def decode_clip(self, path: str) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, str]]:
        """-> (segments (n, channels, samples), starts_s (n,), {}) or (None, None, error fields)."""
        from avs.decode.segments import resample, segment_clip, to_channels

        a = self.audio
        try:
            audio, rate = self.decoder.decode(path)
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
        for clip_id, path, row, part in zip(batch["clip_id"], batch["path"], batch["row"], batch["part"], strict=True):
            t0 = time.perf_counter()
            segments, starts, error = self.decode_clip(str(path))
            n = 1 if segments is None else len(segments)
            cols["decode_s"] += [(time.perf_counter() - t0) / n] * n
            cols["clip_id"] += [str(clip_id)] * n
            cols["row"] += [int(row)] * n
            cols["part"] += [int(part)] * n
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


def pick_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available on this worker")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class FeatureWorker:
    """What the feature stages of both branches hold: extractors built once on the worker's device
    (weights loaded now, not on the first batch), the output storage and the manifest columns to carry."""

    def __init__(
        self,
        features: tuple[FeatureSetConfig, ...],
        sinks: tuple[FeatureSink, ...],
        out_uri: str,
        carried: pa.Table,
        compression: str = "lz4",
        device: str = "auto",
        threads: int | None = None,
        sample_rate_hz: int = 0,
    ) -> None:
        import torch

        from avs.features.base import create_extractor
        from avs.shards.storage import Storage

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.extractors = {
            f.name: create_extractor(f.extractor, f.params, sample_rate_hz=sample_rate_hz).to(self.device).eval()
            for f in features
        }
        for ext in self.extractors.values():
            if hasattr(ext, "load"):
                ext.load()
        self.sinks = sinks
        self.storage = Storage(out_uri)
        self.carried = carried  # manifest columns copied onto rows, indexed by manifest row
        self.compression = compression


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
            values = np.zeros((len(audio), *sink.shape), dtype=np.float32)
            rows = np.flatnonzero(ok)
            if len(rows):
                try:
                    values[rows] = self._compute(extractor, audio[rows])
                except Exception:  # find the rows that fail, keep the others
                    for i in rows:
                        try:
                            values[i] = self._compute(extractor, audio[i : i + 1])[0]
                        except Exception as exc:
                            self._fail(errors, ok, i, f"{sink.name}: {exc}", type(exc).__name__)
            finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            for i in np.flatnonzero(ok & ~finite):
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

        return finish_batch(
            batch, ok, errors, feats, feature_s, self.sinks, self.storage, self.carried, self.compression
        )


def finish_batch(
    batch: dict[str, np.ndarray],
    ok: np.ndarray,
    errors: dict[str, np.ndarray],
    feats: dict[str, Any],
    feature_s: float,
    sinks: tuple[FeatureSink, ...],
    storage: Any,
    carried: pa.Table,
    compression: str,
    extra_keys: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Group rows by clip, write the clips whose rows are all here and good as parts, and return one
    status row per clip {clip_id, part, n_rows, decode_s, feature_s, write_s, error_*}.

    ``feats``: feature set -> (rows, *shape) float32 array, or a list of bytes (binary feature sets).
    ``feature_s``: feature seconds per row. ``extra_keys``: more per-row columns to store (frame_index...).
    """
    clip_rows: dict[str, list[int]] = defaultdict(list)
    for i, cid in enumerate(batch["clip_id"]):
        clip_rows[str(cid)].append(i)
    status: dict[str, list] = defaultdict(list)
    good: dict[int, list[int]] = defaultdict(list)  # part -> rows to write
    for cid, rows in clip_rows.items():
        first = rows[0]
        bad = [i for i in rows if not ok[i]]
        complete = len(rows) == int(batch["n_segments"][first])
        status["clip_id"].append(cid)
        status["part"].append(int(batch["part"][first]))
        status["decode_s"].append(float(np.sum(batch["decode_s"][rows])))
        status["feature_s"].append(feature_s * len(rows))
        if bad or not complete:
            e = bad[0] if bad else first
            fields = (errors["error_stage"][e], errors["error_type"][e], errors["error_message"][e])
            if not bad:  # cannot happen unless Ray Data split a clip across blocks
                fields = ("pipeline", "split_clip", f"{len(rows)} of {batch['n_segments'][first]} segments")
            status["n_rows"].append(0)
            for key, value in zip(ERROR_COLUMNS, fields, strict=True):
                status[key].append(str(value))
        else:
            rows = sorted(rows, key=lambda i: int(batch["segment"][i]))
            good[int(batch["part"][first])].extend(rows)
            status["n_rows"].append(len(rows))
            for key in ERROR_COLUMNS:
                status[key].append("")
    t0 = time.perf_counter()
    for part, rows in good.items():
        idx = np.asarray(rows)
        keys = {k: batch[k][idx] for k in ("clip_id", "segment", "start_s", "end_s", *extra_keys)}
        values = {n: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for n, v in feats.items()}
        write_part(storage, part, sinks, keys, values, carried.take(pa.array(batch["row"][idx])), compression)
    n_written = max(1, sum(status["n_rows"]))
    write_s = time.perf_counter() - t0
    status["write_s"] = [write_s * n / n_written for n in status["n_rows"]]
    return {k: np.asarray(v, dtype=object if k in ("clip_id", *ERROR_COLUMNS) else None) for k, v in status.items()}
