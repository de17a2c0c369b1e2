"""Where builds run: Jenkins (production) or subprocesses on this machine (local).

The scheduler asks an executor two things: start a build (:meth:`start`), and
where a build it started earlier is now (:meth:`locate`, answered with a
:class:`Fact`). Both executors run the same job-side wrapper
(``ecalautomation.py ... run --task T --runs R -- bash -c COMMAND``), which
reports ``running`` and ``done``/``failed`` itself; the executor only tells the
scheduler what became of builds whose wrapper did not report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple
from urllib.parse import quote

import requests

from .errors import (ConfigError, EcalError, JenkinsError, JenkinsNotFound, JenkinsTimeout,
                     JenkinsUnreachable)
from .names import job_name
from .settings import Settings, current

if TYPE_CHECKING:
    import jenkins

    from .workflows import Scm

#: where builds run (``scheduler.make_executor`` makes one by name)
EXECUTORS = ("jenkins", "local", "htcondor")
#: the parameter carrying the unique id of a trigger, to find its build again
TRIGGER_PARAMETER = "TRIGGER_ID"
#: builds a job lists in ``builds`` (Jenkins' ``Job.getNewBuilds``: the newest 100)
RECENT_BUILDS = 100
#: builds searched through ``allBuilds`` once the newest 100 did not hold a build
#: (each is loaded from disk by Jenkins: bounded)
ALL_BUILDS = 2000
#: the fields of a build the scheduler reads (``tree=``: nothing else is sent)
BUILD_FIELDS = "number,url,building,result,queueId"
#: ... and, in a listing searched for a queue id or a trigger id, its parameters
LISTED_BUILD = BUILD_FIELDS + ",actions[parameters[name,value]]"
#: the only action whose ``parameters`` are the build's own (others, such as a
#: trigger plugin's record of another build, carry parameters too)
PARAMETERS_ACTION = "hudson.model.ParametersAction"

# where a build is, as far as the executor knows
WAITING = "waiting"        # in the queue
CANCELLED = "cancelled"    # removed from the queue before it started
BUILDING = "building"      # started, not finished
FINISHED = "finished"      # over, with a result
ABSENT = "absent"          # no trace of it
FOREIGN = "foreign"        # started by another executor: not ours to judge
UNKNOWN = "unknown"        # the executor could not tell (an error)


# what cancelling a build did
DEQUEUED = "dequeued"      # taken out of the queue before it started
STOPPED = "stopped"        # stopped (Jenkins) or killed (local) while running
GONE = "not running"       # nothing left to stop: over, or never started


class BuildRef(NamedTuple):
    """A build in flight as a campaign's rows know it: enough to find it and cancel it."""

    db: str
    campaign: str
    task: str
    runs: tuple[int, ...]
    queue_id: int = 0
    build: int = 0
    trigger: str = ""

    @classmethod
    def of(cls, db: str, campaign: str, flight) -> "BuildRef":
        """The build of a :class:`~ecaljenkins.scheduler.state.Flight` (its rows share
        the ids of their first)."""
        first = flight.rows[0]
        return cls(db, campaign, flight.task, tuple(row.run for row in flight.rows),
                   first.queue_id or 0, first.build or 0, first.trigger or "")

    @property
    def job(self) -> str:
        return job_name(self.db, self.campaign, self.task)


class Fact(NamedTuple):
    """What the executor knows about one build in flight."""

    state: str
    queue_id: int = 0
    build: int = 0
    url: str = ""
    result: str = ""
    message: str = ""


@dataclass(frozen=True)
class BuildRequest:
    """One build to start: a task of a campaign over one run or a group of runs."""

    db: str
    campaign: str
    task: str
    runs: tuple[int, ...]
    trigger_id: str
    attempt: int
    #: the workflow's command (None when the task has no definition any more)
    command: str | None
    #: minutes after which the build is killed (the Jenkins job's build-timeout)
    timeout_minutes: float | None = None
    #: a fill/era group (RUNS), even of one run, rather than one run (RUN_NUMBER)
    grouped: bool = False
    #: the workflow's repository (local builds check it out as the Jenkins job does)
    scm: "Scm | None" = None
    #: the workflow's ``node`` (a Jenkins label; on HTCondor, see condor.node_commands)
    node: str | None = None

    @property
    def job(self) -> str:
        return job_name(self.db, self.campaign, self.task)

    def parameters(self) -> dict[str, str]:
        """The Jenkins job's parameters: RUN_NUMBER for one run, RUNS for a fill/era group."""
        params = {"CAMPAIGN": self.campaign, "DB": self.db, "TASK": self.task,
                  TRIGGER_PARAMETER: self.trigger_id}
        if not self.grouped:
            params["RUN_NUMBER"] = str(self.runs[0])
        else:
            params["RUNS"] = ",".join(map(str, self.runs))
        return params


class LocalOutcome(NamedTuple):
    """How a build ended on this machine: the wrapper's exit status and what it said on
    stderr; or, with ``failure``, why it ended before its wrapper ran (a failed
    checkout of its workflow's repository, here or for an HTCondor job)."""

    code: int
    stderr: str
    timed_out: bool = False
    failure: str = ""

    @property
    def reason(self) -> str:
        """Why the rows are failed when the wrapper could not report."""
        if self.failure:
            return self.failure
        if self.timed_out:
            return "local build killed at its timeout"
        return f"local build exited with code {self.code} without a report"


def _build_fact(info: dict) -> Fact:
    number, url = int(info.get("number") or 0), info.get("url") or ""
    if info.get("building") or not info.get("result"):
        return Fact(BUILDING, build=number, url=url)
    return Fact(FINISHED, build=number, url=url, result=info["result"])


def _parameters(item: dict) -> dict:
    """The parameters of a queue item or build, from its ParametersAction (actions
    may be ``{}``, or another action with a ``parameters`` key)."""
    return {p.get("name"): p.get("value") for action in item.get("actions") or ()
            if isinstance(action, dict) and action.get("_class") == PARAMETERS_ACTION
            for p in action.get("parameters") or () if isinstance(p, dict)}


def _queue_id(location: str) -> int:
    """The queue item id of its URL (``.../queue/item/25/``)."""
    try:
        return int(location.rstrip("/").rsplit("/", 1)[-1])
    except ValueError:
        raise JenkinsError(f"Jenkins answered a trigger with {location!r}, not the URL of "
                           "a queue item") from None


class JenkinsExecutor:
    """Builds on Jenkins, through python-jenkins (``buildWithParameters``).

    Answers are cached for one cycle (the queue listing, a job's recent
    builds); after Jenkins failed to answer once (a timeout, or no connection),
    the rest of the cycle does not wait on it again. python-jenkins (and
    ``requests`` behind it) is imported only when this executor is made, so a
    dry run or a local cycle does not pay for it.
    """

    name = "jenkins"

    def __init__(self, server: jenkins.Jenkins | None = None, settings: Settings | None = None):
        from .jenkins_server import connect_jenkins, jenkins_errors
        settings = current(settings)
        self.server = server or connect_jenkins(settings)
        self.token = settings.jenkins_api_token
        self._errors = jenkins_errors
        self.new_cycle()

    def new_cycle(self) -> None:
        """Forget what Jenkins said in the previous cycle (and that it was down)."""
        self.down: str | None = None
        self._queue: list[dict] | None = None
        self._listed: dict[tuple[str, str], list[dict]] = {}

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """One request, its failure one of the typed Jenkins errors. After a timeout or
        no connection, the later requests of the cycle are not sent: they fail at
        once with JenkinsUnreachable (not carried out), quoting the first failure."""
        if self.down:
            raise JenkinsUnreachable(self.down)
        try:
            with self._errors(action, self.server.server, self.token):
                yield
        except (JenkinsTimeout, JenkinsUnreachable) as err:
            self.down = f"{err} (Jenkins is not asked again in this cycle)"
            raise type(err)(self.down) from None

    def _get(self, path: str, action: str) -> dict | None:
        """GET a JSON document of Jenkins; None when it does not exist (404)."""
        try:
            with self._call(action):
                text = self.server.jenkins_open(
                    requests.Request("GET", self.server.server.rstrip("/") + "/" + path))
        except JenkinsNotFound:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise JenkinsError(f"Jenkins {self.server.server}: {action}: the answer is not "
                               "JSON (a proxy or login page?)") from None

    def start(self, request: BuildRequest) -> int:
        """Trigger the build; its queue item id.

        The parameters go in the request body, not the URL as python-jenkins'
        ``build_job`` puts them: the RUNS of an era group pass the URL limits of
        Jenkins (Jetty: 8 kB) and its proxies. A trigger identical to a waiting
        item is answered ``303 See Other`` to that item (Jenkins >= 2.308), whose
        URL has no page: the build is already queued, and that item is the one
        recorded.
        """
        url = f"{self.server.server.rstrip('/')}/job/{quote(request.job)}/buildWithParameters"
        merged: list[str] = []

        def note_redirect(response, *args, **kwargs):
            if response.status_code == 303:
                merged.append(response.headers.get("Location") or "")

        post = requests.Request("POST", url, data=request.parameters(),
                                hooks={"response": note_redirect})
        try:
            with self._call(f"triggering job {request.job}"):
                response = self.server.jenkins_request(post)
        except JenkinsNotFound:
            if not merged:   # the job does not exist
                raise
            return _queue_id(merged[0])
        location = merged[0] if merged else response.headers.get("Location")
        if not location:
            raise JenkinsError(f"Jenkins {self.server.server}: triggering job {request.job}: "
                               "no queue item in the answer (no Location header)")
        return _queue_id(location)

    def finish(self) -> dict[str, LocalOutcome]:
        """Jenkins builds run on their own: nothing to wait for."""
        return {}

    def locate(self, job: str, queue_id: int, build: int, trigger: str) -> Fact:
        """Where the build is: by build number, else queue item, else in the job's
        builds by queue id or trigger id.

        Jenkins answers for a queue item only about 5 minutes after it left the
        queue, so at a 10-minute cadence a started or cancelled item is usually
        gone (404): its build is then searched in the job's builds, by queue id
        and by trigger id. An item Jenkins took (a queue id) that left no build
        was cancelled (Jenkins keeps its queue across restarts). Only a trigger
        without a queue id (never sent, or its answer lost) can be ABSENT.
        """
        try:
            if build:
                info = self._get(f"job/{quote(job)}/{build}/api/json?tree={BUILD_FIELDS}",
                                 f"reading build {build} of job {job}")
                if info is not None:
                    return _build_fact(info)
            elif queue_id:
                item = self._get(f"queue/item/{queue_id}/api/json",
                                 f"reading queue item {queue_id} of job {job}")
                if item is not None:
                    return self._queue_fact(job, queue_id, item)
            elif trigger:
                waiting = self._queued(job, trigger)
                if waiting is not None:
                    return waiting
            found = self._find(job, queue_id, trigger)
            if found is not None:
                return _build_fact(found)
            if queue_id and not build:
                return Fact(CANCELLED, queue_id=queue_id,
                            message=f"queue item {queue_id} left the queue without a build")
            return Fact(ABSENT)
        except JenkinsError as err:
            return Fact(UNKNOWN, message=str(err))

    def cancel(self, ref: BuildRef) -> str:
        """Cancel a build: its queue item while it waits, else stop it while it runs.

        A queue item that started meanwhile is stopped as a build. Returns
        DEQUEUED, STOPPED or GONE (over, or no trace); Jenkins errors are raised.
        """
        fact = self.locate(ref.job, ref.queue_id, ref.build, ref.trigger)
        if fact.state == WAITING:
            with self._call(f"cancelling queue item {fact.queue_id} of job {ref.job}"):
                self.server.cancel_queue(fact.queue_id)
            fact = self.locate(ref.job, fact.queue_id, 0, "")
            if fact.state == WAITING:
                raise JenkinsError(f"Jenkins {self.server.server}: queue item {fact.queue_id} "
                                   f"of job {ref.job} still waits after cancelling it")
            if fact.state in (CANCELLED, ABSENT):
                return DEQUEUED
        if fact.state == UNKNOWN:
            raise JenkinsError(fact.message)
        if fact.state == BUILDING:
            with self._call(f"stopping build {fact.build} of job {ref.job}"):
                self.server.stop_build(ref.job, fact.build)
            return STOPPED
        return GONE

    def _queue_fact(self, job: str, queue_id: int, item: dict) -> Fact:
        """A queue item as Jenkins answers for it: waiting (quiet period), blocked or
        buildable; or left: cancelled, started (``executable``), or starting
        (``executable`` still null for a moment)."""
        if item.get("cancelled"):
            return Fact(CANCELLED, queue_id=queue_id)
        started = item.get("executable")
        if not isinstance(started, dict) or not started.get("number"):
            return Fact(WAITING, queue_id=queue_id)
        info = self._get(f"job/{quote(job)}/{started['number']}/api/json?tree={BUILD_FIELDS}",
                         f"reading build {started['number']} of job {job}")
        return _build_fact(info or started)

    def _queued(self, job: str, trigger: str) -> Fact | None:
        """The waiting queue item carrying ``trigger`` (the queue read once a cycle)."""
        if self._queue is None:
            with self._call("reading the build queue"):
                self._queue = self.server.get_queue_info()
        for item in self._queue:
            if (item.get("task") or {}).get("name") == job and \
                    _parameters(item).get(TRIGGER_PARAMETER) == trigger:
                return Fact(WAITING, queue_id=int(item["id"]))
        return None

    def _find(self, job: str, queue_id: int, trigger: str) -> dict | None:
        """The build of ``queue_id`` or ``trigger`` among the job's newest 100
        (``builds``), then among its :data:`ALL_BUILDS` newest (``allBuilds``,
        which Jenkins gives only through ``tree=``); None if neither holds it."""
        def ours(build: dict) -> bool:
            return bool(queue_id and build.get("queueId") == queue_id) or \
                bool(trigger and _parameters(build).get(TRIGGER_PARAMETER) == trigger)

        recent = self._listing(job, "builds", f"builds[{LISTED_BUILD}]")
        found = next(filter(ours, recent), None)
        if found is None and len(recent) >= RECENT_BUILDS:
            older = self._listing(job, "allBuilds", f"allBuilds[{LISTED_BUILD}]"
                                                    f"{{{RECENT_BUILDS},{ALL_BUILDS}}}")
            found = next(filter(ours, older), None)
        return found

    def _listing(self, job: str, field: str, tree: str) -> list[dict]:
        """The job's ``field`` (builds, allBuilds) through ``tree``, read once a cycle."""
        if (job, field) not in self._listed:
            info = self._get(f"job/{quote(job)}/api/json?tree={tree}", f"reading job {job}")
            if info is None:
                raise JenkinsNotFound(f"Jenkins {self.server.server}: job {job} does not exist",
                                      404)
            self._listed[(job, field)] = [b for b in info.get(field) or ()
                                          if isinstance(b, dict)]
        return self._listed[(job, field)]


class LocalExecutor:
    """Builds as subprocesses of this machine, ``jobs`` at a time.

    A cycle starts its builds and waits for all of them (:meth:`finish`), so a
    build of an earlier cycle still in flight had its scheduler interrupted: it
    has no trace here. The log of each build is
    ``<log_dir>/<db>/<campaign>/<task>/<run>-<attempt>.log``.
    """

    name = "local"

    def __init__(self, jobs: int = 2, log_dir: str | os.PathLike = "logs",
                 env: dict | None = None):
        if jobs < 1:
            raise ConfigError(f"invalid number of parallel local builds {jobs}: use 1 or more")
        self.log_dir = Path(log_dir)
        self.env = dict(os.environ if env is None else env)
        # the wrapper takes a build number from these: a scheduler running inside a
        # Jenkins build must not lend its own to the local builds; and a workflow
        # has no use for the Jenkins API token (a Jenkins build does not get it)
        for key in ("BUILD_NUMBER", "BUILD_URL", "JENKINS_API_TOKEN"):
            self.env.pop(key, None)
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ecal-local")
        self._running: dict[str, Future] = {}

    def new_cycle(self) -> None:
        """Each cycle waits for its own builds: nothing is carried over."""

    def log_path(self, request: BuildRequest) -> Path:
        return (self.log_dir / request.db / request.campaign / request.task
                / f"{request.runs[0]}-{request.attempt}.log")

    def start(self, request: BuildRequest) -> int:
        """Queue the build on the local pool; local builds have no queue id (0)."""
        if request.command is None:
            raise ConfigError(f"task {request.task!r} has no workflow definition: "
                              "no command to run locally")
        argv = [sys.executable, *_wrapper_args(request.db, request.campaign, request.task,
                                                request.runs),
                "--log", str(self.log_path(request).resolve()),
                "--", "bash", "-c", request.command]
        timeout = None if request.timeout_minutes is None else request.timeout_minutes * 60
        workspace = None if request.scm is None else (
            self.log_dir.resolve() / "workspace" / request.db / request.campaign / request.task
            / f"{request.runs[0]}-{request.attempt}-{request.trigger_id[:8]}")
        self._running[request.trigger_id] = self._pool.submit(
            self._run, argv, timeout, request.scm, workspace)
        return 0

    def _run(self, argv: list[str], timeout: float | None, scm=None,
             workspace: Path | None = None) -> LocalOutcome:
        """Run one build in its own process group, killed whole at its timeout; in a fresh
        checkout of the workflow's repository when it has one."""
        cwd = None
        if scm is not None:
            from .workflows import checkout
            try:
                cwd = checkout(scm, workspace)
            except EcalError as err:
                return LocalOutcome(128, str(err), failure=str(err))
        try:
            proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, cwd=cwd,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, errors="replace", start_new_session=True)
        except OSError as err:
            return LocalOutcome(127, f"cannot start the build wrapper: {err.strerror}")
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            return LocalOutcome(proc.returncode, stderr.strip(), timed_out=True)
        return LocalOutcome(proc.returncode, stderr.strip())

    def finish(self) -> dict[str, LocalOutcome]:
        """Wait for every build started since the last call; {trigger id: outcome}."""
        done = {trigger: future.result() for trigger, future in self._running.items()}
        self._running.clear()
        return done

    def cancel(self, ref: BuildRef) -> str:
        """Kill a local build of this machine (its wrapper's process group, found in /proc).

        A build with Jenkins ids is not ours: FOREIGN. Returns STOPPED or GONE.
        """
        if ref.queue_id or ref.build:
            return FOREIGN
        wanted = _wrapper_args(ref.db, ref.campaign, ref.task, ref.runs)
        stopped = False
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:   # gone meanwhile, or not ours to read
                continue
            if [arg.decode(errors="replace") for arg in argv[1:len(wanted) + 1]] == wanted:
                try:   # the wrapper leads its own session: its group is the whole build
                    os.killpg(int(proc.name), signal.SIGKILL)
                    stopped = True
                except (ProcessLookupError, PermissionError):
                    pass
        return STOPPED if stopped else GONE

    def locate(self, job: str, queue_id: int, build: int, trigger: str) -> Fact:
        """A Jenkins build is not ours; a local one of an earlier cycle is gone."""
        if queue_id or build:
            return Fact(FOREIGN, message=f"in Jenkins (job {job}): reconcile it with "
                                         "--executor jenkins")
        return Fact(ABSENT)


def _wrapper_args(db: str, campaign: str, task: str, runs) -> list[str]:
    """The build wrapper's arguments that name its build (after the interpreter)."""
    return ["-m", "ecaljenkins.cli.automation", "--db", db, "--campaign", campaign, "run",
            "--task", task, "--runs", ",".join(map(str, runs))]

