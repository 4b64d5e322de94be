"""A decoder plugin that misbehaves on purpose, for tests of crash / hang isolation.

Import this module as a pipeline plugin (``pipeline.plugins: [avs.testing.faulty]``) and set
``audio.backend: faulty``: files whose name contains ``crash`` kill the decoding process with SIGSEGV
(as a native decoder bug would), ``hang`` blocks forever, anything else decodes normally.
"""

from __future__ import annotations

import os
import signal
import time

from avs.decode.audio import AUDIO_DECODERS, read_auto, register_audio_decoder


def read_faulty(path: str):
    name = os.path.basename(path)
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in name:
        while True:
            time.sleep(3600)
    return read_auto(path)


if "faulty" not in AUDIO_DECODERS:
    register_audio_decoder("faulty")(read_faulty)
