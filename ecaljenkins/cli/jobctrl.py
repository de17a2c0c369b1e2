"""``jobctrl`` and ``run``: what a build says about itself (the job side).

``run`` is the wrapper every generated Jenkins job calls: it reports ``running``,
runs the workflow's command with the run(s) in its environment, copies the
output to a log file, and reports ``done`` or ``failed`` with the exit status
and the log location. A report that cannot reach InfluxDB, even after retrying,
does not change the build's result: the scheduler then takes the outcome from
Jenkins.
"""

import argparse
import os
import sys
from pathlib import Path

from ..errors import InputError, ServerError
from ..jobctrl import (REPORT_STATUSES, Reporter, build_env, default_log_path,
                       parse_fields, prepare_log, reporting_influx, run_command)
from .common import require_campaign, subcommand, warn
from ..names import parse_int
from ..registry import parse_run, parse_runs
from ..settings import BuildEnv


def register(sub) -> None:
    p = subcommand(sub, "jobctrl", jobctrl,
                   "report the status of a build of a task (from the build itself)")
    p.add_argument("--task", "-t", required=True, help="the task the build runs")
    _run_options(p)
    p.add_argument("--id", type=int, metavar="N",
                   help="Jenkins build number (default: $BUILD_NUMBER)")
    status = p.add_mutually_exclusive_group(required=True)
    for name in REPORT_STATUSES:
        status.add_argument(f"--{name}", dest="status", action="store_const", const=name,
                            help=f"the build is {name}")
    p.add_argument("--fields", nargs="+", default=[], metavar="KEY:VALUE",
                   help="extra fields to record (e.g. output:/eos/.../file.root)")
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
    return [parse_run(args.run)] if args.run is not None else parse_runs(args.runs)


def _build_number(value) -> int | None:
    return None if value in (None, "") else parse_int(value, "build number", 1)


def jobctrl(args) -> None:
    runs = _runs(args)
    fields = parse_fields(args.fields)
    env = BuildEnv.from_env()
    build = _build_number(args.id if args.id is not None else env.build_number)
    reporter = Reporter(reporting_influx(args.db, args.settings), require_campaign(args),
                        args.task)
    reporter.report(runs, args.status, build=build, url=env.build_url, fields=fields)
    print(f"{args.task}: run(s) {','.join(map(str, runs))} {args.status}")


def run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise InputError("no command to run: give it after '--'")
    runs = _runs(args)
    reporter = Reporter(reporting_influx(args.db, args.settings), require_campaign(args),
                        args.task)
    db = reporter.influx.db
    env = BuildEnv.from_env()
    build, url = _build_number(env.build_number), env.build_url
    log = Path(args.log) if args.log else default_log_path(db, reporter.campaign, args.task,
                                                         runs, args.settings, env)
    prepare_log(log)
    _report(reporter, runs, "running", build=build, url=url)
    env = build_env(os.environ, db, reporter.campaign, args.task, runs)
    code = run_command(command, env, log, sys.stdout.buffer)
    outcome = "done" if code == 0 else "failed"
    extra = {"reason": f"exit code {code}"} if code else {}
    _report(reporter, runs, outcome, build=build, url=url, log=str(log.resolve()),
            exit_code=code, **extra)
    return code


def _report(reporter: Reporter, runs, status: str, **fields) -> None:
    """Report, but never let a server failure change the build's own result.

    Bad input (an unknown campaign, task or run) is not a failure of the server:
    it stops the wrapper before the command runs (exit 2), instead of a build
    that works for nothing.
    """
    try:
        reporter.report(runs, status, **fields)
    except ServerError as err:
        warn(f"could not report {reporter.task} {status} for run(s) "
             f"{','.join(map(str, runs))}: {err} (the scheduler will take the result "
             "from Jenkins)")
