"""``status`` and ``report``: where a campaign stands, in the terminal or as a web page."""

import os
import sys

from ..schema import JOB_STATUSES, STATUSES, Status
from .common import print_json, print_table, runctrl, subcommand

#: failures listed by ``status``; the rest are one ``runs --status failed`` away
LISTED_FAILURES = 20
BAR_WIDTH = 24
GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def register(sub) -> None:
    p = subcommand(sub, "status", status,
                   "progress of each task per run type, and the failures")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = subcommand(sub, "report", report,
                   "write a self-contained HTML report (progress, runs x tasks grid)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the HTML file to write (replaced atomically)")


def use_colour() -> bool:
    """Colour only for a person at a terminal (and not if NO_COLOR is set)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def bar(counts: dict, colour: bool) -> str:
    """``[####!!......] 4/12 33%``: done '#', failed '!', the rest '.'."""
    total = sum(counts.values())
    done, failed = counts.get(Status.DONE, 0), counts.get(Status.FAILED, 0)
    n_done = BAR_WIDTH * done // total if total else 0
    n_failed = min(BAR_WIDTH - n_done, -(-BAR_WIDTH * failed // total)) if total else 0
    done_part, failed_part = "#" * n_done, "!" * n_failed
    if colour:
        done_part = f"{GREEN}{done_part}{RESET}" if done_part else ""
        failed_part = f"{RED}{failed_part}{RESET}" if failed_part else ""
    percent = f"{100 * done / total:.0f}%" if total else "-"
    rest = "." * (BAR_WIDTH - n_done - n_failed)
    return f"[{done_part}{failed_part}{rest}] {done}/{total} {percent}"


def one_line(value, limit: int = 80) -> str:
    """Text from the database made safe for a terminal: one line, printable, bounded."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _task_table(tasks: dict, colour: bool) -> None:
    print_table(["task", *STATUSES, "total", "progress"],
                [[one_line(task), *(c.get(s, 0) for s in STATUSES), sum(c.values()),
                  bar(c, colour)] for task, c in tasks.items()])


def status(args) -> None:
    from ..status import campaign_status
    ctrl = runctrl(args)
    doc = campaign_status(ctrl)
    if args.json:
        print_json(doc)
        return
    colour = use_colour()
    state = "active" if doc["active"] else \
        "INACTIVE: no run type has an active task, nothing is scheduled"
    print(f"campaign {doc['campaign']!r} ({doc['kind']}) in database {ctrl.influx.db!r}: "
          f"{state}; {doc['runs']} run(s)")
    for name, rt in doc["rtypes"].items():
        filters = " AND ".join(rt["filters"]) or "(all runs)"
        print(f"\nrun type {name!r} ({filters}): {rt['runs']} run(s)")
        if rt["tasks"]:
            _task_table(rt["counts"], colour)
        else:
            print("no active task")
    if doc["inactive"]:
        print("\nruns kept, neither scheduled nor counted (no run type of theirs has the "
              "task any more):")
        _task_table(doc["inactive"], colour)
    if doc["jobs"]:
        print("\njobs of the tasks of many jobs, per (run, task):")
        columns = [*JOB_STATUSES, "resubmitted"]
        print_table(["task", "run", *columns],
                    [[task, run, *(cell.get(key, 0) for key in columns)]
                     for task, runs in doc["jobs"].items() for run, cell in runs.items()])
    failures = doc["failures"]
    if not failures:
        return
    print(f"\n{len(failures)} failure(s):")
    print_table(["run", "task", "attempt", "reason", "build"],
                [[f["run"], f["task"], "" if f["attempt"] is None else f["attempt"],
                  one_line(f["reason"] or "-"), one_line(f["url"] or f["log"] or "-", 200)]
                 for f in failures[:LISTED_FAILURES]])
    if len(failures) > LISTED_FAILURES:
        print(f"... and {len(failures) - LISTED_FAILURES} more: ecalrunctrl.py --db "
              f"{ctrl.influx.db} runs -c {ctrl.campaign} --status failed")


def report(args) -> None:
    from ..report import write_report
    ctrl = runctrl(args)
    path = write_report(ctrl, args.output)
    print(f"wrote the report of campaign {ctrl.campaign!r} to {str(path)!r}")
