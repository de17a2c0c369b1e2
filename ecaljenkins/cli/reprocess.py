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
    p.add_argument("--with-dependents", action="store_true",
                   help="also reset the tasks depending on this one for the same runs "
                        "(their fill/era groups included)")


def reprocess(args) -> None:
    runs = parse_runs(args.runs) if args.runs is not None else None
    ctrl = runctrl(args)
    summary = reset(ctrl, args.task, runs=runs, status=args.status,
                    with_dependents=args.with_dependents)
    print(f"campaign {ctrl.campaign!r}: {len(summary.reset)} run(s) of {args.task} reset to "
          f"new" + (f"; {len(summary.in_flight)} in flight left alone (queued or running)"
                    if summary.in_flight else ""))
    if summary.group_runs:
        print(f"{args.task} is built by {summary.group_by}: the whole {summary.group_by} "
              f"group(s) reset, {len(summary.group_runs)} more run(s): "
              f"{_runs(summary.group_runs)}")
    if summary.inactive:
        print(f"{len(summary.inactive)} run(s) left alone: their run types no longer have "
              f"{args.task} ({_runs(summary.inactive)})")
    for task, done in summary.dependents.items():
        print(f"dependent {task}: {len(done)} run(s) reset too")
    for task, left in summary.dependents_left.items():
        print(f"dependent {task} left alone on the old outputs for {len(left)} run(s) "
              f"({_runs(left)}): --with-dependents resets it too")


def _runs(runs: list[int], shown: int = 10) -> str:
    text = ",".join(map(str, runs[:shown]))
    return text + (f" and {len(runs) - shown} more" if len(runs) > shown else "")
