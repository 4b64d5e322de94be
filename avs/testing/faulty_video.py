"""A video decoder plugin that misbehaves on purpose, for tests of crash / hang isolation.

Import this module as a plugin (``GuardedFrameReader(plugins=("avs.testing.faulty_video",),
backend="faulty")``): files whose name contains ``crash`` kill the decoding process with SIGSEGV (as a
native decoder bug would), ``hang`` blocks forever, anything else decodes normally with "auto".
"""

from __future__ import annotations

import os
import signal
import time

from avs.decode.video import VIDEO_DECODERS, read_frames_auto, register_video_decoder


def read_frames_faulty(path: str, times_s, size=None, threads: int = 0):
    name = os.path.basename(path)
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in name:
        while True:
            time.sleep(3600)
    return read_frames_auto(path, times_s, size, threads)


if "faulty" not in VIDEO_DECODERS:
    register_video_decoder("faulty")(read_frames_faulty)
