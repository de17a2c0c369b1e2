"""Builds as HTCondor jobs: the ``htcondor`` executor.

Each build becomes one HTCondor job (a cluster of one) running the same
job-side wrapper a Jenkins build runs (``ecalautomation.py ... run --task T
--runs R -- bash -c COMMAND``), submitted with the ``htcondor2`` bindings to the
schedd of ``CONDOR_CONFIG`` (or the one named ``--schedd``). The scheduler
records the cluster id where it records a Jenkins queue id; the wrapper reports
``running`` and ``done``/``failed`` itself, and :meth:`HTCondorExecutor.locate`
tells the scheduler what became of a job that did not report (see
docs/scheduler.md, "Builds on HTCondor").

Every job carries the build's trigger id in its ad (``EcalTrigger``), so a job
submitted by a scheduler that died before recording its cluster id is found
again instead of being submitted twice. The InfluxDB settings the wrapper needs
(credentials included) reach the job in a file of mode 0600 transferred into
its sandbox and read by the job's shell, never in its arguments or its ad.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import CondorError, CondorUnavailable, ConfigError, ScmError
from .executors import (ABSENT, BUILDING, DEQUEUED, FINISHED, GONE, STOPPED, UNKNOWN, WAITING,
                        BuildRef, BuildRequest, Fact, LocalOutcome)
from .settings import Settings, current, variables
from .workflows import Scm, checkout

#: the job ad attribute carrying the trigger id (and its siblings, for people reading condor_q)
TRIGGER_ATTR = "EcalTrigger"
#: seconds a running job may take before the schedd removes it (from ``timeout_minutes``)
TIMEOUT_ATTR = "EcalTimeoutSeconds"
#: the file of settings each job's shell reads (in the job's sandbox)
SETTINGS_FILE = "ecal-settings.sh"
#: the settings a job needs to report: InfluxDB's, and how long to retry it
JOB_SETTINGS = ("influxdb_url", "influxdb_user", "influxdb_password", "influxdb_token",
                "influxdb_timeout", "report_retry")
#: the job ad attribute naming the checkout of the workflow's repository a build's job
#: gets (kept on the scheduler's machine while a job in the queue names it)
WORKSPACE_ATTR = "EcalWorkspace"
#: what a job ad is read for
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "ExitCode", "ExitBySignal",
              "ExitSignal", "HoldReason", "RemoveReason", TIMEOUT_ATTR, WORKSPACE_ATTR]
#: the job ad attribute naming a job of a task of many jobs: "db/campaign/task/jid"
JOB_ATTR = "EcalJob"
#: a node value naming an HTCondor accounting group rather than a machine
ACCOUNTING_PREFIX = "group_"

# JobStatus values (htcondor2.JobStatus)
IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING, SUSPENDED = 1, 2, 3, 4, 5, 6, 7


def bindings():
    """The ``htcondor2`` module, or a one-line error saying how to install it."""
    try:
        import htcondor2
    except ImportError:
        raise CondorUnavailable("the HTCondor Python bindings are not installed: "
                                "pip install 'ecaljenkins[htcondor]'") from None
    return htcondor2


def quote_arguments(argv: list[str]) -> str:
    """``argv`` in the submit language's new-style ``arguments`` syntax.

    Each word goes in single quotes (a quote inside doubled), the whole in
    double quotes (a double quote inside doubled); ``$`` becomes ``$(DOLLAR)``
    so that no part of a command is taken for a submit macro.
    """
    words = ("'" + word.replace("'", "''").replace('"', '""') + "'" for word in argv)
    return '"' + " ".join(words).replace("$", "$(DOLLAR)") + '"'


def node_commands(node: str | None) -> dict[str, str]:
    """What a workflow's ``node`` means on HTCondor: ``group_...`` is the accounting
    group the job is charged to; any other value the machine it must run on."""
    if node is None:
        return {}
    if node.startswith(ACCOUNTING_PREFIX):
        return {"accounting_group": node}
    return {"requirements": f'(TARGET.Machine == "{_classad_text(node)}")'}


def _classad_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class CondorPool:
    """A connection to one schedd, for builds and for the jobs of tasks of many jobs.

    ``python`` is the interpreter that runs ecaljenkins on the execute nodes
    (``ECAL_CONDOR_PYTHON``; default this one, for a pool whose nodes share this
    installation). Jobs write under ``log_dir``; run as root (a test's private
    pool), the directories and the settings file it makes belong to the owner of
    ``log_dir``, the job's user. The queue is read once per cycle (:meth:`queued`);
    the jobs no longer queued are looked up in the history together (:meth:`history`).
    """

    def __init__(self, schedd_name: str | None = None, log_dir: str | os.PathLike = "logs",
                 python: str | None = None, settings: Settings | None = None, schedd=None):
        self.htcondor = bindings()
        settings = current(settings)
        self.settings = settings
        self.python = python or settings.condor_python or sys.executable
        self.log_dir = Path(log_dir).resolve()
        with self.errors("connecting to the schedd"):
            self.schedd = schedd or self._schedd(schedd_name)
        self._settings_file: Path | None = None
        #: history queries sent to the schedd (the tests and the bench count them)
        self.history_reads = 0
        self.new_cycle()

    def _schedd(self, name: str | None):
        htcondor = self.htcondor
        if name is None:
            return htcondor.Schedd()
        ad = htcondor.Collector().locate(htcondor.DaemonTypes.Schedd, name)
        if ad is None:
            raise ConfigError(f"no schedd named {name!r} in the HTCondor pool of CONDOR_CONFIG")
        return htcondor.Schedd(ad)

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """An HTCondor failure as one CondorError line naming what was being done."""
        try:
            yield
        except (self.htcondor.HTCondorException, RuntimeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CondorError(f"HTCondor: {action}: {first}") from None

    def new_cycle(self) -> None:
        """Forget the queue and the history read in the previous cycle."""
        self._queues: dict[str, dict] = {}
        self._histories: dict[str, dict] = {}

    def _owner(self) -> tuple[int, int] | None:
        """Who owns what is made for jobs: ``log_dir``'s owner, when root."""
        if os.geteuid() != 0:
            return None
        info = self.log_dir.stat()
        return info.st_uid, info.st_gid

    def make_dirs(self, path: Path) -> None:
        """``path`` and its missing parents, the job's user's."""
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        owner = self._owner()
        for directory in reversed(missing):
            directory.mkdir(exist_ok=True)
            if owner:
                os.chown(directory, *owner)

    def settings_file(self) -> Path:
        """The job's settings (InfluxDB's, credentials included): a shell file of mode
        0600, rewritten once per scheduler process so a rotated password reaches the
        jobs that have not started yet."""
        if self._settings_file is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            names = variables()
            lines = [f"export {names[key][0]}={shlex.quote(getattr(self.settings, key))}\n"
                     for key in JOB_SETTINGS if getattr(self.settings, key)]
            fd, tmp = tempfile.mkstemp(prefix=f".{SETTINGS_FILE}.", dir=self.log_dir)
            with os.fdopen(fd, "w") as out:
                out.writelines(lines)
            owner = self._owner()
            if owner:
                os.chown(tmp, *owner)
            path = self.log_dir / SETTINGS_FILE
            os.replace(tmp, path)
            self._settings_file = path
        return self._settings_file

    def give(self, top: Path) -> None:
        """``top`` and everything under it, the job's user's (when root)."""
        owner = self._owner()
        if owner:
            for folder, dirs, files in os.walk(top):
                for name in (folder, *(os.path.join(folder, entry) for entry in dirs + files)):
                    os.chown(name, *owner, follow_symlinks=False)

    def job_command(self, argv: list[str], workdir: str | None = None) -> dict[str, str]:
        """Submit commands running ``argv`` (``python`` first) after reading the settings
        file transferred into the sandbox: never a credential in the arguments. With
        ``workdir``, ``argv`` runs in that directory of the sandbox."""
        enter = f"cd {shlex.quote(workdir)} && " if workdir else ""
        shell = f'set -a; . ./{SETTINGS_FILE}; set +a; {enter}exec "$0" "$@"'
        return {"universe": "vanilla", "executable": "/bin/sh", "transfer_executable": "false",
                "arguments": quote_arguments(["-c", shell, self.python, *argv]),
                "should_transfer_files": "YES", "when_to_transfer_output": "ON_EXIT",
                "transfer_input_files": str(self.settings_file())}

    def submit(self, description: dict[str, str], action: str,
               itemdata: list[dict] | None = None) -> int:
        """Submit ``description`` (once per item of ``itemdata``); the cluster id."""
        self.make_dirs(Path(description["initialdir"]))
        with self.errors(action):
            if itemdata is None:
                result = self.schedd.submit(self.htcondor.Submit(description))
            else:
                # count=1: one job per item (count 0 is refused with items)
                result = self.schedd.submit(self.htcondor.Submit(description), count=1,
                                            itemdata=iter(itemdata))
        return int(result.cluster())

    def queued(self, attr: str) -> dict[str, dict]:
        """Every job of the schedd carrying ``attr``, by its value (read once a cycle)."""
        if attr not in self._queues:
            with self.errors("reading the queue"):
                ads = self.schedd.query(f"{attr} =!= undefined", [*PROJECTION, attr])
            self._queues[attr] = {ad[attr]: dict(ad) for ad in ads}
        return self._queues[attr]

    def history(self, attr: str, values: Iterable[str | int]) -> dict[str | int, dict]:
        """The latest ad in the history of the job carrying each of ``values`` in ``attr``
        (jobs no longer queued), by value; a value without one is left out.

        One query for all the values not asked about earlier in the cycle, bounded by
        their number: the schedd answers each history query from a process of its own
        that scans the history file from its newest end, so one query per build made
        the cycle reconciling 1,000 finished builds of ``make bench`` take 54 s, one
        for them all 0.2 s (docs/performance.md). The history is read newest first,
        so the first ad of a value is its latest; when older ads of values (a
        resubmitted job's earlier attempts) used up the bound, the values still
        missing are asked again.
        """
        known = self._histories.setdefault(attr, {})
        wanted = [value for value in dict.fromkeys(values) if value not in known]
        while wanted:
            listed = ", ".join(str(value) if isinstance(value, int)
                               else f'"{_classad_text(value)}"' for value in wanted)
            self.history_reads += 1
            with self.errors("reading the history"):
                ads = [dict(ad) for ad in self.schedd.history(
                    f"identicalMember({attr}, {{{listed}}})", [*PROJECTION, attr],
                    match=len(wanted))]
            for ad in ads:
                known.setdefault(ad[attr], ad)
            if len(ads) < len(wanted):   # the whole history was read
                break
            wanted = [value for value in wanted if value not in known]
        for value in wanted:
            known[value] = None
        return {value: known[value] for value in values if known.get(value) is not None}

    def remove(self, constraint: str, action: str) -> None:
        with self.errors(action):
            self.schedd.act(self.htcondor.JobAction.Remove, constraint)

    def remove_task_jobs(self, db: str, campaign: str, task: str, runs) -> int:
        """Remove the queued jobs of a task of many jobs working on any of ``runs``
        (:mod:`ecaljenkins.condorjobs`); how many there were."""
        any_run = " || ".join(f'stringListMember("{int(run)}", EcalRuns)' for run in runs)
        constraint = (f'{JOB_ATTR} =!= undefined && EcalDb == "{_classad_text(db)}" && '
                      f'EcalCampaign == "{_classad_text(campaign)}" && '
                      f'EcalTask == "{_classad_text(task)}" && ({any_run})')
        with self.errors("reading the jobs of the task"):
            found = list(self.schedd.query(constraint, ["ClusterId"]))
        if found:
            self.remove(constraint, f"removing the jobs of {task}")
        return len(found)


class HTCondorExecutor:
    """Builds as jobs of an HTCondor schedd (a :class:`CondorPool`).

    The log of each build is the wrapper's,
    ``<log_dir>/<db>/<campaign>/<task>/<run>-<attempt>.log`` as with the local
    executor; the job's own stdout and stderr go beside it (``.out``).

    A workflow with ``scm`` runs in a checkout of its repository, as its Jenkins
    job would: the scheduler checks the repository out once per (task, scm) and
    cycle, under ``<log_dir>/workspace/<db>/<campaign>/<task>/``, and each build's
    job gets that checkout transferred into its sandbox (the command runs at its
    top, or in ``subdir``). A task's older checkouts are removed at its next
    checkout, once no job in the queue names them (:data:`WORKSPACE_ATTR`). A
    checkout that fails fails the builds of the task in that cycle, with git's
    error as their reason (:meth:`finish`), as a Jenkins job failing its checkout.
    """

    name = "htcondor"

    def __init__(self, schedd_name: str | None = None, log_dir: str | os.PathLike = "logs",
                 python: str | None = None, settings: Settings | None = None, schedd=None):
        self.pool = CondorPool(schedd_name, log_dir, python, settings, schedd)
        self.log_dir = self.pool.log_dir
        self._checkouts: dict[tuple[str, str, str, Scm], Path | ScmError] = {}
        self._ended: dict[str, LocalOutcome] = {}

    def new_cycle(self) -> None:
        """Forget the queue read and the checkouts made in the previous cycle."""
        self.pool.new_cycle()
        self._checkouts.clear()

    # -- submitting --

    def log_path(self, request: BuildRequest) -> Path:
        return (self.log_dir / request.db / request.campaign / request.task
                / f"{request.runs[0]}-{request.attempt}.log")

    def description(self, request: BuildRequest,
                    workspace: Path | None = None) -> dict[str, str]:
        """The submit description of one build (run in ``workspace``, the checkout of
        its workflow's repository, when it has one)."""
        if request.command is None:
            raise ConfigError(f"task {request.task!r} has no workflow definition: "
                              "no command to submit")
        log = self.log_path(request)
        description = self.pool.job_command(
            ["-m", "ecaljenkins.cli.automation", "--db", request.db, "--campaign",
             request.campaign, "run", "--task", request.task, "--runs",
             ",".join(map(str, request.runs)), "--log", str(log), "--", "bash", "-c",
             request.command], workdir=request.scm.subdir if workspace else None)
        description.update({
            "initialdir": str(log.parent),
            "output": log.with_suffix(".out").name,
            "error": log.with_suffix(".out").name,
            # the wrapper reports the cluster id as its build number
            "environment": '"BUILD_NUMBER=$(ClusterId)"',
            "batch_name": request.job,
            f"+{TRIGGER_ATTR}": f'"{request.trigger_id}"',
            "+EcalDb": f'"{request.db}"',
            "+EcalCampaign": f'"{request.campaign}"',
            "+EcalTask": f'"{request.task}"',
            "+EcalRuns": f'"{",".join(map(str, request.runs))}"',
        })
        if workspace is not None:   # its contents: the sandbox is the checkout's top
            description["transfer_input_files"] += f",{workspace}/"
            description[f"+{WORKSPACE_ATTR}"] = f'"{_classad_text(str(workspace))}"'
        if request.timeout_minutes is not None:
            description[f"+{TIMEOUT_ATTR}"] = str(int(request.timeout_minutes * 60))
            description["periodic_remove"] = (f"(JobStatus == {RUNNING}) && "
                                              f"(time() - JobCurrentStartDate > {TIMEOUT_ATTR})")
        description.update(node_commands(request.node))
        return description

    def start(self, request: BuildRequest) -> int:
        """Submit the build's job; its cluster id (0 when its checkout failed: the
        build has ended, :meth:`finish` says how)."""
        workspace = None
        if request.scm is not None and request.command is not None:
            workspace = self.workspace(request)
            if isinstance(workspace, ScmError):
                self._ended[request.trigger_id] = LocalOutcome(128, str(workspace),
                                                               failure=str(workspace))
                return 0
        return self.pool.submit(self.description(request, workspace),
                                f"submitting {request.task} run(s) "
                                f"{','.join(map(str, request.runs))}")

    def workspace(self, request: BuildRequest) -> Path | ScmError:
        """The checkout of the build's repository made in this cycle for its task (made
        now, by the first build of the task), or why it failed."""
        key = (request.db, request.campaign, request.task, request.scm)
        if key not in self._checkouts:
            scm = request.scm
            parent = self.log_dir / "workspace" / request.db / request.campaign / request.task
            folder = parent / f"{(scm.commit or 'tip')[:12]}-{request.trigger_id[:8]}"
            self.pool.make_dirs(parent)
            try:
                checkout(scm, folder)
            except ScmError as err:
                shutil.rmtree(folder, ignore_errors=True)
                self._checkouts[key] = err
                return err
            self.pool.give(folder)
            self._checkouts[key] = folder
            self._prune(parent)
        return self._checkouts[key]

    def _prune(self, parent: Path) -> None:
        """Remove the checkouts of ``parent`` (a task's) not made in this cycle that no
        job in the queue names (all are kept when the queue cannot be read)."""
        try:
            named = {ad.get(WORKSPACE_ATTR) for ad in self.pool.queued(TRIGGER_ATTR).values()}
        except CondorError:
            return
        made = {path for path in self._checkouts.values() if isinstance(path, Path)}
        for folder in parent.iterdir():
            if folder not in made and str(folder) not in named:
                shutil.rmtree(folder, ignore_errors=True)

    def finish(self) -> dict[str, LocalOutcome]:
        """HTCondor jobs run on their own: only the builds whose checkout failed since
        the last call have ended; {trigger id: outcome}."""
        ended, self._ended = self._ended, {}
        return ended

    def cancel(self, ref: BuildRef) -> str:
        """Remove the build's job (DEQUEUED while idle, STOPPED while running), and the
        jobs of a task of many jobs of its runs (STOPPED); GONE when nothing was left.
        A schedd error is raised (CondorError)."""
        fact = self.locate(ref.job, ref.queue_id, ref.build, ref.trigger)
        if fact.state == UNKNOWN:
            raise CondorError(fact.message)
        outcome = GONE
        if fact.state in (WAITING, BUILDING):
            self.pool.remove(f"ClusterId == {fact.queue_id}", f"removing job {fact.queue_id}")
            outcome = DEQUEUED if fact.state == WAITING else STOPPED
        if self.pool.remove_task_jobs(ref.db, ref.campaign, ref.task, ref.runs):
            outcome = STOPPED
        return outcome

    # -- reconciling --

    def prefetch(self, refs: list[BuildRef]) -> None:
        """Read at once what :meth:`locate` will be asked about the builds ``refs`` (a
        campaign's builds in flight): the queue, then the history of those no longer
        queued, one query for them all. An error is left for :meth:`locate` to tell."""
        try:
            queued = self.pool.queued(TRIGGER_ATTR)
            self.pool.history(TRIGGER_ATTR, [ref.trigger for ref in refs
                                             if ref.trigger and ref.trigger not in queued])
        except CondorError:
            pass

    def locate(self, job: str, queue_id: int, build: int, trigger: str) -> Fact:
        """Where the build's job is: in the queue, else in the history, else ABSENT."""
        try:
            queued = self.pool.queued(TRIGGER_ATTR)
            if trigger:
                ad = queued.get(trigger)
            else:   # a row from before trigger ids: by its cluster id
                ad = next((ad for ad in queued.values() if ad["ClusterId"] == queue_id), None)
            if ad is None and (trigger or queue_id):
                attr, value = (TRIGGER_ATTR, trigger) if trigger else ("ClusterId",
                                                                         int(queue_id))
                ad = self.pool.history(attr, [value]).get(value)
            if ad is None:
                return Fact(ABSENT)
            return self._fact(ad)
        except CondorError as err:
            return Fact(UNKNOWN, message=str(err))

    def _fact(self, ad: dict) -> Fact:
        cluster = int(ad["ClusterId"])
        state, ok, message = outcome(self.pool, ad)
        if state == WAITING:
            return Fact(WAITING, queue_id=cluster)
        if state == BUILDING:
            return Fact(BUILDING, queue_id=cluster, build=cluster)
        if state == FINISHED:
            return Fact(FINISHED, queue_id=cluster, build=cluster,
                        result="SUCCESS" if ok else "FAILURE", message=message)
        return Fact(UNKNOWN, message=message)


def outcome(pool: CondorPool, ad: dict) -> tuple[str, bool, str]:
    """What a job ad says: (WAITING, BUILDING, FINISHED or UNKNOWN, succeeded, why).

    A held job is removed here, so that it does not wait in the queue for ever.
    """
    cluster = int(ad["ClusterId"])
    name = f"HTCondor job {cluster}.{ad.get('ProcId', 0)}"
    status = ad.get("JobStatus")
    if status == IDLE:
        return WAITING, False, ""
    if status in (RUNNING, TRANSFERRING, SUSPENDED):
        return BUILDING, False, ""
    if status == COMPLETED:
        if ad.get("ExitBySignal"):
            return FINISHED, False, (f"{name} killed by signal {ad.get('ExitSignal')} "
                                     "without a report from the workflow")
        code = ad.get("ExitCode")
        return FINISHED, code == 0, (f"{name} exited with code {code} without a report "
                                     "from the workflow")
    if status == HELD:
        reason = ad.get("HoldReason") or "no reason given"
        pool.remove(f"ClusterId == {cluster} && ProcId == {ad.get('ProcId', 0)}",
                    f"removing held job {cluster}")
        return FINISHED, False, f"{name} held ({reason}); removed"
    if status == REMOVED:
        reason = ad.get("RemoveReason") or "no reason given"
        if TIMEOUT_ATTR in reason:   # the periodic_remove of a build's timeout
            reason = f"killed at its timeout of {ad.get(TIMEOUT_ATTR, 0) / 60:g} min"
        return FINISHED, False, f"{name} removed: {reason}"
    return UNKNOWN, False, f"{name}: unexpected JobStatus {status!r}"
