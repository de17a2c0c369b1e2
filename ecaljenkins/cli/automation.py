"""``ecalautomation.py``: the automation side (scheduler and builds)."""

import sys

from . import jobctrl, schedule
from .common import make_parser, run_main

DESCRIPTION = """Run the ECAL automation: schedule the builds of ready (run, task)
pairs on Jenkins (or locally), and report from inside a build. Credentials come
from ECAL_INFLUXDB_USER/ECAL_INFLUXDB_PASSWORD (or ECAL_INFLUXDB_TOKEN) and
JENKINS_URL/JENKINS_USER/JENKINS_API_TOKEN."""

GROUPS = [schedule, jobctrl]


def main(argv=None) -> int:
    return run_main(make_parser("ecalautomation.py", DESCRIPTION, GROUPS), argv)


if __name__ == "__main__":
    sys.exit(main())
