"""Media writers for tests and demo data: WAV/FLAC (soundfile), MP4 with video and/or AAC audio (PyAV),
and bad inputs (corrupt, truncated, empty files).

Audio arrays are float32 in [-1, 1], shaped (channels, samples) or (samples,) for mono.

What the bad-input makers give (checked by tests/test_data.py):
    write_corrupt    random bytes: soundfile and PyAV refuse to open it.
    write_empty      zero bytes: soundfile and PyAV refuse to open it.
    write_truncated  the first fraction of the bytes. A truncated WAV still opens and reads (libsndfile
                     reports only the frames present, so it is simply shorter); a truncated FLAC opens
                     (its header gives the full length) but reading fails ("lost sync"); a truncated MP4
                     written here has its index (moov atom) at the end, so it no longer opens.
    write_video(..., audio=None)     an MP4 with no audio track.
    write_video(..., video=False)    an MP4 (M4A) with no video track.
    write_video(..., vfr=True)       irregular frame timestamps (variable frame rate).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

_ENCODER_CACHE: dict[str, bool] = {}


def _as_channels_first(audio: np.ndarray) -> np.ndarray:
    """(samples,) or (channels, samples) -> (channels, samples) float32."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        return a[None, :]
    if a.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {a.shape}")
    if a.shape[0] > a.shape[1]:
        raise ValueError(f"audio must be (channels, samples); got shape {a.shape} (more channels than samples?)")
    return a


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate_hz: int, subtype: str | None = "PCM_16") -> Path:
    """Write ``audio`` (channels, samples) or (samples,) with soundfile; the format follows the extension.

    .wav / .flac / .ogg / ... (anything soundfile knows). ``subtype`` "PCM_16", "PCM_24", "FLOAT", ...;
    when the format does not support it (e.g. OGG), the format's default subtype is used.
    """
    path = Path(path)
    a = _as_channels_first(audio)
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise ValueError(f"{path}: soundfile cannot write {path.suffix!r} files")
    if subtype is not None and not sf.check_format(fmt, subtype):
        subtype = sf.default_subtype(fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(a, -1.0, 1.0).T, int(sample_rate_hz), subtype=subtype, format=fmt)
    return path


def can_encode(codec: str) -> bool:
    """Whether this PyAV build has an encoder named ``codec`` (e.g. "h264" -> libx264, "mpeg4", "aac")."""
    if codec not in _ENCODER_CACHE:
        import av

        try:
            av.codec.Codec(codec, "w")
            _ENCODER_CACHE[codec] = True
        except Exception:  # av.codec.codec.UnknownCodecError and friends
            _ENCODER_CACHE[codec] = False
    return _ENCODER_CACHE[codec]


def pick_video_codec(codec: str = "h264") -> str:
    """``codec`` if this PyAV build can encode it, else "mpeg4" (always in FFmpeg builds)."""
    if can_encode(codec):
        return codec
    if can_encode("mpeg4"):
        return "mpeg4"
    raise RuntimeError(f"this PyAV build can encode neither {codec!r} nor 'mpeg4'")


def pattern_frame(frame_index: int, width: int, height: int, color_seed: int = 0) -> np.ndarray:
    """A moving coloured pattern: (height, width, 3) uint8 RGB.

    Two colours chosen by ``color_seed`` (so a class can have its own colours) as diagonal stripes that
    move with ``frame_index``, plus a bright square travelling across the picture.
    """
    rng = np.random.default_rng([color_seed, 11])
    c0, c1 = rng.integers(30, 226, size=(2, 3)).astype(np.float32)  # (3,) RGB each
    stripe_period = 8 + int(rng.integers(0, 16))  # pixels
    y, x = np.mgrid[0:height, 0:width]  # (height, width)
    phase = 2 * np.pi * (x + y + 2 * frame_index) / stripe_period
    mix = (0.5 + 0.5 * np.sin(phase))[..., None]  # (height, width, 1) in [0, 1]
    img = c0 * mix + c1 * (1.0 - mix)  # (height, width, 3)
    side = max(2, min(width, height) // 4)
    x0 = (3 * frame_index) % max(1, width - side)
    y0 = (2 * frame_index) % max(1, height - side)
    img[y0 : y0 + side, x0 : x0 + side] = 255.0 - c0
    return img.astype(np.uint8)


def _vfr_times_s(seconds: float, fps: float, seed: int) -> list[float]:
    """Irregular frame times in [0, seconds): gaps between 0.4 and 2.0 nominal frame periods."""
    rng = np.random.default_rng([seed, 13])
    times, t = [], 0.0
    while t < seconds - 1e-9:
        times.append(t)
        t += float(rng.uniform(0.4, 2.0)) / fps
    return times


def write_video(
    path: str | os.PathLike,
    seconds: float,
    fps: float = 5.0,
    width: int = 96,
    height: int = 64,
    audio: np.ndarray | None = None,
    audio_rate_hz: int = 48_000,
    color_seed: int = 0,
    codec: str = "h264",
    *,
    vfr: bool = False,
    video: bool = True,
    audio_codec: str = "aac",
    audio_bit_rate: int = 128_000,
    seed: int = 0,
) -> Path:
    """Write an MP4 (or MOV/MKV by extension) with a moving-pattern video track and/or an audio track.

    - video: ``seconds`` long at ``fps`` frames per second, ``width`` x ``height`` pixels (even numbers,
      yuv420p), colours from ``color_seed``; ``codec`` "h264" (libx264) falls back to "mpeg4" when this
      PyAV build cannot encode it ("libvpx" / "libvpx-vp9" in .webm and "mjpeg" in .avi also work: the codecs
      DALI's CPU video decoder reads). ``seed`` shifts where the moving pattern starts and, with ``vfr=True``,
      draws the irregular frame timestamps.
      ``video=False`` writes an audio-only container.
    - audio: ``audio`` (channels, samples) or (samples,) float32 at ``audio_rate_hz``, encoded with
      ``audio_codec`` (AAC), as long as the array (``seconds`` sets the video's length only);
      ``audio=None`` writes a video-only container.
    Returns the path.
    """
    import av

    path = Path(path)
    if not video and audio is None:
        raise ValueError("write_video needs a video track, an audio track, or both")
    if video and (width % 2 or height % 2 or width <= 0 or height <= 0):
        raise ValueError(f"width and height must be positive even numbers (yuv420p), got {width}x{height}")
    if video and fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    a = None if audio is None else _as_channels_first(audio)
    if a is not None and a.shape[0] > 2:
        raise ValueError(f"audio track must be mono or stereo, got {a.shape[0]} channels")
    path.parent.mkdir(parents=True, exist_ok=True)

    with av.open(str(path), mode="w") as container:
        vstream = astream = None
        if video:
            vcodec = pick_video_codec(codec)
            rate = Fraction(fps).limit_denominator(1001)
            vstream = container.add_stream(vcodec, rate=rate)
            # FFmpeg's MJPEG encoder takes full-range YUV only
            vstream.width, vstream.height = width, height
            vstream.pix_fmt = "yuvj420p" if vcodec == "mjpeg" else "yuv420p"
            if vcodec in ("h264", "libx264"):
                vstream.options = {"preset": "veryfast", "crf": "28"}
            if vfr:  # millisecond timestamps so frames can fall anywhere
                vstream.codec_context.time_base = Fraction(1, 1000)
        if a is not None:
            astream = container.add_stream(audio_codec, rate=int(audio_rate_hz))
            astream.codec_context.layout = "stereo" if a.shape[0] == 2 else "mono"
            astream.codec_context.format = "fltp"
            astream.codec_context.bit_rate = audio_bit_rate
            if audio_codec == "aac":  # FFmpeg's native encoder; "fast" coder is ~3x quicker than "twoloop"
                astream.options = {"aac_coder": "fast"}

        if vstream is not None:
            if vfr:
                times_s = _vfr_times_s(seconds, fps, seed)
                pts_list = [int(round(t * 1000)) for t in times_s]
            else:
                pts_list = list(range(int(round(seconds * fps))))
            start_frame = int(np.random.default_rng([seed, 19]).integers(0, 1000))  # clips of one class differ
            for i, pts in enumerate(pts_list):
                img = pattern_frame(start_frame + i, width, height, color_seed)  # (height, width, 3) uint8
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = pts
                if vfr:
                    frame.time_base = Fraction(1, 1000)
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))

        if astream is not None:
            layout = "stereo" if a.shape[0] == 2 else "mono"
            frame_size = astream.codec_context.frame_size or 1024  # samples per encoded frame
            pcm = np.clip(a, -1.0, 1.0)
            for start in range(0, pcm.shape[1], frame_size):
                chunk = pcm[:, start : start + frame_size]
                if chunk.shape[1] < frame_size:  # the encoder wants full frames: pad the last with zeros
                    chunk = np.pad(chunk, ((0, 0), (0, frame_size - chunk.shape[1])))
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=layout)
                frame.sample_rate = int(audio_rate_hz)
                frame.pts = start
                frame.time_base = Fraction(1, int(audio_rate_hz))
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))
    return path


def write_corrupt(path: str | os.PathLike, n_bytes: int = 4096, seed: int = 0) -> Path:
    """``n_bytes`` random bytes under any name (e.g. ``bad.wav``, ``bad.mp4``): opens with neither reader."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng([seed, 17]).integers(0, 256, size=n_bytes, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    return path


def write_truncated(src: str | os.PathLike, dst: str | os.PathLike, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` (0..1) of ``src``'s bytes to ``dst``."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def write_empty(path: str | os.PathLike) -> Path:
    """A zero-byte file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path
