"""The job side of a (run, task): what a build reports, and the wrapper that reports it.

A build reports ``running`` when it starts and ``done`` or ``failed`` when it
ends: :func:`run_build` is that lifecycle, the one the build wrapper
(``ecalautomation.py run``) and :class:`~ecaljenkins.handler.Handler` both use.
Each report is kept twice, in one write: a ``job`` event point (the history
Grafana plots, stamped with the wall clock) and the (run, task) ``run`` point
the scheduler reads, overwritten in place (see docs/schema.md).

Builds report from Jenkins agents, where InfluxDB may be briefly unreachable:
:func:`reporting_influx` gives a client that keeps retrying for a bounded time,
so a short outage does not turn a finished build into a failed one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Mapping

from .campaign import RunCtrl
from .errors import EcalError, InputError, NotFound, ServerError
from .influx import Influx
from .names import check_name, did_you_mean, quote_str
from .schema import (FRESH_ATTEMPT, IN_FLIGHT, REPORT_STATUSES, RESERVED_FIELDS, Status,
                     job_point, run_point)
from .settings import REASON_ENV, WRAPPER_ENV, BuildEnv, Settings, current

#: longest failure reason recorded (the first line of the exception)
MAX_REASON = 500
FIELD_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_FIELD_VALUE = 4096


def parse_fields(items: Iterable[str]) -> dict[str, str]:
    """``["output:/eos/x.root", "events:12"]`` -> dict, every key and value checked."""
    return check_fields(parse_pairs(items, "field"))


def parse_pairs(items: Iterable[str], what: str) -> dict[str, str]:
    """``["key:value", ...]`` as typed on a command line -> dict (values may hold ':')."""
    pairs = {}
    for item in items or ():
        key, sep, value = item.partition(":")
        if not sep:
            raise InputError(f"invalid {what} {item[:40]!r}: expected key:value")
        pairs[key] = value
    return pairs


def check_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """Keys are simple identifiers, not owned by the lifecycle; values at most 4 kB."""
    for key, value in fields.items():
        if not FIELD_KEY_RE.match(key):
            raise InputError(f"invalid field name {key[:40]!r}: use letters, digits and '_', "
                             "starting with a letter or '_'")
        if key in RESERVED_FIELDS:
            raise InputError(f"field {key!r} is reserved: it is set by the job lifecycle")
        if not isinstance(value, str):
            raise InputError(f"field {key!r}: the value must be text")
        if len(value.encode()) > MAX_FIELD_VALUE:
            raise InputError(f"field {key!r}: the value is longer than {MAX_FIELD_VALUE} bytes")
    return dict(fields)


def reporting_influx(db: str | None, settings: Settings | None = None) -> Influx:
    """The client a build reports with: it retries an unreachable server for a while
    (``ECAL_REPORT_RETRY``)."""
    settings = current(settings)
    return Influx.from_settings(settings, db, retry_seconds=settings.report_retry_seconds)


class Reporter:
    """Reports of the builds of one task of one campaign."""

    def __init__(self, influx: Influx, campaign: str, task: str):
        self.influx = influx
        self.campaign = check_name(campaign, "campaign")
        self.task = check_name(task, "task")
        #: runs already known to have a row of this task (checked once per reporter)
        self._known: set[int] = set()

    def _check_rows(self, runs: list[int]) -> None:
        """Refuse runs without a row of this task in this campaign (one query).

        A report for a mistyped campaign, task or run would otherwise create a
        row that no campaign injected and no scheduler ever looks at.
        """
        wanted = set(runs) - self._known
        if not wanted:
            return
        found = {row["time"] for row in self.influx.select(
            f"SELECT status FROM run WHERE campaign = {quote_str(self.campaign)} AND task = "
            f"{quote_str(self.task)} AND time >= {min(wanted)} AND time <= {max(wanted)}")}
        missing = sorted(wanted - found)
        if missing:
            raise NotFound(f"run {missing[0]} does not have task {self.task!r} in campaign "
                           f"{self.campaign!r} (database {self.influx.db!r})")
        self._known |= wanted

    def report(self, runs: Iterable[int], status: str, build: int | None = None,
               url: str | None = None, fields: Mapping[str, str] | None = None,
               **lifecycle) -> None:
        """Record ``status`` for ``runs`` (a build of a group reports all its runs).

        ``fields`` are the build's own ``key:value`` fields (checked);
        ``lifecycle`` the typed ones the wrapper owns (``exit_code``, ``reason``).
        One write carries the event points and the roll-up into the run rows.
        """
        if status not in REPORT_STATUSES:
            raise InputError(f"invalid reported status {status!r}: use one of "
                             f"{', '.join(REPORT_STATUSES)}")
        runs = [int(run) for run in runs]
        if not runs:
            raise InputError("no run to report")
        extra = dict(check_fields(fields or {}), **lifecycle)
        self._check_rows(runs)
        if status != Status.FAILED:
            extra.setdefault("reason", "")
        if build is not None:
            extra["build"] = int(build)
        if url is not None:
            extra["url"] = url
        now = time.time()
        now_ns = time.time_ns()
        points = []
        for offset, run in enumerate(runs):
            points.append(job_point(self.campaign, self.task, run, status, now_ns + offset,
                                    **extra))
            points.append(run_point(self.campaign, self.task, run, status, now, **extra))
        self.influx.write(points)

    def register_output(self, run: int, path: str) -> None:
        """Record the file a build produced for ``run``: downstream tasks read it."""
        check_fields({"output": str(path)})
        self._check_rows([int(run)])
        self.influx.write([run_point(self.campaign, self.task, run, None, time.time(),
                                     output=str(path))])


# --- the lifecycle of a build ------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """How the work of a build ended: ``done`` or ``failed``, and the fields reported.

    ``code`` is the exit status the build ends with.
    """

    status: Status
    fields: dict = field(default_factory=dict)
    code: int = 0

    @classmethod
    def of_exit(cls, code: int, said: str = "", **fields) -> "Outcome":
        """A command's exit status: 0 is done, anything else failed, with the reason the
        command gave (``said``: a Handler's exception) or "exit code N"."""
        if code == 0:
            return cls(Status.DONE, dict(fields, exit_code=0), 0)
        return cls(Status.FAILED, dict(fields, exit_code=code,
                                       reason=(said or f"exit code {code}")[:MAX_REASON]), code)

    @classmethod
    def of_exception(cls, err: BaseException) -> "Outcome":
        """The work raised: failed, with "<Type>: <first line>" as the reason."""
        first = (str(err).strip().splitlines() or [""])[0]
        return cls(Status.FAILED, {"reason": f"{type(err).__name__}: {first}"[:MAX_REASON]},
                   1)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_build(reporter: Reporter | None, runs: list[int], work: Callable[[], Outcome], *,
              build: int | None = None, url: str | None = None,
              say: Callable[[str], None] = _to_stderr) -> Outcome:
    """Report ``running``, do ``work``, report its outcome: the lifecycle of a build.

    One policy for every build, whether the wrapper runs a command or a Handler
    processes runs:

    * bad input at the first report (a campaign, task or run without a row)
      stops the build before the work: the error is raised;
    * a report InfluxDB cannot take, even after the reporter's retries
      (:class:`~ecaljenkins.errors.ServerError`), is a warning, never a change of
      the build's result: the work still runs and its outcome is the build's
      exit status. The scheduler then takes the result from the executor
      (Jenkins' build result, a local build's exit status);
    * ``work`` raising is a failed outcome with the exception's first line as
      the reason (our own typed errors in one line, anything else with its
      traceback, for the build log).

    ``reporter`` None: the build wrapper reports this build, only the work runs.
    ``say`` shows a one-line warning or error (the build's stderr by default).
    """
    def report(status: Status, **fields) -> None:
        if reporter is None:
            return
        try:
            reporter.report(runs, status, build=build, url=url, **fields)
        except ServerError as err:
            say(f"warning: could not report {reporter.task} {status} for run(s) "
                 f"{','.join(map(str, runs))}: {err} (the scheduler will take the result "
                 "from Jenkins or the local executor)")

    report(Status.RUNNING)
    try:
        outcome = work()
    except Exception as err:  # the work's own failure: reported, not raised
        if isinstance(err, EcalError):
            say(f"error: {err}")
        else:
            traceback.print_exc()
        outcome = Outcome.of_exception(err)
    report(outcome.status, **outcome.fields)
    return outcome


# --- reprocessing ------------------------------------------------------------------

@dataclass
class ReprocessSummary:
    reset: list[int] = field(default_factory=list)
    #: runs whose build is queued or running: resetting them would start a second one
    in_flight: list[int] = field(default_factory=list)
    #: how the task groups its runs; ``group_runs``: runs reset because a run of
    #: their fill/era group was (a group is always built whole)
    group_by: str = "run"
    group_runs: list[int] = field(default_factory=list)
    #: runs whose run types no longer have the task: left alone, never scheduled
    inactive: list[int] = field(default_factory=list)
    #: with_dependents: {dependent task: its runs reset too}
    dependents: dict[str, list[int]] = field(default_factory=dict)
    #: without: {dependent task: its runs left on the old outputs (not new)}
    dependents_left: dict[str, list[int]] = field(default_factory=dict)


def reprocess(ctrl: RunCtrl, task: str, runs: Iterable[int] | None = None,
              status: str | None = None, with_dependents: bool = False) -> ReprocessSummary:
    """Reset ``task`` to ``new`` (attempts 0) for some runs, the runs in ``status``, or all.

    A fill/era-grouped task has whole groups reset: a run brings the rest of its
    group (``group_runs``). Runs whose run types no longer have the task are left
    alone (``inactive``), as the scheduler would never build them. The tasks
    depending on ``task`` (directly or not) are reset for the same runs, their own
    groups included, with ``with_dependents``; otherwise the ones not ``new`` are
    named in ``dependents_left``. Runs with a build in flight are left alone
    (``in_flight``). Named runs that do not have the task are an error, before
    anything is written. A task of many jobs starts afresh: the old attempt's jobs
    no longer count (``jobs_since``, :mod:`ecaljenkins.taskjobs`). Two queries and
    one write.
    """
    from .workflows import Workflow   # the build side does not load the catalogue code
    check_name(task, "task")
    camp = ctrl.info()
    by_task: dict[str, dict[int, dict]] = {}
    for row in ctrl.task_rows(fields="status, fill, era"):
        by_task.setdefault(row["task"], {})[row["time"]] = row
    current = by_task.get(task, {})
    if not current and task not in camp.active_tasks:
        known = set(by_task) | camp.active_tasks
        raise NotFound(f"task {task!r} is not in campaign {ctrl.campaign!r}"
                       + did_you_mean(task, known))
    if runs is not None:
        wanted = sorted(set(int(run) for run in runs))
        missing = [run for run in wanted if run not in current]
        if missing:
            raise NotFound(f"run {missing[0]} does not have task {task!r} in campaign "
                           f"{ctrl.campaign!r}")
    else:
        wanted = sorted(run for run, row in current.items()
                        if status in (None, row["status"]))
    workflows = {name: Workflow.from_json(text) for name, text in camp.workflows.items()}
    rtypes = {row["time"]: row.get("rtypes") or "" for row in ctrl.influx.select(
        f"SELECT rtypes FROM runinfo WHERE campaign = {quote_str(ctrl.campaign)}")}
    summary = ReprocessSummary(group_by=_group_by(workflows, task))

    def select(name: str, chosen) -> tuple[list[int], list[int]]:
        """(runs of ``name`` to reset: ``chosen`` and the rest of their groups, runs
        left alone by the rule)."""
        rows = by_task.get(name, {})
        group_by = _group_by(workflows, name)
        chosen = {run for run in chosen if run in rows}
        if group_by != "run":
            keys = {_group_key(rows[run], group_by) for run in chosen}
            chosen |= {run for run, row in rows.items() if _group_key(row, group_by) in keys}
        has = [run for run in chosen if name in camp.tasks_of_run(rtypes.get(run))]
        return sorted(has), sorted(chosen - set(has))

    selected, summary.inactive = select(task, wanted)
    summary.group_runs = sorted(set(selected) - set(wanted))
    resets = {task: selected}
    for name in _dependents(workflows, task):
        chosen = set().union(*(resets.get(dep, ()) for dep in workflows[name].depends_on))
        if with_dependents:
            resets[name], _ = select(name, chosen)
            summary.dependents[name] = resets[name]
        else:
            rows = by_task.get(name, {})
            left = sorted(run for run in chosen if run in rows
                          and rows[run]["status"] != Status.NEW)
            if left:
                summary.dependents_left[name] = left
    now = time.time()
    # the jobs of a task of many jobs reported before now are the old attempt's
    # (ecaljenkins.taskjobs): its roll-up, outputs and job counts start again here
    jobs_since = time.time_ns()
    points = []
    for name, chosen in resets.items():
        for run in chosen:
            if by_task[name][run]["status"] in IN_FLIGHT:
                if name == task:
                    summary.in_flight.append(run)
                continue
            if name == task:
                summary.reset.append(run)
            points.append(run_point(ctrl.campaign, name, run, Status.NEW, now, attempt=0,
                                    jobs_since=jobs_since, **FRESH_ATTEMPT))
    ctrl.influx.write(points)
    return summary


def _group_by(workflows: dict, task: str) -> str:
    return workflows[task].group_by if task in workflows else "run"


def _group_key(row: dict, group_by: str):
    """A row's fill or era group; a run without a fill is a group of its own."""
    if group_by == "fill":
        return row.get("fill") or ("run", row["time"])
    return row.get("era")


def _dependents(workflows: dict, task: str) -> list[str]:
    """The tasks depending on ``task``, directly or not, each after its dependencies."""
    from graphlib import TopologicalSorter
    graph = {name: wf.depends_on for name, wf in workflows.items()}
    found, ordered = {task}, []
    for name in TopologicalSorter(graph).static_order():
        if name in workflows and any(dep in found for dep in workflows[name].depends_on):
            found.add(name)
            ordered.append(name)
    return ordered


# --- the build wrapper ---------------------------------------------------------------

def build_env(base: Mapping[str, str], db: str, campaign: str, task: str,
              runs: list[int], reason_file: Path | None = None) -> dict[str, str]:
    """The command's environment: the build's, plus what it processes (and where a
    Handler writes why it failed)."""
    env = dict(base)
    env.update(DB=db, CAMPAIGN=campaign, TASK=task, RUNS=",".join(map(str, runs)))
    env[WRAPPER_ENV] = "1"
    env.pop(REASON_ENV, None)
    if reason_file is not None:
        env[REASON_ENV] = str(reason_file)
    if len(runs) == 1:
        env["RUN_NUMBER"] = str(runs[0])
    else:
        env.pop("RUN_NUMBER", None)
    return env


def default_log_path(db: str, campaign: str, task: str, runs: list[int],
                     settings: Settings, build: BuildEnv) -> Path:
    """``$ECAL_LOG_DIR`` (default ``./logs``)/<db>/<campaign>/<task>/<run>-<build>.log."""
    stamp = build.build_number or time.strftime("%Y%m%dT%H%M%S")
    return (Path(settings.log_dir or "logs") / db / campaign / task
            / f"{runs[0]}-{stamp}.log")


def prepare_log(log_path: Path) -> None:
    """Create the log's folder and file now, before the build reports anything.

    A log that cannot be written is bad input (``--log``, ``$ECAL_LOG_DIR``): it
    is refused before the build is reported ``running``.
    """
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.open("ab").close()
    except OSError as err:
        raise InputError(f"cannot write the log {str(log_path)!r}: "
                         f"{err.strerror or err}") from None


def run_command(argv: list[str], env: Mapping[str, str], log_path: Path,
                out: BinaryIO) -> int:
    """Run ``argv``, copying its output to ``out`` and to ``log_path``; its exit status.

    A command that cannot be started exits 127 like in a shell, with the reason
    in the log, so it is reported as a failure of the build, not of the wrapper.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as err:
            message = f"cannot start {argv[0]!r}: {err.strerror}\n".encode()
            log.write(message)
            out.write(message)
            return 127
        with proc.stdout:
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                out.write(chunk)
                out.flush()
                log.write(chunk)
        status = proc.wait()
    return 128 - status if status < 0 else status  # killed by a signal: as a shell says


def unused_log(path: Path) -> Path:
    """``path``, or beside it ``<name>.1.log``, ``.2``... when a log is already there: a
    build never overwrites an earlier build's log (a reprocessing counts its attempts
    from 1 again, a local build names its log by attempt)."""
    candidate, number = path, 0
    while candidate.exists() and candidate.stat().st_size:
        number += 1
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
    return candidate


def said(reason_file: Path) -> str:
    """The last reason a Handler wrote into the wrapper's reason file ("" if none)."""
    try:
        lines = reason_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def tell_wrapper(build: BuildEnv, reason: str) -> None:
    """Under the wrapper, hand it the reason of a failure (the wrapper records it)."""
    if build.wrapped and build.reason_file:
        try:
            with open(build.reason_file, "a", encoding="utf-8") as out:
                out.write(" ".join(reason.split()) + "\n")
        except OSError:
            pass   # the wrapper then records the exit code: the log has the traceback
