"""Ray job entry for `avs demo-data` (same arguments):

ray job submit --working-dir . -- python jobs/demo_data.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("demo-data", argv)


if __name__ == "__main__":
    sys.exit(main())
