"""Ray job entry for `avs ensemble` (same arguments):

ray job submit --working-dir . -- python jobs/ensemble.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("ensemble", argv)


if __name__ == "__main__":
    sys.exit(main())
