"""``cancel``: stop a campaign's builds in flight (Jenkins, local, HTCondor) and the
HTCondor jobs of its tasks of many jobs, and set their rows."""

import sys

from ..executors import EXECUTORS
from ..schema import Status
from .common import runctrl, subcommand, warn


def register(sub) -> None:
    p = subcommand(sub, "cancel", cancel,
                   "stop the campaign's queued and running builds (of one task with --task); "
                   "their runs become failed (not retried) or, with --to new, new again")
    p.add_argument("--task", "-t", help="only the builds of this task")
    p.add_argument("--to", choices=(str(Status.FAILED), str(Status.NEW)),
                   default=str(Status.FAILED),
                   help="status of the cancelled runs: failed (default; 'reprocess' runs them "
                        "again) or new (the next cycle builds them again)")
    p.add_argument("--executor", choices=EXECUTORS, default="jenkins",
                   help="where the builds run: Jenkins (default), here (local builds) or "
                        "HTCondor; the HTCondor jobs of tasks of many jobs are removed whatever "
                        "the executor (from the schedd of CONDOR_CONFIG)")


def cancel(args) -> int:
    from ..cancel import cancel as cancel_builds
    from ..condor import CondorPool
    from ..scheduler import make_executor
    ctrl = runctrl(args)
    summary = cancel_builds(ctrl, lambda: make_executor(args.executor, settings=args.settings),
                            args.task, args.to, lambda: CondorPool(settings=args.settings))
    for message in summary.warnings:
        warn(message)
    for message in summary.errors:
        print(f"ecalrunctrl.py: error: {message}", file=sys.stderr)
    builds = sum(summary.builds.values())
    what = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.builds.items()))
    print(f"campaign {ctrl.campaign!r}: {builds} build(s) cancelled"
          + (f" ({what})" if what else "")
          + (f"; {summary.jobs} HTCondor job(s) removed" if summary.jobs else "")
          + f"; {len(summary.rows)} (run, task) set to {args.to}")
    return 1 if summary.errors else 0
