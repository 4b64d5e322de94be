"""Ray Data stages of the extraction pipeline (callable classes: load in ``__init__``, work in ``__call__``).

    clip rows {clip_id, path}
      -> DecodeStage   -> segment rows {clip_id, segment, start_s, end_s, n_segments, audio, error_*}
      -> FeatureStage  -> the same rows with one column per feature set, ``audio`` dropped

A clip that fails becomes one row whose ``error_type`` is set (its ``audio`` / features are zeros), so
failures travel with the data and are counted exactly where the rows are written.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from avs.shards.config import AudioConfig, FeatureSetConfig

META_COLUMNS = ("clip_id", "segment", "start_s", "end_s", "n_segments", "error_stage", "error_type", "error_message")


def _rows_to_batch(rows: list[dict[str, Any]], audio_shape: tuple[int, int]) -> dict[str, np.ndarray]:
    batch: dict[str, np.ndarray] = {
        "clip_id": np.array([r["clip_id"] for r in rows], dtype=object),
        "segment": np.array([r["segment"] for r in rows], dtype=np.int32),
        "start_s": np.array([r["start_s"] for r in rows], dtype=np.float64),
        "end_s": np.array([r["end_s"] for r in rows], dtype=np.float64),
        "n_segments": np.array([r["n_segments"] for r in rows], dtype=np.int32),
        "error_stage": np.array([r.get("error_stage", "") for r in rows], dtype=object),
        "error_type": np.array([r.get("error_type", "") for r in rows], dtype=object),
        "error_message": np.array([r.get("error_message", "") for r in rows], dtype=object),
    }
    audio = np.zeros((len(rows), *audio_shape), dtype=np.float32)  # (rows, channels, samples)
    for i, r in enumerate(rows):
        if r.get("audio") is not None:
            audio[i] = r["audio"]
    batch["audio"] = audio
    return batch


def error_row(clip_id: str, stage: str, exc: BaseException) -> dict[str, Any]:
    from avs.decode.errors import error_kind

    message = str(exc).strip() or repr(exc)
    return {
        "clip_id": clip_id,
        "segment": -1,
        "start_s": 0.0,
        "end_s": 0.0,
        "n_segments": 1,
        "error_stage": stage,
        "error_type": error_kind(exc),
        "error_message": message[:2000],
    }


class DecodeStage:
    """Decode each clip in a guarded child process, convert channels, resample, cut into segments."""

    def __init__(self, audio: AudioConfig, timeout_s: float, plugins: tuple[str, ...] = ()) -> None:
        from avs.decode.guard import GuardedDecoder

        self.audio = audio
        self.decoder = GuardedDecoder(timeout_s=timeout_s, plugins=plugins, backend=audio.backend)
        self.shape = (audio.n_channels(), audio.segment_samples())

    def decode_clip(self, clip_id: str, path: str) -> list[dict[str, Any]]:
        from avs.decode.segments import resample, segment_clip, to_channels

        a = self.audio
        try:
            audio, rate = self.decoder.decode(path)
        except Exception as exc:
            return [error_row(clip_id, "decode", exc)]
        try:
            audio = resample(to_channels(audio, a.channels), rate, a.sample_rate_hz)
            segments, starts = segment_clip(
                audio, a.sample_rate_hz, a.segment_seconds, a.hop_seconds, a.clip_seconds, a.min_last_fraction
            )  # (n_segments, channels, samples), (n_segments,) seconds
        except Exception as exc:
            return [error_row(clip_id, "segment", exc)]
        seconds = self.shape[1] / a.sample_rate_hz
        return [
            {
                "clip_id": clip_id,
                "segment": i,
                "start_s": float(s),
                "end_s": float(s) + seconds,
                "n_segments": len(segments),
                "audio": segments[i],
            }
            for i, s in enumerate(starts)
        ]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict[str, Any]] = []
        for clip_id, path in zip(batch["clip_id"], batch["path"], strict=True):
            rows.extend(self.decode_clip(str(clip_id), str(path)))
        return _rows_to_batch(rows, self.shape)


def pick_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available on this worker")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class FeatureStage:
    """Compute every feature set on a batch of segments (CUDA when present) and drop the raw audio."""

    def __init__(
        self,
        audio: AudioConfig,
        features: tuple[FeatureSetConfig, ...],
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        import torch

        from avs.features.base import create_extractor

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.extractors = {
            f.name: create_extractor(f.extractor, f.params, sample_rate_hz=audio.sample_rate_hz).to(self.device).eval()
            for f in features
        }
        self.n_channels, self.n_samples = audio.n_channels(), audio.segment_samples()
        self.shapes = {n: e.output_shape(self.n_channels, self.n_samples) for n, e in self.extractors.items()}

    def _compute(self, extractor: Any, audio: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(audio).to(self.device, non_blocking=True)
            return extractor(x).float().cpu().numpy()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        audio = batch.pop("audio")  # (rows, channels, samples) float32
        ok = np.flatnonzero(batch["error_type"] == "")
        for name, extractor in self.extractors.items():
            out = np.zeros((len(audio), *self.shapes[name]), dtype=np.float32)
            if len(ok):
                try:
                    out[ok] = self._compute(extractor, audio[ok])
                except Exception:  # find the rows that fail, keep the others
                    for i in ok:
                        try:
                            out[i] = self._compute(extractor, audio[i : i + 1])[0]
                        except Exception as exc:
                            self._fail(batch, i, f"{name}: {exc}", type(exc).__name__)
            bad = [i for i in ok if not np.isfinite(out[i]).all()]
            for i in bad:
                self._fail(batch, i, f"{name}: non-finite feature values", "non_finite")
            batch[name] = out
            ok = np.flatnonzero(batch["error_type"] == "")
        return batch

    @staticmethod
    def _fail(batch: dict[str, np.ndarray], i: int, message: str, kind: str) -> None:
        batch["error_stage"][i] = "features"
        batch["error_type"][i] = kind
        batch["error_message"][i] = message[:2000]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
