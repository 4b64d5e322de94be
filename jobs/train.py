"""Ray job entry for `avs train` (same arguments):

ray job submit --working-dir . -- python jobs/train.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("train", argv)


if __name__ == "__main__":
    sys.exit(main())
