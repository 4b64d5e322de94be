"""Ray job entry for `avs evaluate` (same arguments):

ray job submit --working-dir . -- python jobs/evaluate.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())
