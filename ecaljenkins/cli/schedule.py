"""``schedule``: one scheduler cycle over a database (what the Jenkins cron job runs)."""

import sys
from collections import Counter

from ..campaign import RunCtrl
from ..schema import STATUSES
from ..scheduler import (DEFAULT_MAX_TRIGGERS, EXECUTORS, CampaignReport, Scheduler,
                         make_executor)
from ..errors import NEEDS_ATTENTION
from ..scheduler.clock import utc
from ..scheduler.lease import break_lease, held_since, released_on_signals
from ..scheduler.waits import Exhausted
from .common import influx, print_table, subcommand, warn

#: lines of detail per task and section in a dry run, unless --verbose
DETAIL_LINES = 10


def register(sub) -> None:
    p = subcommand(sub, "schedule", schedule,
                   "trigger a build for every ready (run, task) of the active campaigns")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be triggered and why the rest waits; write nothing")
    p.add_argument("--executor", choices=EXECUTORS, default="jenkins",
                   help="where builds run: Jenkins (default), subprocesses here, or "
                        "HTCondor jobs")
    p.add_argument("--schedd", metavar="NAME",
                   help="htcondor executor: the schedd to submit to (default: the local "
                        "schedd of CONDOR_CONFIG)")
    p.add_argument("--max-triggers", type=int, default=DEFAULT_MAX_TRIGGERS, metavar="N",
                   help=f"builds triggered per cycle at most (default {DEFAULT_MAX_TRIGGERS})")
    p.add_argument("--jobs", "-j", type=int, default=2, metavar="N",
                   help="local executor: builds run at the same time (default 2)")
    p.add_argument("--log-dir", metavar="DIR",
                   help="local and htcondor executors: where build logs go (default "
                        "$ECAL_LOG_DIR or ./logs)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="dry run: list every run, not only the first ones of each task")
    p.add_argument("--break-lease", action="store_true",
                   help="break the scheduling lease of the database whoever holds it, "
                        "saying who held it, and run no cycle (when its holder is gone)")


def schedule(args) -> int:
    if args.max_triggers < 0:
        from .common import raise_usage
        raise_usage(f"invalid --max-triggers {args.max_triggers}: use 0 or more")
    client = influx(args)
    if args.break_lease:
        return break_(client)
    if args.campaign is not None:   # a wrong -c is reported before a Jenkins setting
        RunCtrl(client, args.campaign).info()
    log_dir = args.log_dir or args.settings.log_dir or "logs"
    executor = None if args.dry_run else make_executor(args.executor, args.jobs, log_dir,
                                                       args.settings, args.schedd)
    scheduler = Scheduler(client, executor, dry_run=args.dry_run,
                          max_triggers=args.max_triggers)
    with released_on_signals():     # Jenkins aborts a build with SIGTERM
        report = scheduler.cycle(args.campaign)
    for name in report.inactive:
        print(f"campaign {name!r}: inactive (no active task), skipped")
    if report.took_over:
        print(f"took over the lease of {report.took_over}: that scheduler of this host "
              "is no longer running")
    if report.skipped:
        print(report.skipped)
        return NEEDS_ATTENTION if report.needs_attention else 0
    for campaign in report.campaigns:
        if args.dry_run:
            _print_plan(campaign, args.verbose)
        else:
            _print_cycle(campaign)
        for message in campaign.warnings:
            warn(message)
        for message in campaign.refused:
            print(f"ecalautomation.py: needs attention: {message}", file=sys.stderr)
        for message in campaign.errors:
            print(f"ecalautomation.py: error: {message}", file=sys.stderr)
    return 1 if report.failed else NEEDS_ATTENTION if report.needs_attention else 0


def break_(client) -> int:
    """``--break-lease``: say whose lease was broken (or that none was held)."""
    broken = break_lease(client)
    if broken is None:
        print(f"the lease of database {client.db!r} was not held")
    else:
        print(f"broke the lease of database {client.db!r} held by {broken['holder']} since "
              f"{utc(held_since(broken))} "
              f"(until {utc(broken['expires'])})")
    return 0


def _counts(counter) -> str:
    return ", ".join(f"{key}: {n}" for key, n in sorted(counter.items()))


def _print_cycle(report: CampaignReport) -> None:
    per_task = Counter(started.build.task for started in report.triggered)
    parts = [f"{len(report.triggered)} build(s) triggered"
             + (f" ({_counts(per_task)})" if per_task else "")]
    if report.reconciled:
        parts.append(f"{sum(report.reconciled.values())} (run, task) updated from the "
                     f"executor ({_counts(report.reconciled)})")
    if report.fetched:
        parts.append(f"{report.fetched} new run(s) fetched")
    if report.plan is not None:
        waits = [wait for tp in report.plan.tasks.values() for wait in tp.waiting]
        exhausted = sum(isinstance(wait, Exhausted) for wait in waits)
        parts.append(f"{len(waits) - exhausted} waiting")
        if exhausted:
            parts.append(f"{exhausted} failed for good (retries exhausted: reprocess them)")
    print(f"campaign {report.campaign!r}: " + "; ".join(parts))


def _print_plan(report: CampaignReport, verbose: bool) -> None:
    plan = report.plan
    when = f" at {utc(plan.now)}" if plan else ""
    print(f"campaign {report.campaign!r} ({report.kind}), dry run{when}:")
    if report.kind == "prompt":
        print(f"  {report.fetched} new run(s) in the registry would be fetched"
              if report.fetched is not None else
              "  new runs in the registry: unknown (fetching failed, see the error below)")
    if plan is None:
        return
    if report.since:
        print(f"  (run, task) rows from run {report.since} on, the low-water mark: the older "
              "ones are settled (ecalrunctrl.py status counts them all)")
    print_table(["task", "group_by", *STATUSES, "to trigger", "waiting", "why waiting"],
                [[tp.task, tp.group_by or "-", *(tp.counts.get(s, 0) for s in STATUSES),
                  sum(len(b.rows) for b in tp.builds), len(tp.waiting),
                  _counts(tp.reasons()) or "-"] for tp in plan.tasks.values()])
    limit = None if verbose else DETAIL_LINES
    for tp in plan.tasks.values():
        _print_some(tp.builds, limit, f"{tp.task} build(s) to trigger",
                    lambda b, task=tp.task: f"  would trigger {task} run(s) "
                    f"{','.join(map(str, b.runs))} (attempt {b.attempt(b.rows[0])})")
        _print_some(sorted(tp.waiting, key=lambda w: w.run), limit,
                    f"waiting {tp.task} run(s)",
                    lambda w, task=tp.task: f"  waiting {task} run {w.run}: {w}")


def _print_some(items, limit, what, line) -> None:
    """The first ``limit`` items (formatted only when shown), then how many were left out."""
    for item in items[:limit]:
        print(line(item))
    if limit is not None and len(items) > limit:
        print(f"  ... and {len(items) - limit} more {what} (--verbose lists all)")
