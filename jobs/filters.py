"""Ray job entry for `avs filters` (same arguments):

ray job submit --working-dir . -- python jobs/filters.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("filters", argv)


if __name__ == "__main__":
    sys.exit(main())
