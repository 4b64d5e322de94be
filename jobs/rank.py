"""Ray job entry for `avs rank` (same arguments):

ray job submit --working-dir . -- python jobs/rank.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("rank", argv)


if __name__ == "__main__":
    sys.exit(main())
