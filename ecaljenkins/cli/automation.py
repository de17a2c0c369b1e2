"""``ecalautomation.py``: the automation side (scheduler and builds).

``jobctrl`` and ``run`` start for every build, and with HTCondor for every job:
a command of the build side imports its own verb group only, never the
scheduler side (the scheduler, the executors, python-jenkins), and its verb
group imports the library only once the command runs, so ``--help`` and the
start of every build stay cheap (docs/performance.md, "Start-up").
"""

import importlib
import sys

from .common import make_parser, run_main

DESCRIPTION = """Run the ECAL automation: schedule the builds of ready (run, task)
pairs on Jenkins (or locally), and report from inside a build. Credentials come
from ECAL_INFLUXDB_USER/ECAL_INFLUXDB_PASSWORD (or ECAL_INFLUXDB_TOKEN) and
JENKINS_URL/JENKINS_USER/JENKINS_API_TOKEN."""

#: sub-command -> the module of its verb group (tests/test_jobctrl.py checks that
#: each group registers exactly these)
COMMANDS = {"schedule": "schedule", "jobctrl": "jobctrl", "run": "jobctrl"}
#: the main parser's own options that take a value
VALUE_OPTIONS = ("--db", "-c", "--campaign")


def groups(command: str | None = None) -> list:
    """The verb groups to register: ``command``'s alone when it is one, else all."""
    names = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


def command_of(argv: list[str]) -> str | None:
    """The sub-command word of a command line (None when there is none to see)."""
    takes_value = False
    for arg in argv:
        if takes_value:
            takes_value = False
        elif arg == "--":
            return None
        elif arg.startswith("-"):
            # "--db X", "-c X", and their abbreviations ("--camp X"); not "--db=X", "-cX"
            takes_value = arg in VALUE_OPTIONS or (
                arg.startswith("--") and len(arg) > 2 and "=" not in arg
                and any(option.startswith(arg) for option in VALUE_OPTIONS))
        else:
            return arg
    return None


def __getattr__(name):
    """``GROUPS``, every verb group, as ``ecalrunctrl.py`` has them (imported on use)."""
    if name == "GROUPS":
        return groups()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_main(make_parser("ecalautomation.py", DESCRIPTION, groups(command_of(argv))),
                    argv)


if __name__ == "__main__":
    sys.exit(main())
