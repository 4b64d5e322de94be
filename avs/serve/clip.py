"""One media file -> the feature tables ``avs extract`` would write for it, computed by the batch pipeline's own
pieces: the guarded decoders (a child process, killed after ``decode_timeout_s``), segmenting and resampling
(``DecodeStage.decode_clip``), frame sampling (``VideoDecodeStage``), the registered extractors and
``clip_tables`` (the shards' row layout and schema metadata, config hash included).

    extractor = ClipExtractor(cfg, device="cpu", decode_timeout_s=30)     # cfg: an ExtractConfig
    result = extractor.extract("upload.wav")
    result.tables["logmel"]        # pa.Table: clip_id, segment, start_s, end_s, ..., logmel  (as in the shards)
    result.skipped                 # {"frames": "no video stream: ..."}: sets this file cannot give, with the reason
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pyarrow as pa

from avs.shards.config import ExtractConfig, FeatureSetConfig, feature_set_hash, feature_set_identity

CLIP_ID = "upload"  # clip_id of the rows of a served file (the shards' key column)


class BadMedia(ValueError):
    """The upload cannot give any requested feature set (corrupt, truncated, no usable stream, decode timeout)."""


class UnknownFeatureSet(ValueError):
    """A request named a feature set this service does not compute (400)."""


@dataclasses.dataclass(frozen=True)
class ClipResult:
    tables: dict[str, pa.Table]  # feature set -> rows in the shards' layout
    skipped: dict[str, str]  # feature set -> why this file cannot give it
    seconds: dict[str, float]  # decode_audio, decode_video, features


def _carried(n: int) -> pa.Table:
    """The manifest columns the shards carry (labels, split, ...), empty for an uploaded file: ``n`` rows."""
    from avs.data.manifest import CARRIED_COLUMNS, MANIFEST_SCHEMA

    return pa.table({c: pa.nulls(n, MANIFEST_SCHEMA.field(c).type) for c in CARRIED_COLUMNS})


def _skip(sets: list[FeatureSetConfig], error: dict[str, str], skipped: dict[str, str]) -> None:
    """A decode that failed: every set of that branch is skipped with the decoder's reason (as an errors row)."""
    for f in sets:
        skipped[f.name] = f"{error['error_type']}: {error['error_message']}"


class ClipExtractor:
    """Holds the decoders (child processes started now) and the extractors (weights loaded now) of ``cfg``."""

    def __init__(self, cfg: ExtractConfig, device: str = "cpu", decode_timeout_s: float = 30.0) -> None:
        from avs.features.base import extractor_modality
        from avs.shards.pipeline import feature_sinks
        from avs.shards.stages import DecodeStage, build_extractors
        from avs.shards.video_stages import VideoDecodeStage

        self.cfg = cfg
        self.device = device
        self.hashes = {f.name: feature_set_hash(cfg, f) for f in cfg.features}
        identities = {f.name: feature_set_identity(cfg, f) for f in cfg.features}
        self.audio_sets = tuple(f for f in cfg.features if extractor_modality(f.extractor) == "audio")
        self.video_sets = tuple(f for f in cfg.features if extractor_modality(f.extractor) != "audio")
        self.sinks = {s.name: s for s in feature_sinks(cfg, cfg.features, identities, self.hashes)}
        self.extractors = build_extractors(cfg.features, device, cfg.audio.sample_rate_hz)
        plugins = cfg.pipeline.plugins
        self.audio = DecodeStage(cfg.audio, decode_timeout_s, plugins) if self.audio_sets else None
        self.video = VideoDecodeStage(cfg.video, cfg.audio, decode_timeout_s, plugins) if self.video_sets else None

    def names(self) -> list[str]:
        return [f.name for f in self.cfg.features]

    def extract(self, path: str, wanted: list[str] | None = None) -> ClipResult:
        """Feature tables of ``path`` for the sets ``wanted`` (default: all); BadMedia when none can be given."""
        wanted = wanted or self.names()
        unknown = [n for n in wanted if n not in self.sinks]
        if unknown:
            raise UnknownFeatureSet(f"unknown feature set(s) {unknown}; this service has {self.names()}")
        tables: dict[str, pa.Table] = {}
        skipped: dict[str, str] = {}
        seconds: dict[str, float] = {}
        audio = [f for f in self.audio_sets if f.name in wanted]
        video = [f for f in self.video_sets if f.name in wanted]
        if audio:
            self._audio(path, audio, tables, skipped, seconds)
        if video:
            self._video(path, video, tables, skipped, seconds)
        if not tables:
            reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
            raise BadMedia(f"no feature set could be computed from this file ({reasons})")
        return ClipResult(tables, skipped, seconds)

    def _audio(self, path: str, sets: list[FeatureSetConfig], tables: dict, skipped: dict, seconds: dict) -> None:
        import torch

        from avs.shards.stages import finite_rows
        from avs.shards.writer import clip_tables

        t0 = time.perf_counter()
        segments, starts, error = self.audio.decode_clip(path)  # (n, channels, samples) float32, (n,) s
        seconds["decode_audio"] = time.perf_counter() - t0
        if segments is None:
            return _skip(sets, error, skipped)
        t0 = time.perf_counter()
        n = len(segments)
        seg_s = self.cfg.audio.segment_samples() / self.cfg.audio.sample_rate_hz
        keys = {
            "clip_id": np.asarray([CLIP_ID] * n, dtype=object),
            "segment": np.arange(n, dtype=np.int32),
            "start_s": np.asarray(starts, np.float64),
            "end_s": np.asarray(starts, np.float64) + seg_s,
        }
        feats = {}
        for f in sets:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)).to(self.device)
                values = self.extractors[f.name](x).float().cpu().numpy()
            if not finite_rows(values).all():
                skipped[f.name] = "non_finite: the features of this file have non-finite values"
                continue
            feats[f.name] = values
        sinks = tuple(self.sinks[name] for name in feats)
        tables.update(clip_tables(sinks, keys, feats, _carried(n)))
        seconds["features"] = seconds.get("features", 0.0) + time.perf_counter() - t0

    def _video(self, path: str, sets: list[FeatureSetConfig], tables: dict, skipped: dict, seconds: dict) -> None:
        from avs.shards.video_stages import VIDEO_KEYS, frame_rows
        from avs.shards.writer import clip_tables

        t0 = time.perf_counter()
        got, error = self.video.read_clip(path)
        seconds["decode_video"] = time.perf_counter() - t0
        if got is None:
            return _skip(sets, error, skipped)
        t0 = time.perf_counter()
        rows, frames = frame_rows([(CLIP_ID, 0, 0, got, {}, 0.0)], self.video.half_window)
        keys = {k: rows[k] for k in ("clip_id", "segment", "start_s", "end_s", *VIDEO_KEYS)}
        stack = np.stack(frames)  # (frames, H, W, 3) uint8
        cache: dict = {}  # CLIP embeddings shared by the CLIP and zero-shot sets of one encoder
        feats: dict[str, Any] = {}
        for f in sets:
            values = self.extractors[f.name](stack, cache)
            feats[f.name] = values if isinstance(values, list) else np.asarray(values, np.float32)
        sinks = tuple(self.sinks[name] for name in feats)
        tables.update(clip_tables(sinks, keys, feats, _carried(len(stack))))
        seconds["features"] = seconds.get("features", 0.0) + time.perf_counter() - t0
