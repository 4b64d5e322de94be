"""A decoder plugin that takes ``AVS_TEST_IMPORT_DELAY_S`` seconds (default 2) to import, as heavy decoder
libraries do on a loaded machine: tests that starting a decoder process is not charged to a file's timeout."""

from __future__ import annotations

import os
import time

time.sleep(float(os.environ.get("AVS_TEST_IMPORT_DELAY_S", "2")))
