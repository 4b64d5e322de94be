"""Ray job entry for `avs extract` (same arguments):

ray job submit --working-dir . -- python jobs/extract.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("extract", argv)


if __name__ == "__main__":
    sys.exit(main())
