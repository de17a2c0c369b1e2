"""Cancel a campaign's builds: stop them where they run, and say what the rows become.

``ecalrunctrl.py cancel --campaign C [--task T]`` finds the campaign's builds in
flight (rows ``queued`` or ``running``, one build per trigger id), asks the
executor to cancel each (:meth:`cancel` of the Jenkins, local or any later
executor: a queue item is cancelled, a running build stopped, a local build's
processes killed), then writes every changed row in one write, with a ``job``
event per row so ``history`` shows who cancelled what:

* ``to="failed"`` (default): the rows are ``failed`` with reason "cancelled by
  USER" and count as out of retries, so the scheduler leaves them alone until a
  ``reprocess``;
* ``to="new"``: the rows go back to ``new`` with their attempt given back, as
  for a queue item cancelled in Jenkins: the next cycle builds them again.

A (run, task) of a task of many jobs (its build over, its rows rolled up from
its HTCondor jobs) has those jobs removed from the schedd, whatever the executor
of its build. Every cancelled row starts its jobs afresh (``jobs_since``, as
``reprocess`` does): the scheduler neither checks nor resubmits the jobs of
before the cancel.

A build the executor could not reach keeps its rows as they are (the error is
reported); a build another executor started (a Jenkins build, cancelled with
the local executor) too, with a warning.
"""

from __future__ import annotations

import getpass
import time
from collections import Counter
from dataclasses import dataclass, field

from .campaign import RunCtrl
from .errors import ConfigError, EcalError, InputError, NotFound
from .executors import FOREIGN, BuildRef
from .names import did_you_mean
from .schema import IN_FLIGHT, Status, job_point, run_point
from .scheduler.state import Flight, read_state
from .workflows import Workflow

#: what cancelled rows may become
TARGETS = (Status.FAILED, Status.NEW)


@dataclass
class CancelSummary:
    """What ``cancel`` did: executor outcomes per build, the rows changed, the rest."""

    #: executor outcome (DEQUEUED, STOPPED, GONE of :mod:`.executors`) -> builds
    builds: Counter = field(default_factory=Counter)
    #: (task, run) of every row set to the target status
    rows: list[tuple[str, int]] = field(default_factory=list)
    #: HTCondor jobs of tasks of many jobs removed from the schedd
    jobs: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def cancel(ctrl: RunCtrl, executor_factory, task: str | None = None,
           to: str = Status.FAILED, pool_factory=None) -> CancelSummary:
    """Cancel the builds in flight of the campaign (of ``task`` only, if given), and the
    jobs of its tasks of many jobs.

    ``executor_factory()`` makes the executor, ``pool_factory()`` the
    :class:`~ecaljenkins.condor.CondorPool` of the jobs (default: the schedd of
    ``CONDOR_CONFIG``); each is called only when there is something for it, so a
    campaign with nothing in flight needs neither Jenkins nor HTCondor.
    """
    if to not in TARGETS:
        raise InputError(f"invalid status {to!r} for cancelled builds: use "
                         f"{' or '.join(TARGETS)}")
    camp = ctrl.info()
    state = read_state(ctrl.influx, camp)
    if task is not None and task not in state.rows and task not in camp.active_tasks:
        raise NotFound(f"task {task!r} is not in campaign {ctrl.campaign!r}"
                       + did_you_mean(task, set(state.rows) | camp.active_tasks))
    flights = [f for f in state.flights() if task in (None, f.task)]
    with_jobs = []   # rows rolled up from the HTCondor jobs of a task (its build over)
    for name, rows in state.rows.items():
        jobs_rows = tuple(row for row in rows if row.status in IN_FLIGHT and row.jobs)
        if jobs_rows and task in (None, name):
            with_jobs.append(Flight(name, jobs_rows))
    summary = CancelSummary()
    if not (flights or with_jobs):
        return summary
    user = ctrl.influx.user or getpass.getuser()
    cancelled = []
    if flights:
        cancelled += _cancel_builds(ctrl, executor_factory(), flights, summary)
    if with_jobs:
        cancelled += _remove_jobs(ctrl, pool_factory or _default_pool, with_jobs, summary)
    now, now_ns = time.time(), time.time_ns()
    points = []
    for flight in cancelled:
        exhausted = _exhausted(camp.workflows.get(flight.task))
        for row in flight.rows:
            if to == Status.NEW:
                fields = {"attempt": max((row.attempt or 0) - 1, 0), "queue_id": 0,
                          "build": 0, "trigger": "", "reason": ""}
            else:
                fields = {"attempt": max(row.attempt or 0, exhausted),
                          "reason": f"cancelled by {user}"}
            points.append(run_point(ctrl.campaign, flight.task, row.run, to, now, jobs=0,
                                    jobs_since=now_ns, **fields))
            points.append(job_point(ctrl.campaign, flight.task, row.run, to,
                                    now_ns + len(points), reason=f"cancelled by {user}"))
            summary.rows.append((flight.task, row.run))
    ctrl.influx.write(points)
    return summary


def _cancel_builds(ctrl: RunCtrl, executor, flights: list[Flight],
                   summary: CancelSummary) -> list[Flight]:
    """Cancel each build with its executor; the flights whose rows are to change."""
    cancelled = []
    for flight in flights:
        ref = BuildRef.of(ctrl.influx.db, ctrl.campaign, flight)
        runs = ",".join(map(str, ref.runs))
        try:
            outcome = executor.cancel(ref)
        except EcalError as err:
            summary.errors.append(f"{flight.task} run(s) {runs} left as they are: {err}")
            continue
        if outcome == FOREIGN:
            summary.warnings.append(f"{flight.task} run(s) {runs}: built in Jenkins, not "
                                    "here: cancel them with --executor jenkins")
            continue
        summary.builds[outcome] += 1
        cancelled.append(flight)
    return cancelled


def _remove_jobs(ctrl: RunCtrl, pool_factory, groups: list[Flight],
                 summary: CancelSummary) -> list[Flight]:
    """Remove from the schedd the jobs of the rows of tasks of many jobs; the groups
    whose rows are to change (none when the schedd cannot be reached)."""
    try:
        pool = pool_factory()
        for group in groups:
            summary.jobs += pool.remove_task_jobs(ctrl.influx.db, ctrl.campaign, group.task,
                                                  [row.run for row in group.rows])
    except EcalError as err:
        summary.errors.append(f"the jobs of {', '.join(g.task for g in groups)} left as "
                              f"they are: {err}")
        return []
    return groups


def _default_pool():
    from .condor import CondorPool
    return CondorPool()


def _exhausted(definition: str | None) -> int:
    """The attempt at which a row of this workflow is out of retries (never retried)."""
    try:
        return Workflow.from_json(definition).max_retries + 1 if definition else 0
    except ConfigError:
        return 0
