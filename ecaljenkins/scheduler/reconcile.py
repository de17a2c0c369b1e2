"""Reconcile: bring the builds in flight up to date with what the executor says.

:func:`decide` is pure (a build's rows and the executor's fact in, the changes
out); :func:`reconcile` asks the executor about every build in flight and writes
all the changes of a campaign at once; :func:`settle_local` does the same for the
local builds that just ended.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import NamedTuple

from ..campaign import Campaign
from ..executors import (ABSENT, BUILDING, CANCELLED, FINISHED, FOREIGN, UNKNOWN, WAITING,
                         BuildRef, Fact)
from ..influx import Influx
from ..names import job_name
from ..schema import Status, job_point, run_point
from .plan import Build
from .report import CampaignReport
from .state import CampaignState, Row, read_state

#: seconds before a build in flight without any trace in Jenkins counts as lost
GRACE_SECONDS = 300.0


class Change(NamedTuple):
    """A new state for a (run, task); ``event``: also record it as a ``job`` event."""

    task: str
    row: Row
    status: str
    fields: dict
    event: bool = False


class Decision(NamedTuple):
    """What to do about one build in flight: changes to write, start it again, say why."""

    changes: list[Change]
    relaunch: bool = False
    warning: str | None = None
    error: str | None = None


def decide(task: str, rows: tuple[Row, ...], fact: Fact, now: float,
           grace: float = GRACE_SECONDS) -> Decision:
    """What a build in flight (``rows`` share its trigger) becomes, given ``fact``.

    The wrapper inside the build normally reports ``running`` and the outcome
    itself; these transitions cover what it could not report.
    """
    runs = ",".join(str(row.run) for row in rows)
    what = f"{task} run(s) {runs}"
    state = fact.state
    if state == WAITING:
        return Decision([Change(task, row, Status.QUEUED, {"queue_id": fact.queue_id})
                         for row in rows if row.queue_id != fact.queue_id])
    if state == CANCELLED:
        return Decision([Change(task, row, Status.NEW,
                                {"attempt": max((row.attempt or 0) - 1, 0), "queue_id": 0,
                                 "trigger": ""})
                         for row in rows],
                        warning=f"{what}: the queue item was cancelled; back to new")
    if state == BUILDING:
        return Decision([Change(task, row, Status.RUNNING, {"build": fact.build, "url": fact.url})
                         for row in rows
                         if not (row.status == Status.RUNNING and row.build == fact.build)])
    if state == FINISHED:
        how = fact.message or (f"Jenkins build #{fact.build} {fact.result} without a report "
                               "from the workflow")
        status = Status.DONE if fact.result == "SUCCESS" else Status.FAILED
        return Decision([Change(task, row, status, {"build": fact.build, "url": fact.url,
                                                    "reason": how}, event=True)
                         for row in rows])
    if state == ABSENT:
        if now - max(row.updated or 0.0 for row in rows) < grace:
            return Decision([])
        if not any(row.relaunched for row in rows):
            return Decision([], relaunch=True,
                            warning=f"{what}: no trace of its build (trigger "
                                    f"{rows[0].trigger or 'unknown'}); triggered again, once")
        return Decision([Change(task, row, Status.FAILED,
                                {"reason": "lost: no trace of the build, even after "
                                           "triggering it again"}, event=True)
                         for row in rows], warning=f"{what}: lost again; marked failed")
    if state == FOREIGN:
        return Decision([], warning=f"{what}: {fact.message}")
    return Decision([], error=f"{what}: {fact.message or f'unexpected executor answer {state!r}'}")


def reconcile(influx: Influx, executor, state: CampaignState, report: CampaignReport,
              now: float, grace: float = GRACE_SECONDS) -> list[Build]:
    """Bring the builds in flight up to date (``state`` too); the lost ones to start again."""
    changes: list[Change] = []
    relaunches = []
    unchecked: Counter = Counter()    # executor error -> (run, task) it left unchecked
    flights = state.flights()
    prefetch = getattr(executor, "prefetch", None)
    if prefetch is not None and flights:   # the htcondor executor: one history query
        prefetch([BuildRef.of(influx.db, state.campaign.name, flight) for flight in flights])
    for flight in flights:
        first = flight.rows[0]
        fact = executor.locate(job_name(influx.db, state.campaign.name, flight.task),
                               first.queue_id or 0, first.build or 0, first.trigger or "")
        if fact.state == UNKNOWN:
            unchecked[fact.message] += len(flight.rows)
            continue
        decision = decide(flight.task, flight.rows, fact, now, grace)
        changes += decision.changes
        if decision.relaunch:
            relaunches.append(Build(flight.task, flight.rows, relaunch=True))
        if decision.warning:
            report.warnings.append(decision.warning)
        if decision.error:
            report.errors.append(decision.error)
    report.errors += [f"{count} (run, task) in flight not checked: {message}"
                      for message, count in unchecked.items()]
    write_changes(influx, state, changes, now, report)
    return relaunches


def settle_local(influx: Influx, camp: Campaign, outcomes: dict, report: CampaignReport,
                 now: float) -> None:
    """Local builds (and builds whose checkout failed) are over: fail or finish the rows
    whose wrapper did not report.

    One query and at most one write, whatever the number of builds.
    """
    for trigger, outcome in outcomes.items():
        if outcome.stderr:
            report.warnings.append(f"build {trigger[:8]}: {outcome.stderr}")
    changes = []
    state = read_state(influx, camp, {})   # the builds in flight: no group needed
    for flight in state.flights():
        outcome = outcomes.get(flight.rows[0].trigger)
        if outcome is None:
            continue
        ok = outcome.code == 0 and not outcome.timed_out
        status = Status.DONE if ok else Status.FAILED
        changes += [Change(flight.task, row, status, {"reason": outcome.reason}, event=True)
                    for row in flight.rows]
    write_changes(influx, state, changes, now, report)


def write_changes(influx: Influx, state: CampaignState, changes: list[Change], now: float,
                  report: CampaignReport) -> None:
    """One write for every change (none for no change), the same changes applied to
    ``state``, and counted in ``report``."""
    if not changes:
        return
    name = state.campaign.name
    points = []
    by_task: dict[str, dict[int, Row]] = defaultdict(dict)
    when = time.time_ns()
    for offset, change in enumerate(changes):
        row = change.row
        points.append(run_point(name, change.task, row.run, change.status, now,
                                **change.fields))
        if change.event:
            points.append(job_point(name, change.task, row.run, change.status, when + offset,
                                    **change.fields))
        updates = {k: v for k, v in change.fields.items() if k in Row._fields}
        by_task[change.task][row.run] = row._replace(status=change.status, updated=now,
                                                     **updates)
    influx.write(points, lower_marks=False)   # rows it read: above its mark
    for task, replaced in by_task.items():
        state.rows[task] = [replaced.get(row.run, row) for row in state.rows[task]]
    report.reconciled.update(change.status for change in changes)
