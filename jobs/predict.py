"""Ray job entry for `avs predict` (same arguments):

ray job submit --working-dir . -- python jobs/predict.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("predict", argv)


if __name__ == "__main__":
    sys.exit(main())
