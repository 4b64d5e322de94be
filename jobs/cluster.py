"""Ray job entry for `avs cluster` (same arguments):

ray job submit --working-dir . -- python jobs/cluster.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("cluster", argv)


if __name__ == "__main__":
    sys.exit(main())
