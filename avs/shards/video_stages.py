"""Ray Data stages of the video branch: one decode per video, shared by every video feature set.

CPU (and GPU without DALI):
    input blocks {clip_id, video_path, row, block}
      -> VideoDecodeStage  -> frame rows {clip_id, row, block, segment, frame_index, timestamp_s, start_s, end_s,
                                          n_segments, frame (H, W, 3) uint8, error_*}   (guarded child process)
      -> VideoFeatureStage -> frames (JPEG), CLIP embeddings, zero-shot probabilities; whole clips sent
                              to a part writer; one status row per clip (as the audio branch)
GPU with DALI (``video.backend: dali``, or ``auto`` on a GPU cluster with the ``gpu`` extra):
    input blocks -> DaliVideoStage: decode on the GPU (NVDEC) and compute the features there, frames never
                    leave the GPU except for the JPEGs of the frames set. A file the GPU decoder fails on for
                    a reason of the machine (NVDEC missing, a CUDA error, GPU memory) is decoded on CPU
                    instead, its row's ``decode_fallback`` saying why (counted in run.json); with
                    ``pipeline.gpu_decode_fallback: false`` the run stops with that error.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from avs.decode.errors import InfrastructureError, NoFramesSampled
from avs.shards.config import AudioConfig, VideoConfig
from avs.shards.stages import ERROR_COLUMNS, FALLBACK_COLUMN, FeatureWorker, error_fields, finish_batch

VIDEO_KEYS = ("frame_index", "timestamp_s")
NO_VIDEO = {
    "error_stage": "decode",
    "error_type": "no_video",
    "error_message": "the manifest has no video_path for this clip",
}


def _has_path(path: Any) -> bool:
    return path is not None and str(path) not in ("", "None", "nan")


def no_frames(path: str) -> NoFramesSampled:
    """The error of a video the sampling rule gives no time for (both decode paths record this row)."""
    return NoFramesSampled(
        f"no frames at the sampled times of {path}: the video is shorter than the sampling needs "
        "(video.sampling 'segments': half an audio segment) or its header gives a duration of 0 s"
    )


class DecodedClip(NamedTuple):
    clip_id: str
    row: int
    block: int
    got: Any  # FrameBatch with at least one frame, or None when the clip failed
    error: dict[str, str]  # error fields ({} when decoded)
    seconds: float  # decode seconds of the clip
    fallback: str = ""  # why the clip was decoded on CPU instead of the GPU ("" when it was not)


def frame_rows(clips: Iterable[DecodedClip | tuple], half_window: float) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Rows of a block from decoded clips (``DecodedClip``): one row per frame (one error row for a clip that
    failed, or that has no frame) and the frames in row order."""
    cols: dict[str, list] = defaultdict(list)
    frames: list[Any] = []
    for clip in clips:
        clip_id, row, block, got, error, seconds, fallback = DecodedClip(*clip)
        if got is not None and len(got.frames) == 0:
            got, error = None, error_fields("decode", no_frames(str(clip_id)))
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
        cols[FALLBACK_COLUMN] += [fallback] * n
    text = ("clip_id", *ERROR_COLUMNS, FALLBACK_COLUMN)
    out = {k: np.asarray(v, dtype=object if k in text else None) for k, v in cols.items()}
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

    def read_clip(self, path: Any) -> tuple[Any, dict[str, str]]:
        if not _has_path(path):
            return None, NO_VIDEO
        try:
            got = self.reader.read_frames(str(path), self.rule)
            if len(got.frames) == 0:
                raise no_frames(str(path))
            return got, {}
        except InfrastructureError:  # the decoder process cannot start here: the run stops, no file is blamed
            raise
        except Exception as exc:
            return None, error_fields("decode", exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        clips = []
        for clip_id, path, row, block in zip(
            batch["clip_id"], batch["video_path"], batch["row"], batch["block"], strict=True
        ):
            t0 = time.perf_counter()
            got, error = self.read_clip(path)
            clips.append(DecodedClip(clip_id, row, block, got, error, time.perf_counter() - t0))
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


class DaliDecoder:
    """The decode half of ``DaliVideoStage``: a block's clips -> frame rows and their frames (torch tensors on
    ``device``), decoded by DALI (``decoder="gpu"``: NVDEC; "cpu": DALI's CPU decoder, for tests).

    Each file is first indexed with PyAV on the CPU (header and packets, no decoding), which also turns the
    sampling rule into frame indices exactly as the CPU path does; the other files of a chunk are kept when one
    fails. A file DALI fails on for a reason of the file (a codec or profile NVDEC lacks, say) is decoded again
    by the CPU path, as a CPU run would have (``decode_fallback`` says so; ``gpu_fallback=False``: an error
    row); only a file both fail on gets an error row. A file DALI fails on for a reason of the machine
    (``InfrastructureError``: DALI or NVDEC missing, a CUDA error, GPU memory) is decoded on CPU with the CPU
    path's guarded reader and its rows say why in ``decode_fallback``; after a failure other than GPU memory
    every later file goes to the CPU directly (the GPU decoder stays broken). With ``gpu_fallback=False`` the
    first such failure stops the run instead. Still images (LADI photos) are read on CPU as in the CPU path.
    """

    def __init__(
        self,
        video: VideoConfig,
        audio: AudioConfig,
        device: str = "cuda",
        *,
        timeout_s: float = 120.0,
        plugins: tuple[str, ...] = (),
        gpu_fallback: bool = True,
        decoder: str = "gpu",
    ) -> None:
        self.rule = video.rule(audio)
        self.short_side = video.short_side
        self.half_window = _half_window(video, audio)
        self.device = device
        self.timeout_s = timeout_s
        self.plugins = plugins
        self.gpu_fallback = gpu_fallback
        self.decoder = decoder
        self.broken: InfrastructureError | None = None  # the GPU decoder's lasting failure, once seen
        self._reader: Any = None  # the CPU path's guarded reader, started on the first CPU decode

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[Any]]:
        from avs.decode.image import is_image_path
        from avs.decode.video_guard import _resolve_request

        t0 = time.perf_counter()
        n = len(batch["clip_id"])
        results: list[tuple[Any, dict[str, str], str]] = [(None, NO_VIDEO, "")] * n  # (frames, error, fallback)
        requests: list[tuple[int, np.ndarray, Any]] = []  # (row in block, times (n,) s, (height, width) or None)
        for i, path in enumerate(batch["video_path"]):
            if not _has_path(path):
                continue
            if is_image_path(str(path)):
                results[i] = self._cpu(str(path), "")
                continue
            try:
                times, size = _resolve_request(str(path), self.rule, self.short_side)
                requests.append((i, times, size))
            except Exception as exc:
                results[i] = (None, error_fields("decode", exc), "")
        decoded = self._dali([(str(batch["video_path"][i]), t, size) for i, t, size in requests])
        for (i, _, _), got in zip(requests, decoded, strict=True):
            path = str(batch["video_path"][i])
            if isinstance(got, InfrastructureError):
                results[i] = self._fall_back(path, got)
            elif isinstance(got, Exception):
                results[i] = self._retry_on_cpu(path, got)
            elif len(got.frames) == 0:
                results[i] = (None, error_fields("decode", no_frames(path)), "")
            else:
                results[i] = (got, {}, "")
        seconds = (time.perf_counter() - t0) / max(1, n)
        clips = [
            DecodedClip(batch["clip_id"][i], batch["row"][i], batch["block"][i], got, err, seconds, why)
            for i, (got, err, why) in enumerate(results)
        ]
        return frame_rows(clips, self.half_window)

    def _dali(self, requests: list[tuple[str, np.ndarray, Any]]) -> list[Any]:
        """DALI's result for each (path, times, size): a FrameBatch, a DecodeError or an InfrastructureError."""
        from avs.decode.dali import read_frames_dali

        if not requests:
            return []
        if self.broken is not None:
            return [self.broken] * len(requests)
        paths, times, sizes = zip(*requests, strict=True)
        try:
            got = read_frames_dali(
                list(paths),
                list(times),
                None if sizes[0] is None else list(sizes),  # all sized (short_side) or none
                decoder=self.decoder,
                output="torch",
                on_error="return",
                device_id=_device_index(self.device),
            )
        except InfrastructureError as exc:  # DALI missing, or its pipeline cannot be built here
            got = [exc] * len(requests)
        for g in got:
            if isinstance(g, InfrastructureError) and g.reason != "gpu_out_of_memory":
                self.broken = g
        return got

    def _fall_back(self, path: str, failure: InfrastructureError) -> tuple[Any, dict[str, str], str]:
        if not self.gpu_fallback:
            raise InfrastructureError(
                failure.reason,
                f"the GPU video decoder failed for a reason of the machine, not of the file ({failure.message}); "
                "pipeline.gpu_decode_fallback is off, so the run stops. Fix the GPU worker (NVIDIA driver with "
                "libnvcuvid for NVDEC, free GPU memory) or set pipeline.gpu_decode_fallback=true to decode such "
                "files on CPU",
                path,
            ) from failure
        return self._cpu(path, f"{failure.reason}: {failure.message}"[:500])

    def _retry_on_cpu(self, path: str, failure: Exception) -> tuple[Any, dict[str, str], str]:
        """A file DALI could not read, though PyAV indexed it (a codec or profile NVDEC lacks, frames past DALI's
        own count, or real damage): decoded by the CPU path, as a CPU run would, its rows saying why in
        ``decode_fallback`` (one reason per error kind, so run.json's counts stay small). Failing there too, its
        error row is the CPU decoder's, with DALI's message appended (not counted as a fallback).
        ``gpu_fallback=False``: DALI's error row."""
        fields = error_fields("decode", failure)
        if not self.gpu_fallback:
            return None, fields, ""
        kind = fields["error_type"]
        why = f"gpu_decode_error ({kind}): the GPU decoder could not read the file"
        got, err, why = self._cpu(path, why)
        if err:  # a bad file, not a GPU fallback (run.json counts only clips the CPU decoded)
            both = f"{err['error_message']} (the GPU decoder failed too: {fields['error_message']})"
            return None, {**err, "error_message": both[:2000]}, ""
        return got, err, why

    def _cpu(self, path: str, fallback: str) -> tuple[Any, dict[str, str], str]:
        """Decode one file with the CPU path's guarded reader (frames moved to ``device``)."""
        import torch

        if self._reader is None:
            from avs.decode.video_guard import GuardedFrameReader

            self._reader = GuardedFrameReader(
                timeout_s=self.timeout_s, plugins=self.plugins, backend="auto", size=self.short_side, threads=1
            )
        try:
            got = self._reader.read_frames(path, self.rule)
            if len(got.frames) == 0:
                raise no_frames(path)
        except InfrastructureError:  # the CPU decoder process cannot start either: the run stops
            raise
        except Exception as exc:
            return None, error_fields("decode", exc), fallback
        return got._replace(frames=torch.from_numpy(got.frames).to(self.device)), {}, fallback

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class DaliVideoStage(VideoFeatureStage):
    """GPU path: decode the sampled frames with DALI (NVDEC) on the GPU that then runs CLIP (``DaliDecoder``).

    Unlike the CPU path, DALI runs inside this worker: a native crash there costs the block (Ray retries it),
    not only the file.
    """

    def __init__(
        self,
        video: VideoConfig,
        audio: AudioConfig,
        timeout_s: float = 120.0,
        plugins: tuple[str, ...] = (),
        gpu_fallback: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decode = DaliDecoder(
            video, audio, self.device, timeout_s=timeout_s, plugins=plugins, gpu_fallback=gpu_fallback
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out, frames = self.decode(batch)
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
