"""Clip duration from the file header, without decoding.

soundfile (libsndfile) for the formats it reads (WAV, FLAC, OGG, MP3, ...), PyAV (FFmpeg) for the rest
(MP4, MKV, M4A, ...). An unreadable header gives ``None``, never an exception: the extraction stage opens
every file again and records the real error for the ones that fail.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm")
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS


@lru_cache(maxsize=1)
def _soundfile_formats() -> frozenset[str]:
    import soundfile as sf

    return frozenset(f.lower() for f in sf.available_formats())


def _duration_soundfile(path: str) -> float | None:
    import soundfile as sf

    info = sf.info(path)
    if info.samplerate <= 0 or info.frames < 0:
        return None
    return info.frames / info.samplerate  # seconds


def _duration_pyav(path: str) -> float | None:
    import av

    with av.open(path, metadata_errors="ignore") as container:
        if container.duration is not None and container.duration > 0:
            return container.duration / av.time_base  # av.time_base = 1_000_000 ticks per second
        durations_s = [
            float(s.duration * s.time_base)
            for s in container.streams
            if s.duration is not None and s.time_base is not None and s.duration > 0
        ]
        return max(durations_s) if durations_s else None


def probe_duration_s(path: str | os.PathLike) -> float | None:
    """Duration in seconds from the header of ``path``; ``None`` when it cannot be read."""
    path = str(path)
    ext = Path(path).suffix.lower().lstrip(".")
    if ext in _soundfile_formats():
        try:
            return _duration_soundfile(path)
        except Exception:  # noqa: BLE001 - unreadable by libsndfile: let FFmpeg try
            pass
    try:
        return _duration_pyav(path)
    except Exception:  # noqa: BLE001 - any open/parse failure means "unknown", reported later
        return None


def is_video_container(path: str | os.PathLike) -> bool:
    """Whether the extension names a video container (the clip's frames can come from this file)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS
