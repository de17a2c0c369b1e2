"""``ecalrunctrl.py``: create and steer campaigns (campaign management)."""

import sys

from . import campaign, cancel, index, jobs, pause, reprocess, rtype, runs, status
from .common import make_parser, run_main

DESCRIPTION = """Manage ECAL automation campaigns: create them, define run types and
their active tasks, inject runs, follow their status. Credentials come from
ECAL_INFLUXDB_USER/ECAL_INFLUXDB_PASSWORD (or ECAL_INFLUXDB_TOKEN); the server
from ECAL_INFLUXDB_URL."""

GROUPS = [campaign, rtype, runs, status, reprocess, pause, cancel, jobs, index]


def main(argv=None) -> int:
    return run_main(make_parser("ecalrunctrl.py", DESCRIPTION, GROUPS), argv)


if __name__ == "__main__":
    sys.exit(main())
