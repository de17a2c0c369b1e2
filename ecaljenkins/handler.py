"""``Handler``: the base class a workflow author subclasses to write a task.

A workflow script only says what to do with a run::

    from ecaljenkins import Handler

    class Pi0Monitoring(Handler):
        def process(self, run):
            path = f"/eos/cms/store/group/dpg_ecal/pi0/{run}.root"
            ...  # produce it
            self.register_output(run, path)

    if __name__ == "__main__":
        raise SystemExit(Pi0Monitoring(task="pi0-mon").run())

The handler reads ``--db``, ``-c/--campaign`` and ``--run``/``--runs`` (by
default from ``DB``, ``CAMPAIGN``, ``RUN_NUMBER``/``RUNS``, which the Jenkins job
and the build wrapper set), calls :meth:`process` for each run, or
:meth:`process_group` once for a fill/era group when the subclass defines it,
and reports ``running``/``done``/``failed`` for each, through the one build
lifecycle of :func:`ecaljenkins.jobctrl.run_build` (a report InfluxDB cannot
take is a warning and never changes the result). Under the build wrapper
(``ecalautomation.py run``), the wrapper reports the build's status itself and
the handler only records outputs, so a build is reported once.

A task of many jobs (HTCondor) defines :meth:`jobs` instead: the build splits
its runs into :class:`~ecaljenkins.condorjobs.JobSpec` s, submits them as one
cluster to the schedd of ``CONDOR_CONFIG`` and ends; each job runs this same
script with ``--jid JID`` and its spec's arguments, which calls
:meth:`process_job` and reports the job (``running``, ``done`` with its
outputs, ``failed``). The scheduler checks, resubmits and rolls the jobs up
(:mod:`ecaljenkins.condorjobs`).
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from typing import Iterable

from .campaign import RunCtrl
from .errors import ConfigError, EcalError, InputError
from .jobctrl import Outcome, Reporter, reporting_influx, run_build, tell_wrapper
from .names import check_name
from .registry import parse_run, parse_runs
from .schema import Status
from .settings import BuildEnv, Settings


def _program(sandbox: str | None = None) -> list[str]:
    """How the jobs start this workflow again: ``-m module`` when it runs as a module
    (an installed package), else the script's absolute path; never a script of the
    HTCondor job's ``sandbox`` the build runs in (the checkout of its repository, on
    the htcondor executor), which is gone when the build ends."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return ["-m", spec.name]
    script = os.path.abspath(sys.argv[0])
    if sandbox and os.path.commonpath([script, os.path.abspath(sandbox)]) == \
            os.path.abspath(sandbox):
        raise ConfigError(f"the task's jobs cannot run {os.path.basename(script)}: a file "
                          "of this HTCondor job's sandbox (a checkout of the workflow's "
                          "repository), gone when the build ends; build this task of many "
                          "jobs with the jenkins or local executor, or install it and run it "
                          "with python -m")
    return [script]


class Handler:
    """One task of the ECAL automation; subclass it and override :meth:`process`."""

    def __init__(self, task: str, deps_tasks: Iterable[str] = ()):
        self.task = check_name(task, "task")
        self.deps_tasks = [check_name(dep, "task") for dep in deps_tasks]
        self.args: argparse.Namespace | None = None
        self.runs: list[int] = []
        self._dependency_outputs: dict[str, dict[int, str]] | None = None
        self._reporter: Reporter | None = None
        self._ctrl: RunCtrl | None = None
        self._build = BuildEnv()
        self._settings: Settings | None = None
        self._job_outputs: list[str] = []

    # --- what a subclass writes ---------------------------------------------------

    def process(self, run: int) -> None:
        """Process one run; raise to fail it."""
        raise NotImplementedError(f"{type(self).__name__} must define process(run)")

    def process_group(self, runs: list[int]) -> None:
        """Process the runs of a fill or era together (define it for grouped tasks)."""
        raise NotImplementedError

    def jobs(self, runs: list[int]) -> list:
        """The jobs of ``runs`` (a list of :class:`~ecaljenkins.condorjobs.JobSpec`):
        define it to make the task many HTCondor jobs."""
        raise NotImplementedError

    def process_job(self, jid: str, runs: list[int]) -> None:
        """Run job ``jid`` of :meth:`jobs` (its arguments are in ``self.args``);
        raise to fail it; :meth:`register_output` records its outputs."""
        raise NotImplementedError(f"{type(self).__name__} must define process_job(jid, runs)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the workflow's own options; their values are in ``self.args``."""

    # --- what a subclass calls ----------------------------------------------------

    @property
    def campaign(self) -> RunCtrl:
        """The campaign being processed (after :meth:`run` parsed the arguments)."""
        if self._ctrl is None:
            raise InputError("the handler has not parsed its arguments yet: call run()")
        return self._ctrl

    def register_output(self, run: int, path: str) -> None:
        """Record the file produced for ``run``: the tasks depending on this one read it.
        In a job (``--jid``), the job's output, reported when it ends."""
        if self.args is not None and self.args.jid is not None:
            self._job_outputs.append(str(path))
            return
        self._reporter.register_output(run, str(path))

    def dependency_outputs(self, run: int) -> dict[str, str]:
        """{dependency task: its output for ``run``}, for the tasks in ``deps_tasks``."""
        if self._dependency_outputs is None:   # one query per dependency for all the runs
            self._dependency_outputs = {dep: self.campaign.get_output(task=dep, runs=self.runs)
                                        for dep in self.deps_tasks}
        return {dep: found[run] for dep, found in self._dependency_outputs.items()
                if run in found}

    # --- the entry point ----------------------------------------------------------

    def _parser(self, build: BuildEnv, settings: Settings) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=os.path.basename(sys.argv[0]) or self.task,
                                         description=f"ECAL task {self.task}")
        parser.add_argument("--db", default=build.db or settings.influxdb_db,
                            help="InfluxDB database (default: $DB)")
        parser.add_argument("-c", "--campaign", default=build.campaign,
                            help="campaign (default: $CAMPAIGN)")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--run", help="the run to process (default: $RUN_NUMBER)")
        which.add_argument("--runs", help="comma separated runs (default: $RUNS)")
        parser.add_argument("--jid", help="run this job of the task's jobs (an HTCondor "
                                          "job of a task of many jobs)")
        self.add_arguments(parser)
        return parser

    def _setup(self, argv) -> None:
        self._build, settings = BuildEnv.from_env(), Settings.from_env()
        self._settings = settings
        self.args = args = self._parser(self._build, settings).parse_args(argv)
        if not args.db or not args.campaign:
            raise InputError("the database and campaign are required: give --db and "
                             "--campaign (or set DB and CAMPAIGN)")
        text = args.run if args.run is not None else args.runs
        if text is None:
            text = self._build.run_text
        if not text:
            raise InputError("no run to process: give --run or --runs (or set RUN_NUMBER "
                             "or RUNS)")
        self.runs = [parse_run(text)] if args.run is not None else parse_runs(text)
        influx = reporting_influx(args.db, settings)
        self._reporter = Reporter(influx, args.campaign, self.task)
        self._ctrl = RunCtrl(influx, args.campaign)

    def run(self, argv: list[str] | None = None) -> int:
        """Parse, process every run (or the group), report; the exit status."""
        try:
            self._setup(argv)
        except EcalError as err:
            print(f"{self.task}: error: {err}", file=sys.stderr)
            return err.exit_code
        try:
            if self.args.jid is not None:
                return self._run_job(self.args.jid)
            if type(self).jobs is not Handler.jobs:
                return self._submit_jobs()
        except EcalError as err:
            self._say(f"error: {err}")
            tell_wrapper(self._build, str(err))
            return err.exit_code
        grouped = type(self).process_group is not Handler.process_group
        units = [self.runs] if grouped else [[run] for run in self.runs]
        # under the wrapper, the wrapper reports the build: the handler only works
        reporter = None if self._build.wrapped else self._reporter
        failed = 0
        for unit in units:
            try:
                outcome = run_build(reporter, unit, partial(self._process, unit, grouped),
                                    build=self._build.build,
                                    url=self._build.build_url, say=self._say)
            except EcalError as err:   # bad input: nothing more to do
                self._say(f"error: {err}")
                return err.exit_code
            if outcome.status == Status.FAILED:
                failed += 1
                tell_wrapper(self._build, outcome.fields.get("reason", ""))
        return 1 if failed else 0

    def _submit_jobs(self) -> int:
        """The build of a task of many jobs: submit them as one cluster, and end."""
        from .condor import CondorPool
        from .condorjobs import submit
        program = _program(self._build.sandbox)
        specs = self.jobs(list(self.runs))
        pool = CondorPool(log_dir=self._settings.log_dir or "logs", settings=self._settings)
        cluster = submit(pool, self._reporter.influx, self.args.campaign, self.task,
                         program, specs)
        self._say(f"{len(specs)} job(s) submitted as HTCondor cluster {cluster}")
        return 0

    def _run_job(self, jid: str) -> int:
        """One job of a task of many jobs: report it running, run it, report how it ended."""
        from .schema import JobStatus
        from .taskjobs import report
        influx, campaign = self._reporter.influx, self.args.campaign
        report(influx, campaign, self.task, {jid: self.runs}, JobStatus.RUNNING)
        try:
            self.process_job(jid, list(self.runs))
        except Exception as err:  # the job's failure, reported with its first line
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:500]
            self._say(f"job {jid} failed: {reason}")
            report(influx, campaign, self.task, {jid: self.runs}, JobStatus.FAILED,
                   fields={"reason": reason})
            return 1
        fields = {"output": ",".join(self._job_outputs)} if self._job_outputs else {}
        report(influx, campaign, self.task, {jid: self.runs}, JobStatus.DONE, fields=fields)
        return 0

    def _process(self, unit: list[int], grouped: bool) -> Outcome:
        if grouped:
            self.process_group(list(unit))
        else:
            self.process(unit[0])
        return Outcome(Status.DONE)

    def _say(self, message: str) -> None:
        print(f"{self.task}: {message}", file=sys.stderr)
