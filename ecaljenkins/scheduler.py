"""The scheduler: each cycle starts one build per ready (run, task), exactly once.

A cycle, per database (see docs/scheduler.md for the reasons):

1. takes the scheduling lease, so two schedulers never work on one database;
2. reads the configuration of every campaign (one request) and, per campaign,
   every (run, task) row (one query): a constant number of queries whatever the
   number of runs;
3. fetches the new runs of prompt campaigns from the run registry;
4. reconciles the builds in flight with the executor (queued -> running ->
   done/failed, cancelled, lost);
5. plans: :func:`plan` is pure (rows in, builds and reasons to wait out);
6. records an *intent* for every build (status queued with a unique trigger id)
   in one write BEFORE triggering, triggers, then records the queue ids and rolls
   back the intents Jenkins refused, in a second write.

A crash between 6's writes and triggers leaves intents that the next cycle finds
in Jenkins by their trigger id (or, after a grace period, triggers again, once).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from .campaign import Campaign, RunCtrl, list_campaigns
from .errors import ConfigError, EcalError, InfluxError, JenkinsTimeout, NotFound
from .executors import (ABSENT, BUILDING, CANCELLED, FINISHED, FOREIGN, UNKNOWN, WAITING,
                        BuildRequest, Fact)
from .influx import Influx, gc_paused
from .names import did_you_mean, job_name, quote_str
from .schema import IN_FLIGHT, ROW_FIELDS, Status, job_point, lock_point, run_point
from .workflows import Workflow, load_catalogue

#: builds triggered per cycle at most (all campaigns of the database together)
DEFAULT_MAX_TRIGGERS = 500
#: seconds before a build in flight without any trace in Jenkins counts as lost
GRACE_SECONDS = 300.0
#: seconds a scheduler holds its lease at most (longer than a cycle can take)
LEASE_SECONDS = 1800.0
#: seconds between writing the lease and reading it back, so that two
#: schedulers starting together both see the last writer
LEASE_SETTLE = 1.0

# why a (run, task) waits
DEPENDENCY = "dependency not done"
CAP = "cap reached"
BACKOFF = "back-off"
INACTIVE = "inactive task"
NO_DEFINITION = "inactive: no workflow definition"
EXHAUSTED = "retries exhausted"
GROUP = "rest of its group not ready"
OPEN = "group still open"
LIMIT = "trigger limit of this cycle"
UNKNOWN_STATUS = "unknown status"


class Row(NamedTuple):
    """One (run, task) as stored; fields never written are None."""

    run: int
    status: str
    attempt: int | None
    fill: int | None
    era: str | None
    updated: float | None
    queue_id: int | None
    build: int | None
    trigger: str | None
    relaunched: int | None


@dataclass
class CampaignState:
    """A campaign and every (run, task) row it holds, by task."""

    campaign: Campaign
    rows: dict[str, list[Row]]

    @property
    def newest(self) -> Row | None:
        """The row of the highest run (rows are sorted by run within each task)."""
        return max((rows[-1] for rows in self.rows.values() if rows), key=lambda row: row.run,
                   default=None)

    @property
    def last_run(self) -> int:
        newest = self.newest
        return newest.run if newest else 0


def read_state(influx: Influx, camp: Campaign) -> CampaignState:
    """Every (run, task) row of the campaign: one query, rows sorted by run.

    Each chunk of the answer becomes rows as it arrives, so the raw JSON of a
    whole campaign is never held at once.
    """
    expected = ["time", *ROW_FIELDS]
    rows: dict[str, list[Row]] = {}
    for series in influx.stream(f"SELECT {', '.join(ROW_FIELDS)} FROM run WHERE "
                                f"campaign = {quote_str(camp.name)} GROUP BY task"):
        if series.columns != expected:
            raise InfluxError(f"unexpected columns {series.columns} in the run rows of "
                              f"campaign {camp.name!r}")
        rows.setdefault(series.tags["task"], []).extend(map(Row._make, series.values))
    return CampaignState(camp, rows)


# --- planning (pure) -----------------------------------------------------------------

class Wait(NamedTuple):
    """A (run, task) not triggered this cycle: why, and what :func:`explain` needs."""

    run: int
    reason: str
    detail: object = None


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

    @property
    def builds(self) -> list[Build]:
        return [build for tp in self.tasks.values() for build in tp.builds]


def plan(state: CampaignState, workflows: dict[str, Workflow], now: float,
         budget: int | None = None) -> Plan:
    """Which builds to start now, and why every other pending (run, task) waits.

    A (run, task) is ready when it is ``new`` (or ``failed`` with retries left
    and its back-off over), every task it depends on is ``done`` for that run,
    its task is active and defined, and its task is under ``max_in_flight``
    builds. A fill/era-grouped task starts one build for a group once none of
    the group's runs is still on its way (each is ready, done, or out of
    retries); in a prompt campaign, the group of the newest run may still grow
    and waits. At most ``budget`` builds are planned, oldest runs first.
    """
    camp = state.campaign
    active = camp.active_tasks
    needed = {dep for task, wf in workflows.items() if task in active for dep in wf.depends_on}
    status_of = {task: {row.run: row.status for row in state.rows.get(task, ())}
                 for task in needed}
    newest = state.newest if camp.kind == "prompt" else None
    result = Plan(camp.name, now)
    for task in sorted(state.rows):
        rows = state.rows[task]
        wf = workflows.get(task)
        tp = result.tasks[task] = TaskPlan(task, wf.group_by if wf else None)
        if task not in active or wf is None:
            reason = INACTIVE if task not in active else NO_DEFINITION
            tp.counts.update(row.status for row in rows)
            tp.waiting = [Wait(row.run, reason) for row in rows
                          if row.status in (Status.NEW, Status.FAILED)]
            continue
        _plan_task(tp, rows, wf, [(dep, status_of[dep]) for dep in wf.depends_on], now,
                   newest, budget)
    if budget is not None:
        _apply_budget(result, budget)
    return result


def _plan_task(tp: TaskPlan, rows: list[Row], wf: Workflow, deps: list, now: float,
               newest: Row | None, budget: int | None) -> None:
    counts, waiting = tp.counts, tp.waiting
    grouped = wf.group_by != "run"
    key_of = (lambda row: row.fill) if wf.group_by == "fill" else (lambda row: row.era)
    blocking: Counter = Counter()   # per group: runs still on their way
    flights = set()
    candidates = []
    for row in rows:
        status = row.status
        counts[status] += 1
        if status == Status.DONE:
            continue
        if status in IN_FLIGHT:
            flights.add(row.trigger or row.run)
            if grouped:
                blocking[key_of(row)] += 1
            continue
        if status == Status.FAILED:
            attempt = row.attempt or 0
            if attempt > wf.max_retries:
                waiting.append(Wait(row.run, EXHAUSTED, attempt))
                continue
            until = (row.updated or 0.0) + wf.retry_wait(attempt)
            if until > now:
                waiting.append(Wait(row.run, BACKOFF, until))
                if grouped:
                    blocking[key_of(row)] += 1
                continue
        elif status != Status.NEW:
            waiting.append(Wait(row.run, UNKNOWN_STATUS, status))
            continue
        for dep, statuses in deps:
            dep_status = statuses.get(row.run)
            if dep_status != Status.DONE:
                waiting.append(Wait(row.run, DEPENDENCY, (dep, dep_status)))
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
        open_key = key_of(newest) if newest is not None else None
        for key, members in groups.items():
            if blocking[key]:
                waiting.extend(Wait(row.run, GROUP, (wf.group_by, key, blocking[key]))
                               for row in members)
            elif newest is not None and key == open_key:
                waiting.extend(Wait(row.run, OPEN, (wf.group_by, key)) for row in members)
            else:
                units.append(tuple(members))
    else:
        units = [(row,) for row in candidates]
    slots = None if wf.max_in_flight is None else max(0, wf.max_in_flight - len(flights))
    for unit in units:   # oldest first: beyond the budget, none can be kept anyway
        if slots is not None and slots <= 0:
            waiting.extend(Wait(row.run, CAP, (len(flights), wf.max_in_flight))
                           for row in unit)
        elif budget is not None and len(tp.builds) >= budget:
            waiting.extend(Wait(row.run, LIMIT, budget) for row in unit)
        else:
            tp.builds.append(Build(tp.task, unit))
            if slots is not None:
                slots -= 1


def _apply_budget(result: Plan, budget: int) -> None:
    """Keep the ``budget`` builds of the oldest runs; the others wait for the next cycle."""
    builds = result.builds
    if len(builds) <= budget:
        return
    keep = {id(build) for build in sorted(builds, key=lambda b: (b.rows[0].run, b.task))
            [:max(budget, 0)]}
    for tp in result.tasks.values():
        tp.waiting.extend(Wait(row.run, LIMIT, budget) for build in tp.builds
                          if id(build) not in keep for row in build.rows)
        tp.builds = [build for build in tp.builds if id(build) in keep]


def utc(seconds: float) -> str:
    """Unix seconds as the UTC time the scheduler's messages show."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def explain(wait: Wait) -> str:
    """One line saying why a (run, task) waits."""
    reason, detail = wait.reason, wait.detail
    if reason == DEPENDENCY:
        dep, status = detail
        return f"{reason}: {dep} is {status or 'missing for this run'}"
    if reason == BACKOFF:
        return f"{reason} until {utc(detail)}"
    if reason == EXHAUSTED:
        return f"{reason} ({detail} attempts)"
    if reason == CAP:
        return f"{reason} (max_in_flight {detail[1]}, {detail[0]} already in flight)"
    if reason == GROUP:
        return f"{reason}: {detail[2]} run(s) of {detail[0]} {detail[1]} still on their way"
    if reason == OPEN:
        return f"{reason}: {detail[0]} {detail[1]} holds the newest run and may grow"
    if reason == LIMIT:
        return f"{reason} ({detail} builds)"
    if reason == UNKNOWN_STATUS:
        return f"{reason} {detail!r}"
    return reason


# --- reconciliation (pure) -----------------------------------------------------------

class Change(NamedTuple):
    """A new state for a (run, task); ``event``: also record it as a ``job`` event."""

    row: Row
    status: str
    fields: dict
    event: bool = False


class Decision(NamedTuple):
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
        return Decision([Change(row, Status.QUEUED, {"queue_id": fact.queue_id})
                         for row in rows if row.queue_id != fact.queue_id])
    if state == CANCELLED:
        return Decision([Change(row, Status.NEW, {"attempt": max((row.attempt or 0) - 1, 0),
                                                  "queue_id": 0, "trigger": ""})
                         for row in rows],
                        warning=f"{what}: the queue item was cancelled; back to new")
    if state == BUILDING:
        return Decision([Change(row, Status.RUNNING, {"build": fact.build, "url": fact.url})
                         for row in rows
                         if not (row.status == Status.RUNNING and row.build == fact.build)])
    if state == FINISHED:
        how = f"Jenkins build #{fact.build} {fact.result} without a report from the workflow"
        status = Status.DONE if fact.result == "SUCCESS" else Status.FAILED
        return Decision([Change(row, status, {"build": fact.build, "url": fact.url,
                                              "reason": how}, event=True) for row in rows])
    if state == ABSENT:
        if now - max(row.updated or 0.0 for row in rows) < grace:
            return Decision([])
        if not any(row.relaunched for row in rows):
            return Decision([], relaunch=True,
                            warning=f"{what}: no trace of its build (trigger "
                                    f"{rows[0].trigger or 'unknown'}); triggered again, once")
        return Decision([Change(row, Status.FAILED, {"reason": "lost: no trace of the build, "
                                                     "even after triggering it again"},
                                event=True)
                         for row in rows], warning=f"{what}: lost again; marked failed")
    if state == FOREIGN:
        return Decision([], warning=f"{what}: {fact.message}")
    return Decision([], error=f"{what}: {fact.message or f'unexpected executor answer {state!r}'}")


def flights(state: CampaignState) -> list[tuple[str, tuple[Row, ...]]]:
    """The builds in flight: (task, rows sharing a trigger id), oldest first."""
    found: dict = {}
    for task, rows in state.rows.items():
        for row in rows:
            if row.status in IN_FLIGHT:
                found.setdefault((task, row.trigger or row.run), []).append(row)
    return [(task, tuple(rows)) for (task, _), rows in found.items()]


# --- the scheduling lease ------------------------------------------------------------

class Lease:
    """Who schedules a database now: a ``lock`` point, written then read back.

    InfluxDB has no compare-and-set, so the last writer wins: a scheduler that
    reads back another holder skips its cycle. A lease held by a crashed
    scheduler expires after ``seconds``.
    """

    def __init__(self, influx: Influx, holder: str, seconds: float = LEASE_SECONDS,
                 settle: float = LEASE_SETTLE, clock: Callable[[], float] = time.time):
        self.influx, self.holder = influx, holder
        self.seconds, self.settle, self.clock = seconds, settle, clock

    def _read(self) -> dict | None:
        rows = self.influx.select("SELECT holder, expires FROM lock WHERE scope = 'schedule'")
        return rows[-1] if rows else None

    def _write(self, expires: float) -> None:
        self.influx.write([lock_point(self.holder, expires)])

    def _busy(self, current: dict | None) -> str | None:
        if current and current["holder"] != self.holder and \
                (current.get("expires") or 0) > self.clock():
            return (f"another scheduler ({current['holder']}) holds the lease of database "
                    f"{self.influx.db!r} until {utc(current['expires'])}: skipping this cycle")
        return None

    def acquire(self) -> str | None:
        """None once the lease is ours; else why this cycle must be skipped."""
        busy = self._busy(self._read())
        if busy:
            return busy
        self._write(self.clock() + self.seconds)
        if self.settle:
            time.sleep(self.settle)
        current = self._read()
        if not current or current["holder"] != self.holder:
            return self._busy(current) or (f"another scheduler took the lease of database "
                                           f"{self.influx.db!r}: skipping this cycle")
        return None

    def release(self) -> None:
        self._write(0)


# --- the cycle -----------------------------------------------------------------------

@dataclass
class CampaignCycle:
    """What one cycle did (or, in a dry run, would do) for one campaign."""

    campaign: str
    kind: str
    plan: Plan | None = None
    #: (build, trigger id, queue id) of every build started
    triggered: list = field(default_factory=list)
    #: reconciliation outcomes: new status -> number of (run, task)
    reconciled: Counter = field(default_factory=Counter)
    #: new runs of a prompt campaign injected (or, in a dry run, available)
    fetched: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class CycleReport:
    db: str
    dry_run: bool
    skipped: str | None = None
    campaigns: list[CampaignCycle] = field(default_factory=list)
    #: campaigns left alone because no run type has an active task
    inactive: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.errors for c in self.campaigns)


class Scheduler:
    """One database's scheduler. ``clock`` is injectable so tests need no sleeping.

    ``executor`` is a :class:`~ecaljenkins.executors.JenkinsExecutor` or
    :class:`~ecaljenkins.executors.LocalExecutor` (unused in a dry run).
    """

    def __init__(self, influx: Influx, executor=None, *, dry_run: bool = False,
                 max_triggers: int | None = DEFAULT_MAX_TRIGGERS,
                 clock: Callable[[], float] = time.time, registry=None,
                 catalogue: Callable[[], dict] = load_catalogue,
                 grace: float = GRACE_SECONDS, lease_seconds: float = LEASE_SECONDS,
                 lease_settle: float = LEASE_SETTLE):
        if executor is None and not dry_run:
            raise ConfigError("a scheduler that triggers builds needs an executor")
        self.influx, self.executor, self.dry_run = influx, executor, dry_run
        self.max_triggers, self.clock, self.grace = max_triggers, clock, grace
        self._registry, self._catalogue_loader = registry, catalogue
        self._catalogue: dict | None = None
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = Lease(influx, holder, lease_seconds, lease_settle, clock)

    # -- the cycle of a database --

    def cycle(self, campaign: str | None = None) -> CycleReport:
        """Schedule every active campaign of the database, or only ``campaign``."""
        report = CycleReport(self.influx.db, self.dry_run)
        campaigns = list_campaigns(self.influx)
        if campaign is not None:
            chosen = [c for c in campaigns if c.name == campaign]
            if not chosen:
                raise NotFound(f"campaign {campaign!r} does not exist in database "
                               f"{self.influx.db!r}"
                               + did_you_mean(campaign, [c.name for c in campaigns]))
            campaigns = chosen
        report.inactive = [c.name for c in campaigns if not c.active]
        campaigns = [c for c in campaigns if c.active]
        if not campaigns:
            return report
        if not self.dry_run:
            busy = self.lease.acquire()
            if busy:
                report.skipped = busy
                return report
        self._catalogue = None
        if self.executor is not None:
            self.executor.new_cycle()
        budget = self.max_triggers
        try:
            for camp in campaigns:
                done = CampaignCycle(camp.name, camp.kind)
                report.campaigns.append(done)
                try:
                    with gc_paused():   # a campaign's rows and plan hold no cycles
                        budget = self._campaign(camp, done, budget)
                except EcalError as err:
                    done.errors.append(f"campaign {camp.name!r}: {err}")
        finally:
            if not self.dry_run:
                self.lease.release()
        return report

    # -- one campaign --

    def _campaign(self, camp: Campaign, done: CampaignCycle, budget: int | None):
        workflows = self._workflows(camp, done)
        state = read_state(self.influx, camp)
        if camp.kind == "prompt":
            state = self._fetch(camp, state, done)
        now = self.clock()
        relaunches = [] if self.dry_run else self._reconcile(state, done, now)
        result = plan(state, workflows, now, budget)
        done.plan = result
        if self.dry_run:
            return budget
        builds = relaunches + result.builds
        if builds:
            self._trigger(camp, builds, workflows, done, now)
        return None if budget is None else budget - len(result.builds)

    def _workflows(self, camp: Campaign, done: CampaignCycle) -> dict[str, Workflow]:
        """Each task's recorded definition; the catalogue's when none was recorded."""
        workflows = {}
        for task, definition in camp.workflows.items():
            try:
                workflows[task] = Workflow.from_json(definition)
            except ConfigError as err:
                done.warnings.append(f"task {task!r}: {err}")
        for task in sorted(camp.active_tasks - set(workflows)):
            catalogue = self._load_catalogue(done)
            if task in catalogue:
                workflows[task] = catalogue[task]
                done.warnings.append(f"task {task!r} has no recorded workflow definition: "
                                     "using the catalogue's")
        return workflows

    def _load_catalogue(self, done: CampaignCycle) -> dict:
        if self._catalogue is None:
            try:
                self._catalogue = self._catalogue_loader()
            except ConfigError as err:
                done.warnings.append(str(err))
                self._catalogue = {}
        return self._catalogue

    def _fetch(self, camp: Campaign, state: CampaignState,
               done: CampaignCycle) -> CampaignState:
        """Inject a prompt campaign's new closed runs (counted only, in a dry run)."""
        if not state.last_run:
            done.warnings.append(f"prompt campaign {camp.name!r} has no run yet: inject its "
                                 "first run to set where fetching starts")
            return state
        if self._registry is None:
            from .registry import open_registry
            self._registry = open_registry()
        new = self._registry.after(state.last_run, closed_only=True)
        if self.dry_run:
            done.fetched = len(new)
            return state
        if not new:
            return state
        summary = RunCtrl(self.influx, camp.name).inject(new)
        done.fetched = len(summary.injected)
        return read_state(self.influx, camp) if summary.injected else state

    def _reconcile(self, state: CampaignState, done: CampaignCycle, now: float) -> list[Build]:
        """Bring the builds in flight up to date; the lost ones to start again."""
        changes: list[tuple[str, Change]] = []
        relaunches = []
        unchecked: Counter = Counter()    # executor error -> (run, task) it left unchecked
        for task, rows in flights(state):
            first = rows[0]
            fact = self.executor.locate(job_name(self.influx.db, state.campaign.name, task),
                                        first.queue_id or 0,
                                        first.build or 0, first.trigger or "")
            if fact.state == UNKNOWN:
                unchecked[fact.message] += len(rows)
                continue
            decision = decide(task, rows, fact, now, self.grace)
            changes += [(task, change) for change in decision.changes]
            if decision.relaunch:
                relaunches.append(Build(task, rows, relaunch=True))
            if decision.warning:
                done.warnings.append(decision.warning)
            if decision.error:
                done.errors.append(decision.error)
        done.errors += [f"{count} (run, task) in flight not checked: {message}"
                        for message, count in unchecked.items()]
        if changes:
            self._write_changes(state, changes, now)
            done.reconciled.update(change.status for _, change in changes)
        return relaunches

    def _write_changes(self, state: CampaignState, changes, now: float) -> None:
        """One write for every change, and the same changes applied to ``state``."""
        name = state.campaign.name
        points = []
        by_task: dict[str, dict[int, Row]] = defaultdict(dict)
        when = time.time_ns()
        for offset, (task, change) in enumerate(changes):
            row = change.row
            points.append(run_point(name, task, row.run, change.status, now,
                                    **change.fields))
            if change.event:
                points.append(job_point(name, task, row.run, change.status, when + offset,
                                        **change.fields))
            updates = {k: v for k, v in change.fields.items() if k in Row._fields}
            by_task[task][row.run] = row._replace(status=change.status, updated=now,
                                                  **updates)
        self.influx.write(points)
        for task, replaced in by_task.items():
            state.rows[task] = [replaced.get(row.run, row) for row in state.rows[task]]

    def _trigger(self, camp: Campaign, builds: list[Build], workflows: dict,
                 done: CampaignCycle, now: float) -> None:
        """Intents, triggers, then queue ids and roll-backs: two writes."""
        db, name = self.influx.db, camp.name
        requests = []
        intents = []
        for build in builds:
            trigger = uuid.uuid4().hex
            wf = workflows.get(build.task)
            grouped = wf.group_by != "run" if wf else len(build.rows) > 1
            requests.append(BuildRequest(
                db, name, build.task, build.runs, trigger, build.attempt(build.rows[0]),
                wf.command if wf else None, wf.timeout_minutes if wf else None, grouped))
            intents += [run_point(name, build.task, row.run, Status.QUEUED, now,
                                  attempt=build.attempt(row), trigger=trigger,
                                  queue_id=0, build=0, relaunched=int(build.relaunch))
                        for row in build.rows]
        self.influx.write(intents)
        after = []
        refused: set[str] = set()    # tasks whose trigger Jenkins refused in this cycle
        for build, request in zip(builds, requests):
            if build.task in refused:
                after += self._rollback(name, build, now)
                continue
            try:
                queue_id = self.executor.start(request)
            except JenkinsTimeout as err:
                done.errors.append(f"{err}; whether build of run(s) {_runs(build)} was "
                                   "queued is unknown: the next cycle looks for it")
                continue
            except EcalError as err:
                refused.add(build.task)
                done.errors.append(f"{err}; {build.task} run(s) {_runs(build)} stay(s) "
                                   f"{build.rows[0].status}")
                after += self._rollback(name, build, now)
                continue
            done.triggered.append((build, request.trigger_id, queue_id))
            if queue_id:
                after += [run_point(name, build.task, row.run, None, now,
                                    queue_id=int(queue_id)) for row in build.rows]
        if after:
            self.influx.write(after)
        outcomes = self.executor.finish()
        if outcomes:
            self._settle_local(camp, outcomes, done)

    @staticmethod
    def _rollback(campaign: str, build: Build, now: float) -> list:
        """Points giving the rows of a build that was not triggered their previous state."""
        return [run_point(campaign, build.task, row.run, row.status,
                          row.updated or now, attempt=row.attempt or 0,
                          trigger=row.trigger or "", queue_id=row.queue_id or 0,
                          build=row.build or 0, relaunched=row.relaunched or 0)
                for row in build.rows]

    def _settle_local(self, camp: Campaign, outcomes: dict, done: CampaignCycle) -> None:
        """Local builds are over: fail or finish the rows whose wrapper did not report.

        One query and at most one write, whatever the number of builds.
        """
        for trigger, outcome in outcomes.items():
            if outcome.stderr:
                done.warnings.append(f"local build {trigger[:8]}: {outcome.stderr}")
        now = self.clock()
        changes = []
        state = read_state(self.influx, camp)
        for task, rows in flights(state):
            outcome = outcomes.get(rows[0].trigger)
            if outcome is None:
                continue
            ok = outcome.code == 0 and not outcome.timed_out
            status = Status.DONE if ok else Status.FAILED
            changes += [(task, Change(row, status, {"reason": outcome.reason}, event=True))
                        for row in rows]
        if changes:
            self._write_changes(state, changes, now)
            done.reconciled.update(change.status for _, change in changes)


def _runs(build: Build) -> str:
    return ",".join(map(str, build.runs))
