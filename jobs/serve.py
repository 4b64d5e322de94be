"""Ray job entry for `avs serve` (same arguments); on a cluster prefer `serve deploy serve.yaml`:

ray job submit --working-dir . -- python jobs/serve.py --preset dcase2021-t1b --host 0.0.0.0
"""

import sys

from avs.cli import job_main


def main(argv=None) -> int:
    return job_main("serve", argv)


if __name__ == "__main__":
    sys.exit(main())
