"""Ray Data stages of the video branch: one guarded decode per video shared by every video feature set.

input blocks {clip_id, video_path, row, part}
  -> VideoDecodeStage  -> frame rows {clip_id, row, part, segment, frame_index, timestamp_s, start_s, end_s,
                                      n_segments, frame (H, W, 3) uint8, error_*}
  -> VideoFeatureStage -> frames (JPEG), CLIP embeddings, zero-shot probabilities; parts written by the
                          worker; one status row per clip (as the audio branch)
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from avs.shards.config import AudioConfig, VideoConfig
from avs.shards.stages import ERROR_COLUMNS, FeatureWorker, error_fields, finish_batch

VIDEO_KEYS = ("frame_index", "timestamp_s")


class VideoDecodeStage:
    """Read the sampled frames of each clip's video in a guarded child process (crash / hang safe)."""

    def __init__(self, video: VideoConfig, audio: AudioConfig, timeout_s: float, plugins: tuple[str, ...] = ()) -> None:
        from avs.decode.video_guard import GuardedFrameReader

        self.rule = video.rule(audio)
        self.half_window = (audio.segment_seconds or 0.0) / 2 if video.sampling == "segments" else 0.0
        self.reader = GuardedFrameReader(
            timeout_s=timeout_s, plugins=plugins, backend=video.backend, size=video.short_side, threads=1
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cols: dict[str, list] = defaultdict(list)
        frames: list[np.ndarray] = []
        for clip_id, path, row, part in zip(
            batch["clip_id"], batch["video_path"], batch["row"], batch["part"], strict=True
        ):
            t0 = time.perf_counter()
            error: dict[str, str] = {}
            got = None
            if path is None or str(path) in ("", "None", "nan"):
                error = {
                    "error_stage": "decode",
                    "error_type": "no_video",
                    "error_message": "the manifest has no video_path for this clip",
                }
            else:
                try:
                    got = self.reader.read_frames(str(path), self.rule)
                    if len(got.frames) == 0:
                        raise ValueError("no frames at the sampled times")
                except Exception as exc:
                    error, got = error_fields("decode", exc), None
            n = 1 if got is None else len(got.frames)
            cols["clip_id"] += [str(clip_id)] * n
            cols["row"] += [int(row)] * n
            cols["part"] += [int(part)] * n
            cols["n_segments"] += [n] * n
            cols["decode_s"] += [(time.perf_counter() - t0) / n] * n
            if got is None:
                cols["segment"].append(-1)
                cols["frame_index"].append(-1)
                cols["timestamp_s"].append(0.0)
                frames.append(np.zeros((1, 1, 3), np.uint8))
            else:
                cols["segment"] += list(range(n))
                cols["frame_index"] += [int(i) for i in got.indices]
                cols["timestamp_s"] += [round(float(t), 6) for t in got.timestamps_s]  # us (decord: float32)
                frames.extend(list(got.frames))
            for key in ERROR_COLUMNS:
                cols[key] += [error.get(key, "")] * n
        out = {k: np.asarray(v, dtype=object if k in ("clip_id", *ERROR_COLUMNS) else None) for k, v in cols.items()}
        # start_s / end_s: the moment a frame describes; for "segments" sampling the audio window around it
        out["start_s"] = np.maximum(out["timestamp_s"] - self.half_window, 0.0)
        out["end_s"] = out["timestamp_s"] + self.half_window
        shapes = {f.shape for f in frames}
        if len(shapes) == 1:
            out["frame"] = np.stack(frames)  # (rows, H, W, 3) uint8
        else:  # videos of different sizes in one block: a ragged column (Ray's variable-shaped tensors)
            ragged = np.empty(len(frames), dtype=object)
            ragged[:] = frames
            out["frame"] = ragged
        return out


class VideoFeatureStage(FeatureWorker):
    """Frames -> every video feature set (CUDA when present, CLIP in fp16 there); writes parts."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        frames = batch.pop("frame")
        errors = {k: np.array(batch[k], dtype=object) for k in ERROR_COLUMNS}
        ok = errors["error_type"] == ""
        n = len(batch["clip_id"])
        t0 = time.perf_counter()
        feats: dict[str, Any] = {}
        for sink in self.sinks:
            feats[sink.name] = [b""] * n if sink.dtype == "binary" else np.zeros((n, *sink.shape), np.float32)
        # Frames of one size are computed together (one CLIP batch per size).
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i in np.flatnonzero(ok):
            by_shape[tuple(frames[i].shape)].append(int(i))
        for rows in by_shape.values():
            stack = np.stack([frames[i] for i in rows])  # (rows, H, W, 3) uint8
            cache: dict = {}
            for sink in self.sinks:
                try:
                    values = self.extractors[sink.name](stack, cache)
                except Exception as exc:
                    for i in rows:
                        ok[i] = False
                        errors["error_stage"][i], errors["error_type"][i] = "features", type(exc).__name__
                        errors["error_message"][i] = f"{sink.name}: {exc}"[:2000]
                    break
                for j, i in enumerate(rows):
                    feats[sink.name][i] = values[j]
        feature_s = (time.perf_counter() - t0) / max(1, n)
        return finish_batch(
            batch,
            ok,
            errors,
            feats,
            feature_s,
            self.sinks,
            self.storage,
            self.carried,
            self.compression,
            extra_keys=VIDEO_KEYS,
        )
