"""Ray Data stages of the video branch: one decode per video, shared by every video feature set.

CPU (and GPU without DALI):
    input blocks {clip_id, video_path, row, block}
      -> VideoDecodeStage  -> frame rows {clip_id, row, block, segment, frame_index, timestamp_s, start_s, end_s,
                                          n_segments, frame (H, W, 3) uint8, error_*}   (guarded child process)
      -> VideoFeatureStage -> frames (JPEG), CLIP embeddings, zero-shot probabilities; whole clips sent
                              to a part writer; one status row per clip (as the audio branch)
GPU with DALI (``video.backend: dali``, or ``auto`` on a GPU cluster with the ``gpu`` extra):
    input blocks -> DaliVideoStage: decode on the GPU (NVDEC) and compute the features there, frames never
                    leave the GPU except for the JPEGs of the frames set.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from avs.shards.config import AudioConfig, VideoConfig
from avs.shards.stages import ERROR_COLUMNS, FeatureWorker, error_fields, finish_batch

VIDEO_KEYS = ("frame_index", "timestamp_s")
NO_VIDEO = {
    "error_stage": "decode",
    "error_type": "no_video",
    "error_message": "the manifest has no video_path for this clip",
}


def _has_path(path: Any) -> bool:
    return path is not None and str(path) not in ("", "None", "nan")


def frame_rows(
    clips: Iterable[tuple[str, int, int, Any, dict[str, str], float]], half_window: float
) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Rows of a block from decoded clips ``(clip_id, row, block, FrameBatch | None, error, seconds)``:
    one row per frame (one error row for a clip that failed) and the frames in row order."""
    cols: dict[str, list] = defaultdict(list)
    frames: list[Any] = []
    for clip_id, row, block, got, error, seconds in clips:
        n = 1 if got is None else len(got.frames)
        cols["clip_id"] += [str(clip_id)] * n
        cols["row"] += [int(row)] * n
        cols["block"] += [int(block)] * n
        cols["n_segments"] += [n] * n
        cols["decode_s"] += [seconds / n] * n
        if got is None:
            cols["segment"].append(-1)
            cols["frame_index"].append(-1)
            cols["timestamp_s"].append(0.0)
            frames.append(np.zeros((1, 1, 3), np.uint8))
        else:
            cols["segment"] += list(range(n))
            cols["frame_index"] += [int(i) for i in got.indices]
            cols["timestamp_s"] += [round(float(t), 6) for t in got.timestamps_s]  # microseconds (decord: float32)
            frames.extend(list(got.frames))
        for key in ERROR_COLUMNS:
            cols[key] += [error.get(key, "")] * n
    out = {k: np.asarray(v, dtype=object if k in ("clip_id", *ERROR_COLUMNS) else None) for k, v in cols.items()}
    # start_s / end_s: the moment a frame describes; for "segments" sampling the audio window around it
    out["start_s"] = np.maximum(out["timestamp_s"] - half_window, 0.0)
    out["end_s"] = out["timestamp_s"] + half_window
    return out, frames


def _half_window(video: VideoConfig, audio: AudioConfig) -> float:
    return (audio.segment_seconds or 0.0) / 2 if video.sampling == "segments" else 0.0


class VideoDecodeStage:
    """Read the sampled frames of each clip's video in a guarded child process (crash / hang safe)."""

    def __init__(self, video: VideoConfig, audio: AudioConfig, timeout_s: float, plugins: tuple[str, ...] = ()) -> None:
        from avs.decode.video_guard import GuardedFrameReader

        self.rule = video.rule(audio)
        self.half_window = _half_window(video, audio)
        backend = "auto" if video.backend == "dali" else video.backend
        self.reader = GuardedFrameReader(
            timeout_s=timeout_s, plugins=plugins, backend=backend, size=video.short_side, threads=1
        )

    def _read(self, path: Any) -> tuple[Any, dict[str, str]]:
        if not _has_path(path):
            return None, NO_VIDEO
        try:
            got = self.reader.read_frames(str(path), self.rule)
            if len(got.frames) == 0:
                raise ValueError("no frames at the sampled times")
            return got, {}
        except Exception as exc:
            return None, error_fields("decode", exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        clips = []
        for clip_id, path, row, block in zip(
            batch["clip_id"], batch["video_path"], batch["row"], batch["block"], strict=True
        ):
            t0 = time.perf_counter()
            got, error = self._read(path)
            clips.append((clip_id, row, block, got, error, time.perf_counter() - t0))
        out, frames = frame_rows(clips, self.half_window)
        if len({f.shape for f in frames}) == 1:
            out["frame"] = np.stack(frames)  # (rows, H, W, 3) uint8
        else:  # videos of different sizes in one block: a ragged column (Ray's variable-shaped tensors)
            ragged = np.empty(len(frames), dtype=object)
            ragged[:] = frames
            out["frame"] = ragged
        return out


class VideoFeatureStage(FeatureWorker):
    """Frames -> every video feature set (CUDA when present, CLIP in fp16 there); clips go to a part writer."""

    def features(self, batch: dict[str, np.ndarray], frames: Any) -> dict[str, np.ndarray]:
        """Compute the feature sets of the good rows (frames: numpy arrays or CUDA tensors, row order),
        write the clips, return the status rows."""
        errors = {k: np.array(batch[k], dtype=object) for k in ERROR_COLUMNS}
        ok = errors["error_type"] == ""
        n = len(batch["clip_id"])
        t0 = time.perf_counter()
        feats: dict[str, Any] = {}
        for sink in self.sinks:
            feats[sink.name] = [b""] * n if sink.dtype == "binary" else np.zeros((n, *sink.shape), np.float32)
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)  # one CLIP batch per frame size
        for i in np.flatnonzero(ok):
            by_shape[tuple(frames[i].shape)].append(int(i))
        for rows in by_shape.values():
            stack = _stack([frames[i] for i in rows])  # (rows, H, W, 3) uint8, numpy or CUDA tensor
            cache: dict = {}
            for sink in self.sinks:
                try:
                    values = self.extractors[sink.name](_host(stack) if sink.dtype == "binary" else stack, cache)
                except Exception as exc:
                    for i in rows:
                        ok[i] = False
                        errors["error_stage"][i], errors["error_type"][i] = "features", type(exc).__name__
                        errors["error_message"][i] = f"{sink.name}: {exc}"[:2000]
                    break
                values = values if isinstance(values, list) else _host(values)
                for j, i in enumerate(rows):
                    feats[sink.name][i] = values[j]
        feature_s = (time.perf_counter() - t0) / max(1, n)
        status, tables = finish_batch(batch, ok, errors, feats, feature_s, self.sinks, self.carried, VIDEO_KEYS)
        self.send(int(batch["block"][0]), tables)
        return status

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        frames = batch.pop("frame")
        return self.features(batch, frames)


class DaliVideoStage(VideoFeatureStage):
    """GPU path: decode the sampled frames with DALI (NVDEC) on the GPU that then runs CLIP.

    Each file is first indexed with PyAV on the CPU (header and packets, no decoding), which also turns the
    sampling rule into frame indices exactly as the CPU path does; a file DALI fails on becomes an error
    row and the others in its chunk are kept. Unlike the CPU path, DALI runs inside this worker: a native
    crash there costs the block (Ray retries it), not only the file.
    """

    def __init__(self, video: VideoConfig, audio: AudioConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = video.rule(audio)
        self.short_side = video.short_side
        self.half_window = _half_window(video, audio)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from avs.decode.dali import read_frames_dali
        from avs.decode.video_guard import _resolve_request

        t0 = time.perf_counter()
        n = len(batch["clip_id"])
        results: list[tuple[Any, dict[str, str]]] = [(None, NO_VIDEO)] * n
        by_size: dict[Any, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for i, path in enumerate(batch["video_path"]):
            if not _has_path(path):
                continue
            try:
                times, size = _resolve_request(str(path), self.rule, self.short_side)
                by_size[size].append((i, times))
            except Exception as exc:
                results[i] = (None, error_fields("decode", exc))
        for size, items in by_size.items():
            paths = [str(batch["video_path"][i]) for i, _ in items]
            got = read_frames_dali(
                paths,
                [t for _, t in items],
                size,
                output="torch",
                on_error="return",
                device_id=_device_index(self.device),
            )
            for (i, _), g in zip(items, got, strict=True):
                results[i] = (None, error_fields("decode", g)) if isinstance(g, Exception) else (g, {})
        seconds = (time.perf_counter() - t0) / max(1, n)
        clips = [
            (batch["clip_id"][i], batch["row"][i], batch["block"][i], got, err, seconds)
            for i, (got, err) in enumerate(results)
        ]
        out, frames = frame_rows(clips, self.half_window)
        return self.features(out, frames)


def _device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def _stack(frames: list[Any]) -> Any:
    if frames and not isinstance(frames[0], np.ndarray):
        import torch

        return torch.stack(frames)
    return np.stack(frames)


def _host(x: Any) -> Any:
    """numpy view of a tensor (CUDA tensors copied to the host); numpy passes through."""
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().numpy()
