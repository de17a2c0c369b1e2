"""``pause`` and ``resume``: stop scheduling a campaign for a while, then go on."""

from .common import runctrl, subcommand
from .rtype import report_jobs


def register(sub) -> None:
    for name, func, help in (
            ("pause", pause, "make every task inactive (nothing is scheduled, the jobs are "
                             "disabled), remembering which run type had which task"),
            ("resume", resume, "give every run type back the tasks 'pause' removed")):
        p = subcommand(sub, name, func, help)
        p.add_argument("--output", metavar="DIR",
                       help="where the Jenkins jobs are rendered (default: $ECAL_JOBS_DIR or "
                            "jobs/)")


def pause(args) -> None:
    from ..jobsync import pause as pause_campaign
    ctrl = runctrl(args)
    result = pause_campaign(ctrl, args.output, args.settings)
    _print(ctrl.campaign, "paused", result)
    print(f"resume it with: ecalrunctrl.py --db {ctrl.influx.db} resume -c {ctrl.campaign}")


def resume(args) -> None:
    from ..jobsync import resume as resume_campaign
    ctrl = runctrl(args)
    result = resume_campaign(ctrl, args.output, args.settings)
    _print(ctrl.campaign, "resumed", result)


def _print(campaign: str, what: str, result) -> None:
    print(f"campaign {campaign!r} {what}: " + "; ".join(
        f"run type {rtype!r}: {','.join(tasks) or 'no task'}"
        for rtype, tasks in result.tasks.items()))
    report_jobs(result.jobs)
