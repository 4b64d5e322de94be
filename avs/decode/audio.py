"""Audio decoding: WAV/FLAC/OGG through soundfile, audio tracks of containers (MP4, MKV, ...) through PyAV.

    audio, sample_rate_hz = read_audio(path)      # audio: (channels, samples) float32 in [-1, 1]

Decoders are registered by name (``AUDIO_DECODERS``) so a plugin module can add one; ``"auto"`` picks
soundfile for the formats libsndfile reads and PyAV for everything else.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from avs.decode.errors import CorruptMedia, DecodeError, EmptyFile, MissingFile, NoAudioTrack
from avs.registry import Registry

AUDIO_DECODERS = Registry("audio decoder")
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".w64", ".rf64", ".caf"})

Decoded = tuple[np.ndarray, int]  # ((channels, samples) float32, sample_rate_hz)


def register_audio_decoder(name: str) -> Callable:
    return AUDIO_DECODERS.register(name)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise MissingFile(f"file not found: {path}")
    if os.path.getsize(path) == 0:
        raise EmptyFile(f"file is empty (0 bytes): {path}")


@register_audio_decoder("soundfile")
def read_soundfile(path: str) -> Decoded:
    import soundfile as sf

    _check_file(path)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)  # (samples, channels)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptMedia(f"soundfile cannot decode {path}: {exc}") from exc
    if data.shape[0] == 0:
        raise EmptyFile(f"no audio samples in {path}")
    return np.ascontiguousarray(data.T), int(rate)


@register_audio_decoder("pyav")
def read_pyav(path: str) -> Decoded:
    import av

    _check_file(path)
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as exc:
        raise CorruptMedia(f"PyAV cannot open {path}: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise NoAudioTrack(f"no audio track in {path}")
        stream = container.streams.audio[0]
        chunks: list[np.ndarray] = []
        rate = stream.rate or stream.codec_context.sample_rate
        try:
            resampler = av.AudioResampler(format="fltp")  # planar float32, keep layout and rate
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())  # (channels, samples)
                    rate = out.sample_rate
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except (av.error.FFmpegError, ValueError) as exc:
            if not chunks:
                raise CorruptMedia(f"PyAV cannot decode the audio of {path}: {exc}") from exc
            # A truncated tail: keep what decoded (the clip is then checked for length downstream).
    if not chunks:
        raise EmptyFile(f"the audio track of {path} holds no samples")
    audio = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return np.ascontiguousarray(audio), int(rate)


@register_audio_decoder("auto")
def read_auto(path: str) -> Decoded:
    ext = os.path.splitext(path)[1].lower()
    return read_soundfile(path) if ext in SOUNDFILE_EXTENSIONS else read_pyav(path)


def read_audio(path: str, backend: str = "auto") -> Decoded:
    """Decode ``path`` with the named decoder; raises a ``DecodeError`` subclass on bad input."""
    audio, rate = AUDIO_DECODERS.get(backend).factory(path)
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise DecodeError(f"decoder {backend!r} returned no samples for {path}")
    if not np.isfinite(audio).all():
        raise CorruptMedia(f"decoded audio of {path} contains NaN or infinite samples")
    return audio, rate
