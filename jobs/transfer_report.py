"""Ray job entry for `avs transfer-report` (same arguments):

ray job submit --working-dir . -- python jobs/transfer_report.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("transfer-report", argv)


if __name__ == "__main__":
    sys.exit(main())
