"""Ray job entry for `avs manifest` (same arguments):

ray job submit --working-dir . -- python jobs/manifest.py --help
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("manifest", argv)


if __name__ == "__main__":
    sys.exit(main())
