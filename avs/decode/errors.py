"""Decode errors: each carries a short ``kind`` that ends up in the errors table's ``error_type``."""

from __future__ import annotations


class DecodeError(Exception):
    kind = "decode_error"


class EmptyFile(DecodeError):
    kind = "empty_file"


class MissingFile(DecodeError):
    kind = "missing_file"


class NoAudioTrack(DecodeError):
    kind = "no_audio_track"


class NoVideoTrack(DecodeError):
    kind = "no_video_track"


class CorruptMedia(DecodeError):
    kind = "corrupt_media"


class TooShort(DecodeError):
    kind = "too_short"


class DecoderCrashed(DecodeError):
    kind = "decoder_crashed"


class DecodeTimeout(DecodeError):
    kind = "decode_timeout"


def error_kind(exc: BaseException) -> str:
    """The ``error_type`` recorded for an exception (our kinds, else the exception class name)."""
    return getattr(exc, "kind", None) or type(exc).__name__
