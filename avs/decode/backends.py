"""Decoder names checked before any work: a misspelt ``audio.backend`` / ``video.backend`` (or a plugin that does not
register what it should) would otherwise fail every file in its decoder process, one error row each, and look
like a dataset of bad files.

    check_backends("soundfile", "auto", plugins=("my_pkg.decoders",))   # ValueError naming what is registered
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

SPECIAL_VIDEO = ("dali",)  # not in the registry: the GPU path (avs.decode.dali), chosen by the pipeline


def check_backends(
    audio: str | None, video: str | None, plugins: Sequence[str] = (), *, gpu_video: bool = True
) -> None:
    """Import ``plugins`` here (as the decoder processes do) and check that ``audio`` / ``video`` (None: not used)
    name registered decoders; ``gpu_video=False``: a caller without the GPU path refuses "dali" too."""
    from avs.decode.audio import AUDIO_DECODERS
    from avs.decode.video import VIDEO_DECODERS

    for name in plugins:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or whatever the plugin raises while it loads
            raise ValueError(f"decoder plugin {name!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    special = SPECIAL_VIDEO if gpu_video else ()
    for registry, name, setting in ((AUDIO_DECODERS, audio, "audio"), (VIDEO_DECODERS, video, "video")):
        if name is None or (setting == "video" and name in special):
            continue
        if name not in registry.names():
            known = ", ".join([*registry.names(), *(special if setting == "video" else ())])
            raise ValueError(
                f"{setting} decoder {name!r} is not registered (known: {known}); a plugin's decoder needs its module "
                "in the plugins setting"
            )
