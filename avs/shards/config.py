"""Frozen configs of the extraction job (``avs extract``)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from avs.config import config_hash, to_dict


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    sample_rate_hz: int = 48_000  # every clip is resampled to this rate (torchaudio sinc resampling)
    channels: Literal["mono", "stereo"] = "mono"  # mono: mean downmix; stereo: 2 channels, each on its own
    segment_seconds: float | None = 1.0  # None: the whole clip is one segment (needs clip_seconds)
    hop_seconds: float | None = None  # between segment starts; None = segment_seconds (no overlap)
    clip_seconds: float | None = None  # pad (zeros) / crop every clip to this length first; None = as decoded
    min_last_fraction: float = 0.5  # a trailing partial segment this long (of a segment) is zero-padded, else dropped
    backend: str = "auto"  # audio decoder: auto | soundfile | pyav | a plugin's name

    def segment_samples(self) -> int:
        seconds = self.segment_seconds if self.segment_seconds is not None else self.clip_seconds
        if seconds is None:
            raise ValueError("audio.segment_seconds=None needs audio.clip_seconds")
        return int(round(seconds * self.sample_rate_hz))

    def n_channels(self) -> int:
        return 1 if self.channels == "mono" else 2


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """Which frames of each clip's video the video feature sets see (one decode shared by all of them)."""

    sampling: Literal["even", "fps", "timestamps", "segments"] = "even"
    n_frames: int = 12  # "even": frames per clip at the centres of equal intervals (paper 000 §2.2: 12)
    fps: float = 10.0  # "fps": frames per second (paper 002: 10 fps)
    timestamps_s: tuple[float, ...] = ()  # "timestamps": these times (seconds)
    # "segments": one frame at the centre of each audio segment (audio.segment_seconds / hop_seconds),
    # numbered like the audio rows (paper 001: the frame in the middle of each sound window)
    short_side: int | None = 448  # decode-time resize: shorter side in pixels, aspect kept (None: full size)
    backend: str = "auto"  # auto (decord, PyAV fallback) | decord | pyav | a plugin's name

    def rule(self, audio: AudioConfig) -> Any:
        """The sampling rule the frame reader resolves against each video's duration."""
        from avs.decode.segments import SegmentCentres
        from avs.decode.video import FrameSampling

        if self.sampling == "segments":
            if audio.segment_seconds is None:
                raise ValueError("video.sampling='segments' needs audio.segment_seconds")
            return SegmentCentres(audio.segment_seconds, audio.hop_seconds, audio.min_last_fraction)
        return FrameSampling(self.sampling, self.n_frames, self.fps, tuple(self.timestamps_s))


@dataclasses.dataclass(frozen=True)
class FeatureSetConfig:
    name: str  # output folder OUT/<name>/ and the feature column's name
    extractor: str  # registry name: logmel, mfcc, texture, ...
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # the extractor's config fields


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    batch_clips: int = 4  # clips per decode task (and per feature batch: blocks hold whole clips)
    # decode actors of GPU runs and of video on CPU; None = CPUs - GPUs (GPU) or a quarter of the CPUs.
    # Audio on CPU decodes inside its feature actors (one per CPU), so there it only sets their number.
    decoders: int | None = None
    feature_workers: int | None = None  # feature actors; None = one per GPU; on CPU: one per CPU (audio)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when the cluster has GPUs
    decode_timeout_s: float = 120.0  # a decoder still busy after this long on one file is killed
    # A part is committed at rows_per_shard rows or part_megabytes of any feature set, whichever comes
    # first; parts end on clip boundaries (a clip is never split). 200 MB: few enough parts for 10k+ clip
    # datasets (TAU-AV log-mel: ~60), large enough for object storage, small enough to read one at a time.
    rows_per_shard: int = 100_000
    part_megabytes: float = 200.0
    compression: str = (
        "lz4"  # Parquet codec; float features barely compress, lz4 costs least (zstd: -15% size, 3x time)
    )
    max_failure_fraction: float = 0.1  # exit status 1 when more than this fraction of clips failed
    num_cpus: int | None = None  # CPUs of the embedded local Ray (None: all); ignored on a cluster
    plugins: tuple[str, ...] = ()  # modules imported by decode workers (to register decoders)
    progress_interval_s: float = 5.0  # seconds between progress lines
    retry_errors: bool = True  # a re-run tries clips that failed before again
    decode_memory_mb: int | None = None  # memory each decode actor declares to Ray; None: avs's estimate
    feature_memory_mb: int | None = None  # memory each feature actor declares; None: estimate (per model)
    lease_stale_s: float = 60.0  # another run's lease on OUT with no heartbeat for this long is taken over
    # A GPU run (device cuda, or auto on a cluster with GPUs) first asks Ray for its GPU actors' resources and
    # stops with a message naming what is missing when they cannot be placed within this long (no GPU in the
    # cluster and none started by the autoscaler, or all busy); None: wait as long as Ray does (forever).
    gpu_wait_s: float | None = 600.0
    # The GPU video decoder (DALI) failing for a reason of the machine -- NVDEC / libnvcuvid missing, a CUDA
    # error, GPU memory -- is never recorded as a bad file: true decodes such files on CPU and counts them in
    # run.json (counts.gpu_fallbacks, branches.video.gpu_fallback_reasons); false stops the run instead.
    # True also decodes again on CPU a file DALI fails on for a reason of the file (a codec or profile NVDEC
    # lacks), as a CPU run would; false records DALI's error for it.
    gpu_decode_fallback: bool = True


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    input: str  # dataset root, media folder or manifest file (CSV / TSV / Parquet)
    out: str  # output folder (local path or a pyarrow filesystem URI)
    dataset: str = "auto"  # auto | tau | desed | folder | manifest
    preset: str | None = None  # the preset the settings started from (recorded, not re-applied)
    audio: AudioConfig = AudioConfig()
    video: VideoConfig = VideoConfig()
    features: tuple[FeatureSetConfig, ...] = ()
    pipeline: PipelineConfig = PipelineConfig()

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("no feature sets configured: pass --preset or a config with 'features'")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature set names must be unique, got {names}")


def select_features(cfg: ExtractConfig, names: str | list[str] | None) -> ExtractConfig:
    """Keep only the feature sets named (``"logmel,clip_vitb32"`` or a list), in the config's order;
    an unknown name is a ValueError listing the sets there are."""
    if not names:
        return cfg
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    wanted = [n for n in wanted if n]
    have = [f.name for f in cfg.features]
    unknown = [n for n in wanted if n not in have]
    if unknown:
        where = f"preset {cfg.preset!r}" if cfg.preset else "the config"
        raise ValueError(f"unknown feature set(s) {', '.join(unknown)}; {where} has: {', '.join(have)}")
    return dataclasses.replace(cfg, features=tuple(f for f in cfg.features if f.name in wanted))


def feature_set_identity(cfg: ExtractConfig, feature: FeatureSetConfig) -> dict[str, Any]:
    """Everything that determines a feature set's numbers (the resolved extractor config included)."""
    from avs.features.base import extractor_config, extractor_modality

    modality = extractor_modality(feature.extractor)
    if modality == "audio":
        source = {k: v for k, v in to_dict(cfg.audio).items() if k != "backend"}
    else:
        source = {k: v for k, v in to_dict(cfg.video).items() if k != "backend"}
        if cfg.video.sampling == "segments":
            source["audio_segments"] = to_dict(cfg.audio)
    return {
        "name": feature.name,
        "extractor": feature.extractor,
        "modality": modality,
        "params": to_dict(extractor_config(feature.extractor, feature.params)),
        modality: source,
    }


def feature_set_hash(cfg: ExtractConfig, feature: FeatureSetConfig) -> str:
    return config_hash(feature_set_identity(cfg, feature))


def with_random_clip_weights(cfg: Any) -> Any:
    """``--clip-random-weights``: every CLIP feature set of ``cfg`` uses (seeded) random weights."""
    features = []
    for f in cfg.features:
        params = dict(f.params)
        if f.extractor == "clip":
            params["random_weights"] = True
        elif f.extractor == "clip-zeroshot":
            params["encoder"] = {**dict(params.get("encoder") or {}), "random_weights": True}
        features.append(dataclasses.replace(f, params=params))
    return dataclasses.replace(cfg, features=tuple(features))
