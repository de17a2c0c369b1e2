"""``make demo``: the whole system end to end on this machine, as a user drives it.

``python -m ecaljenkins.demo [--era ERA] [--runs N] [--workdir DIR]`` starts a
private influxd (:class:`~ecaljenkins.localinflux.LocalInfluxd`) and runs the
real console scripts against it, printing each command as a user would type it
followed by its output:

1. create a rereco campaign and add the catalogue's two example workflows,
   ``demo-reco`` and ``demo-calib`` (modules of :mod:`ecaljenkins.examples`;
   calib depends on reco and is grouped by fill),
   which renders the campaign's Jenkins jobs and validates them through Jenkins
   Job Builder;
2. inject an era (or its first N runs) from the bundled run catalogue;
3. run scheduler cycles with the ``local`` executor, which starts each build
   through the same wrapper as the Jenkins job, until nothing is left to start.
   ``demo-calib`` fails once on purpose (``ECAL_DEMO_FAIL_ONCE``), so a failure,
   its back-off and the successful retry are part of the show;
4. print the status, write the HTML report, stop influxd.

``--executor htcondor`` (``make demo DEMO_ARGS='--executor htcondor'``) also starts
a private HTCondor pool (:mod:`ecaljenkins.localcondor`, root and the root
filesystem of ``make htcondor``) and adds a third workflow, ``demo-split``: a task
of several HTCondor jobs per run (:mod:`ecaljenkins.examples.demo_split`), whose
build submits a cluster and ends; one of its jobs fails once and the scheduler
resubmits it. The transcript shows the jobs with their cluster ids
(``condor_history``) and the status with the jobs per (run, task).

The output is a transcript a user can follow and replay by hand: the commands,
what they print, and a few ``#`` lines saying what happens and why. Credentials
reach the commands only through their environment; the password is random and
never printed. ``tests/test_demo.py`` runs a shortened demo as the project's
end-to-end test.

The demo runs from any directory, installed as a wheel too: the catalogue, the
run catalogue and the example workflows ship in the package, and the commands
run from the current directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from .campaign import DEFAULT_FILTERS, RunCtrl
from .errors import ConfigError, DemoError, EcalError, InputError
from .filters import matches_all, parse_all
from .influx import Influx
from .localinflux import LocalInfluxd
from .registry import BUNDLED_CATALOGUE, CatalogRegistry
from .scheduler import Scheduler
from .scheduler.waits import BackOff
from .schema import IN_FLIGHT

DB = "demo"
CAMPAIGN = "demo_rereco"
TASKS = ("demo-reco", "demo-calib")
DEFAULT_ERA = "Run2022G"
#: the InfluxDB user the commands run as (ALL on the demo database, not an admin)
USER = "ecal"
#: marks a directory the demo made, so a rerun may empty it and nothing else
STAMP = ".ecal-demo"
#: builds the local executor runs at the same time
PARALLEL_BUILDS = 4
#: scheduler cycles before giving up: reco, calib, a retry, and room to spare
MAX_CYCLES = 10
#: with the pool: cycles before giving up, and seconds between them while jobs run
MAX_CYCLES_JOBS = 40
JOBS_PAUSE = 2.0
#: extra seconds slept past a back-off, so the next cycle finds it over
BACKOFF_MARGIN = 0.5
#: variables of the caller's shell the commands must not inherit: another
#: server, catalogue or registry, or a real Jenkins to push the demo's jobs to
FOREIGN_PREFIXES = ("ECAL_", "JENKINS_")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ecaljenkins.demo",
        description="Run the ECAL automation end to end on this machine: a private "
                    "influxd, a rereco campaign of the two example workflows over an era "
                    "of the bundled run catalogue, scheduled with the local executor.")
    parser.add_argument("--era", default=DEFAULT_ERA,
                        help=f"era of the bundled run catalogue (default {DEFAULT_ERA})")
    parser.add_argument("--runs", type=int, metavar="N",
                        help="only the first N runs of the era (default: all)")
    parser.add_argument("--executor", choices=("local", "htcondor"), default="local",
                        help="local: builds run here (default); htcondor: also a task "
                             "of many HTCondor jobs on a private pool")
    parser.add_argument("--workdir", default="demo-output", metavar="DIR",
                        help="where logs, rendered jobs, outputs and the report go "
                             "(default ./demo-output; emptied first if an earlier demo "
                             "made it)")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error(f"invalid --runs {args.runs}: use 1 or more")
    return args


def prepare_workdir(path: Path) -> Path:
    """An empty ``path`` for this demo; only a directory an earlier demo made is emptied."""
    if path.exists() and not path.is_dir():
        raise InputError(f"--workdir {str(path)!r} is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not (path / STAMP).is_file():
            raise InputError(f"--workdir {str(path)!r} is not empty and was not made by the "
                             "demo: give another directory")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / STAMP).write_text("made by python -m ecaljenkins.demo: emptied by the next demo\n",
                              encoding="utf-8")
    return path


def select_runs(era: str, count: int | None) -> tuple[list[str], list[int]]:
    """The ``inject`` arguments for the era or its first ``count`` runs, and the runs
    the campaign's default run type keeps (the ones the workflows will process)."""
    runs = CatalogRegistry(BUNDLED_CATALOGUE).era(era)
    if count is not None and count < len(runs):
        runs = runs[:count]
        inject = ["--runs", ",".join(str(run.number) for run in runs)]
    else:
        inject = ["--era", era]
    kept = parse_all(list(DEFAULT_FILTERS))
    return inject, [run.number for run in runs if matches_all(kept, run)]


def say(text: str) -> None:
    """A comment line (or a few) of the transcript."""
    for line in textwrap.wrap(text, width=88, initial_indent="# ", subsequent_indent="# ",
                              break_long_words=False, break_on_hyphens=False):
        print(line)
    sys.stdout.flush()


class Demo:
    """One demo: the private server, the commands' environment, the transcript."""

    def __init__(self, server: LocalInfluxd, password: str, workdir: Path, failing_run: int,
                 pool=None):
        self.server, self.pool = server, pool
        self.tasks = TASKS + (("demo-split",) if pool else ())
        self.shown_dir = self.shown(workdir)
        self.logs = f"{self.shown_dir}/logs"
        self.bin_dir = str(Path(sys.executable).parent)
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(FOREIGN_PREFIXES)}
        self.env.update(server.env(USER, password),
                        PATH=os.pathsep.join([self.bin_dir, self.env.get("PATH", "")]),
                        # as shown: the commands run from the current directory
                        ECAL_JOBS_DIR=f"{self.shown_dir}/jobs", ECAL_DEMO_DIR=self.shown_dir,
                        ECAL_DEMO_FAIL_ONCE=str(failing_run))
        if pool is not None:   # the jobs run as the pool's user: their directories are its
            self.env.update(pool.env(), ECAL_CONDOR_PYTHON=pool.python(), ECAL_LOG_DIR=self.logs)
            for folder in ("logs", "data", f"data/{CAMPAIGN}", f"data/{CAMPAIGN}/demo-split"):
                (workdir / folder).mkdir(exist_ok=True)
                os.chown(workdir / folder, pool.job_uid, pool.job_gid)
        self.scripts = {}
        for script in ("ecalrunctrl.py", "ecalautomation.py"):
            path = shutil.which(script, path=self.env["PATH"])
            if path is None:
                raise ConfigError(f"{script} not found next to {sys.executable} or on PATH: "
                                  "install the package (make demo does)")
            self.scripts[script] = path
        self.influx = Influx.from_env(DB, env=self.env)

    @staticmethod
    def shown(path: Path) -> str:
        """``path`` as the transcript shows it: relative to the current directory when
        inside."""
        try:
            return str(path.relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    def show_environment(self) -> None:
        print(f'$ export PATH={shlex.quote(self.bin_dir)}:"$PATH"')
        print(f"$ export ECAL_INFLUXDB_URL={self.server.url} ECAL_INFLUXDB_USER={USER}")
        print("$ export ECAL_INFLUXDB_PASSWORD=...    # its password: never on a command line")
        print("$ export " + " ".join(f"{key}={shlex.quote(self.env[key])}" for key in
                                     ("ECAL_JOBS_DIR", "ECAL_DEMO_DIR", "ECAL_DEMO_FAIL_ONCE")))
        if self.pool is not None:
            print("$ export " + " ".join(f"{key}={shlex.quote(self.env[key])}" for key in
                                         ("CONDOR_CONFIG", "ECAL_CONDOR_PYTHON",
                                          "ECAL_LOG_DIR")))

    def run(self, script: str, *args: str) -> None:
        """Show the command, run it here, stream its output; stop on failure."""
        print(f"$ {shlex.join([script, *args])}", flush=True)
        with subprocess.Popen([self.scripts[script], *args], env=self.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
        if proc.returncode:
            raise DemoError(f"{shlex.join([script, *args])!r} exited with status "
                            f"{proc.returncode}: see its output above")

    # --- the scheduler loop ---------------------------------------------------------

    def next_step(self) -> tuple[bool, list]:
        """(builds ready now?, the back-off waits) from a dry-run plan of the campaign."""
        report = Scheduler(self.influx, dry_run=True).cycle(CAMPAIGN)
        plan = report.campaigns[0].plan if report.campaigns else None
        if plan is None:
            return False, []
        in_flight = any(tp.counts.get(status) for tp in plan.tasks.values()
                        for status in IN_FLIGHT)
        backoffs = [(tp.task, wait) for tp in plan.tasks.values() for wait in tp.waiting
                    if isinstance(wait, BackOff)]
        return bool(plan.builds) or in_flight, backoffs

    def schedule(self) -> None:
        """Scheduler cycles until nothing is left to start (done, or failed for good)."""
        args = ("--db", DB, "schedule", "--executor", "local", "--jobs", str(PARALLEL_BUILDS),
                "--log-dir", self.logs)
        status_shown = False
        for _ in range(MAX_CYCLES if self.pool is None else MAX_CYCLES_JOBS):
            self.run("ecalautomation.py", *args)
            ready, backoffs = self.next_step()
            if ready:
                if self.pool is not None:   # jobs in flight on the pool: give them time
                    time.sleep(JOBS_PAUSE)
                continue
            if not backoffs:
                return
            if not status_shown:
                say("A build failed: the status lists it with its reason and its log.")
                self.status()
                status_shown = True
            by_task = defaultdict(list)
            for task, wait in backoffs:
                by_task[task].append(wait.run)
            until = min(wait.until for _, wait in backoffs)
            delay = max(until - time.time(), 0.0) + BACKOFF_MARGIN
            say("; ".join(f"{task} run(s) {','.join(map(str, sorted(runs)))}"
                          for task, runs in by_task.items())
                + f" will be retried: waiting {delay:.0f} s for the back-off (the "
                  "workflow's retry_delay), then the next cycle.")
            time.sleep(delay)
        raise DemoError(f"campaign {CAMPAIGN!r} still had builds to start or in flight "
                        f"after {MAX_CYCLES} scheduler cycles")

    def condor_history(self) -> None:
        """``condor_history`` of the demo's jobs, as the pool's own tool prints it."""
        args = ["condor_history", "-constraint", 'EcalTask == "demo-split"', "-af",
                "ClusterId", "ProcId", "EcalJob", "ExitCode"]
        print(f"$ {shlex.join(args)}")
        done = self.pool.command(*args, check=False)
        lines = done.stdout.splitlines(keepends=True)
        sys.stdout.write("".join(sorted(lines, key=lambda line: [
            int(word) if word.isdigit() else 0 for word in line.split()[:2]])))
        if done.returncode:
            raise DemoError(f"condor_history exited with status {done.returncode}: "
                            f"{done.stderr.strip()}")

    def status(self) -> None:
        self.run("ecalrunctrl.py", "--db", DB, "status", "--campaign", CAMPAIGN)

    def retried(self) -> dict[tuple[str, str, int], list[int]]:
        """{(task, status, attempts): runs} of the (run, task) that needed more than one
        build."""
        found = defaultdict(list)
        for row in RunCtrl(self.influx, CAMPAIGN).task_rows(fields="status, attempt"):
            if (row.get("attempt") or 0) > 1:
                found[(row["task"], row["status"], row["attempt"])].append(row["time"])
        return dict(sorted(found.items()))

    # --- the whole demo -------------------------------------------------------------

    def play(self, era: str, inject: list[str]) -> None:
        say(f"A private influxd on {self.server.url} (data in a temporary directory), "
            f"database {DB!r}, user {USER!r} with all privileges on it. Every command "
            "below gets them from its environment:")
        self.show_environment()
        print()
        say("A rereco campaign. Its run type 'all' keeps global runs only "
            f"({' AND '.join(DEFAULT_FILTERS)}); give it the two example workflows. "
            "Adding tasks renders the campaign's Jenkins jobs and validates them with "
            "Jenkins Job Builder (no Jenkins here, so they are not pushed).")
        self.run("ecalrunctrl.py", "--db", DB, "create", "--campaign", CAMPAIGN,
                 "--description", f"make demo: {era}")
        self.run("ecalrunctrl.py", "--db", DB, "rtype-update", "--campaign", CAMPAIGN,
                 "--add", *self.tasks)
        print()
        say(f"Runs of {era} from the bundled run catalogue: each gets status new for "
            "each task.")
        self.run("ecalrunctrl.py", "--db", DB, "inject", "--campaign", CAMPAIGN, *inject)
        print()
        say("The scheduler (a Jenkins cron job in production) starts one build per ready "
            "(run, task): demo-reco per run, then demo-calib per fill once demo-reco is "
            "done for all its runs. The local executor runs each build here, through the "
            "same wrapper as the Jenkins job, which reports to InfluxDB.")
        if self.pool is not None:
            say("demo-split is a task of many jobs: its build (here, as every build) "
                "submits one HTCondor job per chunk of its run to the private pool and "
                "ends; each cycle checks the jobs, resubmits a failed one after its "
                "back-off and rolls them up into the (run, task).")
        self.schedule()
        print()
        if self.pool is not None:
            say("The jobs of demo-split in the pool's history, with their cluster ids "
                "(a resubmitted job has a second cluster):")
            self.condor_history()
        say("Nothing is left to start:")
        self.status()
        for (task, status, attempts), runs in self.retried().items():
            say(f"retried: {task} run(s) {','.join(map(str, runs))}, {status} at attempt "
                f"{attempts}; the logs of its builds: {self.logs}/{DB}/{CAMPAIGN}/{task}/"
                f"{runs[0]}-<attempt>.log")
        print()
        self.run("ecalrunctrl.py", "--db", DB, "report", "--campaign", CAMPAIGN,
                 "-o", f"{self.shown_dir}/report.html")


def condor_pool(workdir: Path):
    """A private HTCondor pool whose jobs see ``workdir`` (or why there is none)."""
    from . import localcondor
    problem = localcondor.missing()
    if problem:
        raise ConfigError(f"--executor htcondor needs a private HTCondor pool: {problem}")
    for folder in (workdir, *workdir.parents):   # the jobs run as the pool's user
        if not folder.stat().st_mode & 0o001:
            raise ConfigError(f"--workdir {str(workdir)!r}: the pool's jobs cannot reach it "
                              f"({str(folder)!r} is not searchable by other users): give "
                              "a directory under /tmp, say")
    localcondor.ensure_rootfs()
    return localcondor.LocalCondor(shared=(workdir,))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        inject, kept = select_runs(args.era, args.runs)
        if not kept:
            raise InputError(f"no global run among the selected runs of {args.era}: "
                             "nothing to process")
        workdir = prepare_workdir(Path(args.workdir).resolve())
        started = time.monotonic()
        password = secrets.token_urlsafe(18)
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(condor_pool(workdir)) if args.executor == "htcondor" \
                else None
            server = stack.enter_context(LocalInfluxd(admin_password=secrets.token_urlsafe(18)))
            server.create_database(DB)
            server.create_user(USER, password, db=DB)
            # the second run the workflows process fails once (with its fill's group)
            failing = kept[1] if len(kept) > 1 else kept[0]
            demo = Demo(server, password, workdir, failing, pool)
            demo.play(args.era, inject)
        print()
        say(f"Done in {time.monotonic() - started:.0f} s; influxd is stopped and its data "
            f"removed. Outputs in {demo.shown_dir}/: data/ (what the workflows wrote), "
            "logs/ (one per build), jobs/ (the Jenkins jobs), report.html.")
    except EcalError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
