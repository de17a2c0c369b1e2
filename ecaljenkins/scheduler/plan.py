"""Plan: which builds to start now, and why every other pending (run, task) waits.

Pure: rows in, builds and typed waits out; no query, no clock, no Jenkins.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from ..schema import IN_FLIGHT, Status
from ..workflows import Workflow
from .state import GROUP_KINDS, CampaignState, FillEnd, Row
from .waits import (MAY_GROW, BackOff, Cap, Dependency, Exhausted, GroupNotReady, GroupOpen,
                    Inactive, Limit, NoDefinition, UnknownStatus, Wait)


class Build(NamedTuple):
    """One build to start: one row, or the rows of a fill/era group."""

    task: str
    rows: tuple[Row, ...]
    #: a build lost in Jenkins started again: its attempt does not count twice
    relaunch: bool = False

    @property
    def runs(self) -> tuple[int, ...]:
        return tuple(row.run for row in self.rows)

    def attempt(self, row: Row) -> int:
        """The attempt number ``row`` has once this build is triggered."""
        return (row.attempt or 0) + (0 if self.relaunch else 1)


@dataclass
class TaskPlan:
    task: str
    group_by: str | None
    counts: Counter = field(default_factory=Counter)
    builds: list[Build] = field(default_factory=list)
    waiting: list[Wait] = field(default_factory=list)

    def reasons(self) -> Counter:
        return Counter(wait.reason for wait in self.waiting)


@dataclass
class Plan:
    campaign: str
    now: float
    tasks: dict[str, TaskPlan] = field(default_factory=dict)
    #: what the operator must hear every cycle (a dependency active nowhere, ...)
    warnings: list[str] = field(default_factory=list)

    @property
    def builds(self) -> list[Build]:
        return [build for tp in self.tasks.values() for build in tp.builds]

    @property
    def open_fill(self) -> int | None:
        """The fill whose group a fill-grouped task keeps waiting only because it may
        still grow (:class:`GroupOpen`): what the cycle asks the registry about."""
        return next((wait.key for tp in self.tasks.values() if tp.group_by == "fill"
                     for wait in tp.waiting if isinstance(wait, GroupOpen)), None)


def plan(state: CampaignState, workflows: dict[str, Workflow], now: float,
         budget: int | None = None) -> Plan:
    """Which builds to start now, and why every other pending (run, task) waits.

    A (run, task) is considered only while one of the run's run types has the
    task (:meth:`CampaignState.has_task`); it is not counted otherwise, and waits
    as an inactive task. It is ready when it is ``new`` (or ``failed`` with
    retries left and its back-off over), every task it depends on is ``done``
    for that run, its task is defined, and its task is under ``max_in_flight``
    builds. A fill/era-grouped task starts one build for a group once none of
    the group's runs is still on its way (each is ready, done, or out of
    retries), and that build covers every run of the group, the ones already
    built included: a late run rebuilds its group. Runs without a fill are each
    their own group. In a prompt campaign, the group of the newest run may
    still grow and waits (:func:`open_group`): its era always, its fill until
    ``state.fill_end`` says the fill is over. At most ``budget`` builds are
    planned, oldest runs first.
    """
    camp = state.campaign
    active = camp.active_tasks
    needed = {dep for task, wf in workflows.items() if task in active for dep in wf.depends_on}
    status_of = {task: {row.run: row.status for row in state.rows.get(task, ())}
                 for task in needed}
    newest = state.newest if camp.kind == "prompt" else None
    opened = ({kind: open_group(newest, kind, state.fill_end) for kind in GROUP_KINDS}
              if newest is not None else {})
    result = Plan(camp.name, now)
    result.warnings += [f"task {task!r} depends on {dep!r}, active in no run type of campaign "
                        f"{camp.name!r}: its runs wait until {dep!r} is added"
                        for task, wf in sorted(workflows.items()) if task in active
                        for dep in wf.depends_on if dep not in active]
    for task in sorted(state.rows):
        rows = state.rows[task]
        wf = workflows.get(task)
        tp = result.tasks[task] = TaskPlan(task, wf.group_by if wf else None)
        kept = [row for row in rows if state.has_task(row.run, task)]
        if len(kept) < len(rows):
            tp.waiting = [Inactive(row.run) for row in rows
                          if row.status in (Status.NEW, Status.FAILED)
                          and not state.has_task(row.run, task)]
        if not kept:   # no run of the task's run types has it
            continue
        if wf is None:
            tp.counts.update(row.status for row in kept)
            tp.waiting += [NoDefinition(row.run) for row in kept
                           if row.status in (Status.NEW, Status.FAILED)]
            continue
        unfilled = _plan_task(tp, kept, wf, [(dep, status_of[dep]) for dep in wf.depends_on],
                              now, opened.get(wf.group_by), budget)
        if unfilled:
            result.warnings.append(f"task {task!r}: {unfilled} run(s) without a fill number, "
                                   "each built as its own group")
    if budget is not None:
        _apply_budget(result, budget)
    return result


def _fill_key(row: Row):
    """A run's fill group; a run without a fill (0) is a group of its own."""
    return row.fill if row.fill else f"0 (run {row.run})"


def open_group(newest: Row, group_by: str, fill_end: FillEnd | None
               ) -> tuple[object, str] | None:
    """(key, why) of the group of a prompt campaign's newest run while it may still grow;
    None once it cannot.

    An era ends when the next one starts: nothing says so sooner, so the era group
    of the newest run always waits. A run without a fill is a group of its own and
    never grows. A fill group waits until the registry said (``fill_end``, asked this
    cycle) that the fill ended and that none of its runs is still open.
    """
    if group_by == "era":
        return newest.era, MAY_GROW
    if not newest.fill:
        return None
    if fill_end is None or fill_end.fill != newest.fill:
        return newest.fill, MAY_GROW
    if fill_end.error is not None:
        return newest.fill, f"holds the newest run; whether it ended is unknown ({fill_end.error})"
    if fill_end.end is None:
        return newest.fill, "has not ended"
    if fill_end.open_runs:
        return newest.fill, (f"has ended, but run(s) {', '.join(map(str, fill_end.open_runs))}"
                             " of it still open")
    return None


def _plan_task(tp: TaskPlan, rows: list[Row], wf: Workflow, deps: list, now: float,
               opened: tuple[object, str] | None, budget: int | None) -> int:
    """Plan one task's rows; the number of runs without a fill of a fill-grouped task.

    ``opened``: (key, why) of the group that may still grow (:func:`open_group`)."""
    counts, waiting = tp.counts, tp.waiting
    grouped = wf.group_by != "run"
    key_of = _fill_key if wf.group_by == "fill" else (lambda row: row.era)
    blocking: Counter = Counter()   # per group: runs still on their way
    built: dict = defaultdict(list)   # per group: runs done or out of retries, rebuilt too
    flights = set()
    candidates = []
    for row in rows:
        status = row.status
        counts[status] += 1
        if status == Status.DONE:
            if grouped:
                built[key_of(row)].append(row)
            continue
        if status in IN_FLIGHT:
            flights.add(row.trigger or row.run)
            if grouped:
                blocking[key_of(row)] += 1
            continue
        if status == Status.FAILED:
            attempt = row.attempt or 0
            if attempt > wf.max_retries:
                waiting.append(Exhausted(row.run, attempt))
                if grouped:
                    built[key_of(row)].append(row)
                continue
            until = (row.updated or 0.0) + wf.retry_wait(attempt)
            if until > now:
                waiting.append(BackOff(row.run, until))
                if grouped:
                    blocking[key_of(row)] += 1
                continue
        elif status != Status.NEW:
            waiting.append(UnknownStatus(row.run, status))
            continue
        for dep, statuses in deps:
            dep_status = statuses.get(row.run)
            if dep_status != Status.DONE:
                waiting.append(Dependency(row.run, dep, dep_status))
                if grouped:
                    blocking[key_of(row)] += 1
                break
        else:
            candidates.append(row)
    if grouped:
        units = []
        groups: dict = defaultdict(list)
        for row in candidates:
            groups[key_of(row)].append(row)
        open_key, why = opened or (None, "")
        for key, members in groups.items():
            if blocking[key]:
                waiting.extend(GroupNotReady(row.run, wf.group_by, key, blocking[key])
                               for row in members)
            elif opened is not None and key == open_key:
                waiting.extend(GroupOpen(row.run, wf.group_by, key, why) for row in members)
            else:
                rebuilt = {row.run for row in built[key] if row.status != Status.DONE}
                if rebuilt:   # out of retries, but built again with the group
                    waiting[:] = [w for w in waiting if w.run not in rebuilt]
                units.append(tuple(sorted(members + built[key], key=lambda row: row.run)))
    else:
        units = [(row,) for row in candidates]
    slots = None if wf.max_in_flight is None else max(0, wf.max_in_flight - len(flights))
    for unit in units:   # oldest first: beyond the budget, none can be kept anyway
        if slots is not None and slots <= 0:
            waiting.extend(Cap(row.run, len(flights), wf.max_in_flight) for row in unit)
        elif budget is not None and len(tp.builds) >= budget:
            waiting.extend(Limit(row.run, budget) for row in unit)
        else:
            tp.builds.append(Build(tp.task, unit))
            if slots is not None:
                slots -= 1
    return sum(1 for row in rows if not row.fill) if wf.group_by == "fill" else 0


def _apply_budget(result: Plan, budget: int) -> None:
    """Keep the ``budget`` builds of the oldest runs; the others wait for the next cycle."""
    builds = result.builds
    if len(builds) <= budget:
        return
    keep = {id(build) for build in sorted(builds, key=lambda b: (b.rows[0].run, b.task))
            [:max(budget, 0)]}
    for tp in result.tasks.values():
        tp.waiting.extend(Limit(row.run, budget) for build in tp.builds
                          if id(build) not in keep for row in build.rows)
        tp.builds = [build for build in tp.builds if id(build) in keep]
