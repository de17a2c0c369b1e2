"""``jobctrl`` and ``run``: what a build says about itself (the job side).

``run`` is the wrapper every generated Jenkins job calls: it runs the
workflow's command with the run(s) in its environment and its output copied to
a log file, through the build lifecycle of :func:`ecaljenkins.jobctrl.run_build`
(report ``running``, run, report ``done`` or ``failed`` with the exit status
and the log location; a report InfluxDB cannot take is a warning that never
changes the build's result).

``jobctrl --jid J`` reports job J of a task of many jobs instead (an HTCondor
job, ecalautoctrl's ``--jid``): its runs roll up as JobCtrl's do.
"""

import argparse
import os
import sys
from pathlib import Path

from ..errors import InputError
from ..names import parse_int
from ..schema import JOB_STATUSES, REPORT_STATUSES
from ..settings import BuildEnv
from .common import require_campaign, subcommand

# The library (the InfluxDB client and requests, the run registry) is imported by
# the commands, not here: `--help` and every build start pay only for what they use.


def register(sub) -> None:
    p = subcommand(sub, "jobctrl", jobctrl,
                   "report the status of a build of a task (from the build itself)")
    p.add_argument("--task", "-t", required=True, help="the task the build runs")
    _run_options(p)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--id", type=int, metavar="N",
                     help="Jenkins build number (default: $BUILD_NUMBER)")
    who.add_argument("--jid", metavar="JID",
                     help="report job JID of a task of many jobs (an HTCondor job, as "
                          "ecalautoctrl's JobCtrl does) instead of a build")
    status = p.add_mutually_exclusive_group(required=True)
    for name in JOB_STATUSES:
        status.add_argument(f"--{name}", dest="status", action="store_const", const=name,
                            help=f"the job is {name} (with --jid only)" if name == "idle"
                            else f"the build (or job) is {name}")
    p.add_argument("--fields", nargs="+", default=[], metavar="KEY:VALUE",
                   help="extra fields to record (e.g. events:1200)")
    p.add_argument("--output", metavar="PATH",
                   help="the file the build produced for the run(s): what the tasks "
                        "depending on this one read (the same as --fields output:PATH)")
    p.add_argument("--tags", nargs="+", default=[], metavar="KEY:VALUE",
                   help="with --jid: the tags of the job's group, as JobCtrl's tags "
                        "(e.g. fill:8000)")
    p = subcommand(sub, "run", run, "run a workflow command as a build: report running, "
                   "run it with its log, report done or failed")
    p.add_argument("--task", "-t", required=True, help="the task the build runs")
    _run_options(p)
    p.add_argument("--log", metavar="PATH", help="log file (default: $ECAL_LOG_DIR or ./logs"
                   "/<db>/<campaign>/<task>/<run>-<build>.log)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                   help="the command to run, after '--'")


def _run_options(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="the run processed")
    which.add_argument("--runs", help="the runs processed, comma separated (fill/era group)")


def _runs(args) -> list[int]:
    from ..registry import parse_run, parse_runs
    return [parse_run(args.run)] if args.run is not None else parse_runs(args.runs)


def in_build(args, env: BuildEnv) -> None:
    """Inside a build (Jenkins' or the wrapper's), ``$DB`` and ``$CAMPAIGN`` are the job's
    contract: the defaults of ``--db`` and ``-c``."""
    if env.wrapped or env.build_number:
        args.db = args.db or env.db
        args.campaign = args.campaign or env.campaign


def jobctrl(args) -> None:
    from ..jobctrl import Reporter, parse_fields, reporting_influx
    runs = _runs(args)
    fields = parse_fields(args.fields)
    if args.output is not None:
        if "output" in fields and fields["output"] != args.output:
            raise InputError("two outputs given: --output and --fields output:...")
        fields = parse_fields([*args.fields, f"output:{args.output}"])
    env = BuildEnv.from_env()
    in_build(args, env)
    if args.jid is not None:
        return _job(args, runs, fields)
    if args.tags:
        raise InputError("--tags name the group of a job: give its --jid")
    if args.status not in REPORT_STATUSES:
        raise InputError(f"--{args.status} is the status of a job: give its --jid")
    build = env.build if args.id is None else parse_int(args.id, "build number", 1)
    reporter = Reporter(reporting_influx(args.db, args.settings), require_campaign(args),
                        args.task)
    reporter.report(runs, args.status, build=build, url=env.build_url, fields=fields)
    print(f"{args.task}: run(s) {','.join(map(str, runs))} {args.status}")


def _job(args, runs: list[int], fields: dict) -> None:
    """One job of a task of many jobs reports (ecaljenkins.taskjobs), and its runs roll up."""
    from .. import taskjobs
    from ..jobctrl import parse_pairs, reporting_influx
    influx = reporting_influx(args.db, args.settings)
    campaign = require_campaign(args)
    runs = taskjobs.task_runs(influx, campaign, args.task, runs=runs)
    taskjobs.report(influx, campaign, args.task, {args.jid: runs}, args.status,
                    tags=parse_pairs(args.tags, "tag"), fields=fields)
    print(f"{args.task}: job {args.jid} of run(s) {','.join(map(str, runs))} {args.status}")


def run(args) -> int:
    import tempfile

    from ..jobctrl import (Outcome, Reporter, build_env, default_log_path, prepare_log,
                           reporting_influx, run_build, run_command, said, unused_log)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise InputError("no command to run: give it after '--'")
    runs = _runs(args)
    reporter = Reporter(reporting_influx(args.db, args.settings), require_campaign(args),
                        args.task)
    db = reporter.influx.db
    job = BuildEnv.from_env()
    build, url = job.build, job.build_url
    log = unused_log(Path(args.log) if args.log else default_log_path(
        db, reporter.campaign, args.task, runs, args.settings, job))
    prepare_log(log)
    with tempfile.TemporaryDirectory(prefix="ecal-build-") as scratch:
        reason_file = Path(scratch) / "reason"
        env = build_env(os.environ, db, reporter.campaign, args.task, runs, reason_file)

        def work() -> Outcome:
            code = run_command(command, env, log, sys.stdout.buffer)
            return Outcome.of_exit(code, said(reason_file) if code else "",
                                   log=str(log.resolve()))

        code = run_build(reporter, runs, work, build=build, url=url).code
        _leave_to_jobs(reporter, runs)
        return code


def _leave_to_jobs(reporter, runs: list[int]) -> None:
    """A build of a task of many jobs submitted them and ended: its rows say what the
    jobs say (running), not the build's own ``done`` (ecaljenkins.condorjobs)."""
    from ..errors import EcalError
    from ..taskjobs import roll_up
    try:
        roll_up(reporter.influx, reporter.campaign, reporter.task, runs)
    except EcalError as err:   # the next scheduler cycle rolls up anyway
        print(f"warning: the jobs of the build not rolled up: {err}", file=sys.stderr)
