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


class NoFramesSampled(DecodeError):
    """The sampling rule gives no time for this video (shorter than half a segment, or 0 s in its header)."""

    kind = "no_frames_sampled"


# ------------------------------------------------------------------------------------------ infrastructure


class InfrastructureError(RuntimeError):
    """The machine failed, not the file: GPU decoder (NVDEC) missing, a CUDA error, GPU out of memory.

    Never a ``DecodeError``: recording it per file would make a broken GPU look like a dataset of corrupt
    videos. ``reason`` is one of ``INFRASTRUCTURE_REASONS``.
    """

    kind = "infrastructure"

    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(f"{reason}: {message}" + (f" [{path}]" if path else ""))
        self.reason = reason
        self.message = message  # what failed, without the file (the same for every file a broken GPU fails)
        self.path = path


# Substrings (lower case) of the messages of DALI 2.x, the CUDA runtime / driver and torch, by reason. The first
# reason whose pattern matches wins, so out-of-memory goes before the general CUDA errors.
INFRASTRUCTURE_REASONS: dict[str, tuple[str, ...]] = {
    "gpu_out_of_memory": (
        "out of memory",  # CUDA_ERROR_OUT_OF_MEMORY / cudaErrorMemoryAllocation text, torch.OutOfMemoryError
        "cudaerrormemoryallocation",
        "cuda_error_out_of_memory",
        "cudabadalloc",  # DALI's dali::CUDABadAlloc
        "can't allocate",  # DALI: "Can't allocate N bytes on device D."
    ),
    "nvdec_unavailable": (
        "nvcuvid",  # DALI: "dlopen libnvcuvid.so failed!. Please install NVIDIA GPU driver"
        "nvdec",
        "cuvid",
        "install nvidia gpu driver",
    ),
    "cuda_error": (
        "cuda runtime api error",
        "cuda driver api error",
        "cudaerror",
        "cuda_error",
        "cuda error",
        "cuda driver",  # "Failed to load CUDA driver!", "the CUDA driver is not installed"
        "cuda-capable",
        "nvidia driver",  # torch: "Found no NVIDIA driver on your system"
        "cuda is not available",
        "nvml",
        "fallen off the bus",
    ),
    # a decoder child process that cannot start (avs.decode.child): a plugin missing on this worker, an
    # overloaded machine; every file would fail the same way, so it is the machine's failure, not the files'
    "decoder_unavailable": (
        "decoder process did not start",
        "decoder process died while starting",
    ),
}


def infrastructure_reason(exc: BaseException) -> str | None:
    """The ``INFRASTRUCTURE_REASONS`` key an exception's type or message matches, or None (bad data)."""
    if isinstance(exc, InfrastructureError):
        return exc.reason
    if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (torch.cuda.OutOfMemoryError)
        return "gpu_out_of_memory"
    text = str(exc).lower()
    for reason, patterns in INFRASTRUCTURE_REASONS.items():
        if any(p in text for p in patterns):
            return reason
    return None
