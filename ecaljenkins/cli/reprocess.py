"""``reprocess``: send (run, task) pairs back to ``new`` so the scheduler runs them again."""

from ..jobctrl import reprocess as reset
from ..registry import parse_runs
from ..schema import Status
from .common import runctrl, subcommand


def register(sub) -> None:
    p = subcommand(sub, "reprocess", reprocess,
                   "reset a task to new (attempts 0) for some runs, the failed ones, or all")
    p.add_argument("--task", "-t", required=True, help="the task to run again")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--runs", metavar="RUNS", help="comma separated runs")
    which.add_argument("--status", choices=(str(Status.FAILED), str(Status.DONE)),
                       help="every run where the task has this status")
    which.add_argument("--all", action="store_true", help="every run of the task")


def reprocess(args) -> None:
    runs = parse_runs(args.runs) if args.runs is not None else None
    ctrl = runctrl(args)
    summary = reset(ctrl, args.task, runs=runs, status=args.status)
    print(f"campaign {ctrl.campaign!r}: {len(summary.reset)} run(s) of {args.task} reset to "
          f"new" + (f"; {len(summary.in_flight)} in flight left alone (queued or running)"
                    if summary.in_flight else ""))
