"""Campaigns, their run types and the runs they hold, stored in InfluxDB.

The layout is documented in ``docs/schema.md``. In short: configuration
(``campaign``, ``rtype``, ``workflow``) is an append-only history of points, the
latest point being the current state; runs are keyed by their number used as
the point's timestamp, so a status change overwrites the (run, task) point in
place and a whole campaign is read back with one query.
"""

from __future__ import annotations

import getpass
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import AlreadyExists, InputError, NotFound, TooManyRuns
from .filters import Filter, checked, matches_all, parse_all
from .influx import Influx
from .names import check_name, did_you_mean, quote_str
from .registry import Registry, Run, open_registry
from .schema import (DETAIL_FIELDS, STATUSES, Point, Status, campaign_point, fetch_point,
                     mark_point, new_run_point, rtype_point, run_point, runinfo_point,
                     runinfo_rtypes_point,
                     workflow_point)

KINDS = ("rereco", "prompt")
DEFAULT_RTYPE = "all"
#: the default run type keeps global runs only (the documented behaviour)
DEFAULT_FILTERS = ("sequence == GLOBAL-RUN",)
#: new runs one ``inject`` adds without ``--yes`` (a whole era fits; a mistyped range of
#: a whole data-taking year does not)
CONFIRM_ABOVE = 5000


@dataclass(frozen=True)
class RunType:
    """A filter over run metadata and the tasks given to the runs it selects."""

    name: str
    filters: tuple[Filter, ...]
    tasks: tuple[str, ...]

    def matches(self, run) -> bool:
        return matches_all(self.filters, run)


@dataclass
class Campaign:
    """The current configuration of a campaign."""

    name: str
    kind: str
    description: str
    created: int
    rtypes: dict[str, RunType] = field(default_factory=dict)
    #: workflow definitions (JSON) recorded when their task was added
    workflows: dict[str, str] = field(default_factory=dict)
    #: tasks_of_run's answers, by run types text (a campaign has few combinations)
    _tasks_of: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def active_tasks(self) -> set[str]:
        return {task for rtype in self.rtypes.values() for task in rtype.tasks}

    @property
    def active(self) -> bool:
        """A campaign without any active task is not processed (documented deactivation)."""
        return bool(self.active_tasks)

    def rtype(self, name: str) -> RunType:
        if name not in self.rtypes:
            raise NotFound(f"run type {name!r} does not exist in campaign {self.name!r}"
                           + did_you_mean(name, self.rtypes))
        return self.rtypes[name]

    def tasks_of_run(self, rtypes: str | None) -> frozenset[str]:
        """The tasks a run has now: those its run types (``runinfo.rtypes``) list.

        The one rule of the planner, ``status`` and the report: a (run, task) is
        scheduled and counted only while one of the run's run types has the task.
        A run without recorded run types (no ``runinfo``: an injection cut off, or
        one written by an older version) has every active task.
        """
        found = self._tasks_of.get(rtypes)
        if found is None:
            if not rtypes:
                found = frozenset(self.active_tasks)
            else:
                found = frozenset(task for name in rtypes.split(",") if name in self.rtypes
                                  for task in self.rtypes[name].tasks)
            self._tasks_of[rtypes] = found
        return found

    def tasks_for(self, run) -> tuple[list[str], list[str]]:
        """(matching run types, their tasks in order) for a run."""
        rtypes = [rt for rt in self.rtypes.values() if rt.matches(run)]
        tasks = list(dict.fromkeys(t for rt in rtypes for t in rt.tasks))
        return [rt.name for rt in rtypes], tasks


@dataclass
class InjectSummary:
    injected: list[int] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    points: int = 0


@dataclass
class RtypeChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    backfilled: int = 0
    #: tasks whose workflow definition was recorded again because it changed
    refreshed: list[str] = field(default_factory=list)
    #: (task, dependency): active tasks whose dependency the change made active nowhere
    stranded: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunRow:
    """A run of a campaign and the status of each of its tasks."""

    run: int
    fill: int | None
    era: str | None
    tasks: dict[str, str] = field(default_factory=dict)
    #: per task, :data:`~ecaljenkins.schema.DETAIL_FIELDS` (read with ``details=True``)
    details: dict[str, dict] = field(default_factory=dict)


def _user(influx: Influx) -> str:
    return influx.user or getpass.getuser()


def _split_config(series_list) -> tuple[dict, dict, dict]:
    """Latest campaign/rtype/workflow point of each key, from a config query."""
    campaigns, rtypes, workflows = {}, {}, {}
    for series in series_list:
        target, key = {"campaign": (campaigns, ("campaign",)),
                       "rtype": (rtypes, ("campaign", "rtype")),
                       "workflow": (workflows, ("campaign", "task"))}[series.name]
        for row in series.dicts():  # time-ordered: the last point wins
            target[tuple(row[k] for k in key)] = row
    return campaigns, rtypes, workflows


def _build(campaign_row: dict, rtypes: dict, workflows: dict) -> Campaign:
    name = campaign_row["campaign"]
    camp = Campaign(name, campaign_row.get("kind") or "rereco",
                    campaign_row.get("description") or "", campaign_row["time"])
    for (cname, rname), row in sorted(rtypes.items()):
        if cname == name:
            tasks = tuple(t for t in (row.get("tasks") or "").split(",") if t)
            camp.rtypes[rname] = RunType(rname, tuple(parse_all(json.loads(row["filters"]))),
                                         tasks)
    camp.workflows = {task: row["definition"] for (cname, task), row in workflows.items()
                      if cname == name}
    return camp


def _depends_on(definition: str | None) -> list[str]:
    """The tasks a recorded workflow definition (JSON) depends on; none without one."""
    return (json.loads(definition).get("depends_on") or []) if definition else []


def _stranded(camp: Campaign, tasks_by_rtype: dict, removed) -> list[tuple[str, str]]:
    """(task, dependency) of the active tasks depending on a removed task now active in
    no run type: their runs wait until it is added again."""
    active = {task for tasks in tasks_by_rtype.values() for task in tasks}
    gone = set(removed) - active
    return [(task, dep) for task in sorted(active)
            for dep in _depends_on(camp.workflows.get(task)) if dep in gone]


def _tasks_by_rtype(camp: Campaign) -> dict[str, tuple[str, ...]]:
    return {name: rt.tasks for name, rt in camp.rtypes.items()}


def list_campaigns(influx: Influx) -> list[Campaign]:
    """Every campaign of the database, with its run types: one request."""
    series = influx.query("SELECT * FROM campaign; SELECT * FROM rtype; "
                          "SELECT * FROM workflow")
    campaigns, rtypes, workflows = _split_config(series)
    return [_build(row, rtypes, workflows) for (_name,), row in sorted(campaigns.items())]


def run_counts(influx: Influx) -> dict[str, int]:
    """Number of runs of every campaign of the database: one query."""
    counts = {}
    for series in influx.query("SELECT count(fill) FROM runinfo GROUP BY campaign"):
        counts[series.tags.get("campaign")] = series.values[0][1]
    return counts


class RunCtrl:
    """One campaign of one database: what ``ecalrunctrl.py`` does, as a Python API.

    ``RunCtrl("ecal_prompt_v1", "test_rereco")`` reads its credentials from the
    ``ECAL_INFLUXDB_*`` environment variables; pass an :class:`Influx` instead of
    the database name to reuse a client.
    """

    def __init__(self, db: str | Influx, campaign: str):
        self.influx = db if isinstance(db, Influx) else Influx.from_env(db)
        self.campaign = check_name(campaign, "campaign")
        self._where = f"campaign = {quote_str(self.campaign)}"

    # --- configuration ---------------------------------------------------------

    def info(self) -> Campaign:
        """The campaign's current configuration (one request); NotFound if absent."""
        w = self._where
        series = self.influx.query(f"SELECT * FROM campaign WHERE {w}; "
                                   f"SELECT * FROM rtype WHERE {w}; "
                                   f"SELECT * FROM workflow WHERE {w}")
        campaigns, rtypes, workflows = _split_config(series)
        if (self.campaign,) not in campaigns:
            known = [c.name for c in list_campaigns(self.influx)]
            raise NotFound(f"campaign {self.campaign!r} does not exist in database "
                           f"{self.influx.db!r}" + did_you_mean(self.campaign, known))
        return _build(campaigns[(self.campaign,)], rtypes, workflows)

    def exists(self) -> bool:
        try:
            self.info()
        except NotFound:
            return False
        return True

    def create(self, kind: str = "rereco", description: str = "",
               start_run: int | None = None) -> Campaign:
        """Create the campaign with the default run type ``all`` (global runs, no task).

        ``start_run``: a prompt campaign fetches the runs from this one on (without
        it, fetching starts after the first run injected).
        """
        if kind not in KINDS:
            raise InputError(f"invalid campaign kind {kind!r}: use {' or '.join(KINDS)}")
        if start_run is not None and kind != "prompt":
            raise InputError("a start run is for prompt campaigns (--kind prompt): a rereco "
                             "campaign gets its runs by inject")
        if len(description) > 1024 or "\n" in description:
            raise InputError("invalid description: one line of at most 1024 characters")
        same = [c.name for c in list_campaigns(self.influx)
                if c.name.lower() == self.campaign.lower()]
        if same:
            raise AlreadyExists(f"campaign {self.campaign!r} already exists in database "
                                f"{self.influx.db!r}" if same[0] == self.campaign else
                                f"campaign {same[0]!r} already exists in database "
                                f"{self.influx.db!r}: names differing only by case are "
                                f"refused ({self.campaign!r})")
        now = time.time_ns()
        self.influx.write([
            campaign_point(self.campaign, kind, description, _user(self.influx), now),
            self._rtype_point(DEFAULT_RTYPE, list(DEFAULT_FILTERS), (), "create", now),
            # a new campaign has its low-water mark from the start: the scheduler keeps it
            mark_point(self.campaign, 0, 0, 0, 0),
            *([fetch_point(self.campaign, int(start_run) - 1, ())]
              if start_run is not None else [])])
        return self.info()

    def fetch_cursor(self) -> tuple[int | None, list[int]]:
        """(every run up to this one is handled, runs after it seen open) of a prompt
        campaign's fetching (one request). Before its first fetch: its highest run, or
        None when it has none yet."""
        found = {series.name: list(series.dicts()) for series in self.influx.query(
            f"SELECT after, open FROM fetch WHERE {self._where}; "
            f"SELECT last(fill) FROM runinfo WHERE {self._where}")}
        if found.get("fetch"):
            row = found["fetch"][-1]
            return row["after"], [int(r) for r in (row.get("open") or "").split(",") if r]
        highest = found.get("runinfo")
        return (highest[0]["time"] if highest else None), []

    def set_fetch_cursor(self, after: int, open_runs: Iterable[int]) -> None:
        self.influx.write([fetch_point(self.campaign, after, open_runs)])

    def _rtype_point(self, rtype: str, filters: list[str], tasks, event: str, now: int,
                     added=(), removed=()) -> Point:
        return rtype_point(self.campaign, rtype, filters, tasks, event, _user(self.influx), now,
                           added, removed)

    def _workflow_points(self, camp: Campaign, tasks, definitions: dict, now: int) -> list:
        """Record the definition of newly active tasks, so the campaign keeps it."""
        return [self._workflow_point(task, definitions[task], now)
                for task in tasks if task in definitions and task not in camp.workflows]

    def _workflow_point(self, task: str, definition: str, now: int) -> Point:
        return workflow_point(self.campaign, task, definition, _user(self.influx), now)

    def create_rtype(self, rtype: str, filters: list[str], tasks: Iterable[str] = (),
                     definitions: dict | None = None, registry: Registry | None = None,
                     allow_undefined: bool = False) -> Campaign:
        """Add a run type; ``definitions`` maps task -> workflow JSON to record.

        The filters are held to the attributes of ``registry`` (default: the
        configured one); a task depending on a task active nowhere is refused
        unless ``allow_undefined``. The campaign only:
        :func:`ecaljenkins.jobsync.create_rtype` is ``rtype-create``.
        """
        check_name(rtype, "run type")
        tasks = [check_name(t, "task") for t in dict.fromkeys(tasks)]
        camp = self.info()
        if rtype in camp.rtypes:
            raise AlreadyExists(f"run type {rtype!r} already exists in campaign "
                                f"{self.campaign!r}")
        parsed = checked(filters, (registry or open_registry()).attributes())
        if not allow_undefined:
            self._check_dependencies(camp, {**_tasks_by_rtype(camp), rtype: tasks}, tasks,
                                     definitions or {})
        now = time.time_ns()
        self.influx.write([self._rtype_point(rtype, [f.text for f in parsed], tasks, "create",
                                             now, added=tasks),
                           *self._workflow_points(camp, tasks, definitions or {}, now)])
        return self.info()

    def update_rtype(self, rtype: str, add: Iterable[str] = (), remove: Iterable[str] = (),
                     filters: list[str] | None = None, backfill: bool = False,
                     definitions: dict | None = None, refresh: Iterable[str] = (),
                     registry: Registry | None = None, allow_undefined: bool = False
                     ) -> RtypeChange:
        """Add/remove active tasks, replace the filters, record workflow definitions.

        Added tasks apply to runs injected from now on; with ``backfill`` the runs
        already in the campaign that match the run type get them too (status new).
        ``refresh`` re-records the definition of already active tasks on purpose.
        Filters and dependencies are checked as by :meth:`create_rtype`. This changes the campaign only: :func:`ecaljenkins.jobsync.update_rtype` also
        takes the definitions from the catalogue and keeps the Jenkins jobs in step.
        """
        check_name(rtype, "run type")
        add = [check_name(t, "task") for t in dict.fromkeys(add)]
        remove = [check_name(t, "task") for t in dict.fromkeys(remove)]
        both = set(add) & set(remove)
        if both:
            raise InputError(f"task {sorted(both)[0]!r} is both added and removed")
        parsed = (checked(filters, (registry or open_registry()).attributes())
                  if filters is not None else None)
        camp = self.info()
        current = camp.rtype(rtype)
        missing = [t for t in remove if t not in current.tasks]
        if missing:
            raise NotFound(f"task {missing[0]!r} is not active in run type {rtype!r} of "
                           f"campaign {self.campaign!r}" + did_you_mean(missing[0],
                                                                        current.tasks))
        definitions = definitions or {}
        change = RtypeChange(added=[t for t in add if t not in current.tasks],
                             removed=remove,
                             unchanged=[t for t in add if t in current.tasks])
        tasks = [t for t in current.tasks if t not in remove] + change.added
        after = {**_tasks_by_rtype(camp), rtype: tasks}
        if not allow_undefined:
            self._check_dependencies(camp, after, change.added, definitions)
        # not refused: a campaign is wound down run type by run type (the seed's page)
        change.stranded = _stranded(camp, after, change.removed)
        new_filters = parsed if parsed is not None else list(current.filters)
        now = time.time_ns()
        points = [self._rtype_point(rtype, [f.text for f in new_filters], tasks, "update", now,
                                    change.added, change.removed)]
        points += self._workflow_points(camp, change.added, definitions, now)
        points += [self._workflow_point(task, definitions[task], now)
                   for task in refresh if task in definitions]
        if backfill and change.added:
            runtype = RunType(rtype, tuple(new_filters), tuple(tasks))
            backfill_points = self._backfill_points(runtype, change.added)
            change.backfilled = sum(p.measurement == "run" for p in backfill_points)
            points = backfill_points + points
        self.influx.write(points)
        return change

    def pause(self) -> dict[str, list[str]]:
        """Remove every active task of every run type, remembering them for :meth:`resume`.

        One write: each run type with tasks gets a ``pause`` point whose ``removed``
        lists them (the history keeps which task belonged to which run type).
        Returns {run type: tasks paused}; a campaign without active task is an
        InputError. The campaign only: :func:`ecaljenkins.jobsync.pause` also
        disables the Jenkins jobs.
        """
        camp = self.info()
        paused = {name: list(rt.tasks) for name, rt in camp.rtypes.items() if rt.tasks}
        if not paused:
            raise InputError(f"campaign {self.campaign!r} has no active task: nothing to pause")
        now = time.time_ns()
        self.influx.write([self._rtype_point(name, [f.text for f in camp.rtypes[name].filters],
                                             (), "pause", now, removed=tasks)
                           for name, tasks in paused.items()])
        return paused

    def resume(self) -> dict[str, list[str]]:
        """Give each paused run type back the tasks its last ``pause`` removed (one write).

        Tasks added to a run type while the campaign was paused stay active.
        Returns {run type: tasks made active again}; a campaign with no pause to
        undo is an InputError.
        """
        camp = self.info()
        pending = self._pending_pauses(camp)
        if not pending:
            raise InputError(f"campaign {self.campaign!r} is not paused: nothing to resume")
        now = time.time_ns()
        resumed, points = {}, []
        for name, tasks in pending.items():
            current = camp.rtypes[name]
            resumed[name] = [t for t in tasks if t not in current.tasks]
            points.append(self._rtype_point(name, [f.text for f in current.filters],
                                            [*current.tasks, *resumed[name]], "resume", now,
                                            added=resumed[name]))
        self.influx.write(points)
        return resumed

    def _pending_pauses(self, camp: Campaign) -> dict[str, list[str]]:
        """{run type: tasks its last pause removed}, for run types not resumed since."""
        pending: dict[str, list[str]] = {}
        for row in self.influx.select(f"SELECT event, removed FROM rtype WHERE {self._where} "
                                      "GROUP BY rtype"):   # time-ordered per run type
            if row.get("event") == "pause":
                pending[row["rtype"]] = [t for t in (row.get("removed") or "").split(",") if t]
            elif row.get("event") == "resume":
                pending.pop(row["rtype"], None)
        return {name: tasks for name, tasks in pending.items() if name in camp.rtypes}

    def _check_dependencies(self, camp: Campaign, tasks_by_rtype: dict, added,
                            definitions: dict) -> None:
        """Refuse an added task whose ``depends_on`` names a task that will be active in
        no run type: its runs would wait forever."""
        active = {task for tasks in tasks_by_rtype.values() for task in tasks}
        for task in added:
            for dep in _depends_on(definitions.get(task) or camp.workflows.get(task)):
                if dep not in active:
                    raise InputError(
                        f"task {task!r} depends on {dep!r}, active in no run type of campaign "
                        f"{self.campaign!r}: its runs would wait forever (add {dep!r} too, or "
                        "give --allow-undefined if it comes later)")

    def _task_keys(self) -> set[tuple[int, str]]:
        """Every (run, task) the campaign holds a row for: one query."""
        return {(row["time"], row["task"]) for row in self.influx.select(
            f"SELECT status FROM run WHERE {self._where} GROUP BY task")}

    def _backfill_points(self, rtype: RunType, tasks: list[str]) -> list[Point]:
        """New rows of ``tasks`` for the runs matching ``rtype``, which becomes one of
        their run types (``runinfo.rtypes``): the rows are then scheduled and counted."""
        existing = self._task_keys()
        points = []
        for row in self.influx.select(f"SELECT meta, rtypes FROM runinfo WHERE {self._where}"):
            run = Run.from_attrs(json.loads(row["meta"]))
            if rtype.matches(run):
                points += [self._new_task_point(run, task) for task in tasks
                           if (run.number, task) not in existing]
                names = [name for name in (row.get("rtypes") or "").split(",") if name]
                if rtype.name not in names:
                    points.append(runinfo_rtypes_point(self.campaign, run.number,
                                                       names + [rtype.name]))
        return points

    # --- runs ------------------------------------------------------------------

    def stored_runs(self) -> list[Run]:
        """The runs of the campaign with the registry metadata stored at injection."""
        rows = self.influx.select(f"SELECT meta FROM runinfo WHERE {self._where}")
        return [Run.from_attrs(json.loads(row["meta"])) for row in rows]

    def _new_task_point(self, run: Run, task: str) -> Point:
        return new_run_point(self.campaign, task, run.number, run.fill, run.era, time.time())

    def inject(self, runs: Iterable[Run], progress: Callable[[int, int], None] | None = None,
               dry_run: bool = False, max_runs: int | None = None) -> InjectSummary:
        """Add runs, each with status ``new`` for every task of every matching run type.

        Idempotent: runs already in the campaign are left as they are. Writes go in
        large batches; each run's ``runinfo`` point follows its task points, so a run
        counts as present only once all its tasks are stored (an interrupted
        injection is completed by running it again). ``dry_run`` writes nothing
        and says what would be written. More than ``max_runs`` new runs is
        refused (TooManyRuns, nothing written): a mistyped range can hold a year.
        """
        camp = self.info()
        runs = sorted({run.number: run for run in runs}.values(), key=lambda r: r.number)
        present = {row["time"] for row in self.influx.select(
            f"SELECT fill FROM runinfo WHERE {self._where}")}
        # rows of runs whose injection was interrupted: written again, they would
        # reset a status the scheduler may have moved on
        partial = self._task_keys() if any(r.number not in present for r in runs) else set()
        summary = InjectSummary()
        points: list[Point] = []
        for run in runs:
            if run.number in present:
                summary.present.append(run.number)
                continue
            rtypes, tasks = camp.tasks_for(run)
            if not rtypes:
                summary.unmatched.append(run.number)
                continue
            points += [self._new_task_point(run, task) for task in tasks
                       if (run.number, task) not in partial]
            points.append(runinfo_point(self.campaign, run.number, run.fill, run.era, rtypes,
                                        run.attrs))
            summary.injected.append(run.number)
        summary.points = len(points)
        if max_runs is not None and len(summary.injected) > max_runs:
            raise TooManyRuns(f"{len(summary.injected)} runs would be injected into campaign "
                              f"{self.campaign!r}, more than {max_runs} at once: check the "
                              "runs (--dry-run shows them) and confirm with --yes")
        if not dry_run:
            self.influx.write(points, progress=progress)
        return summary

    def task_rows(self, task: str | None = None, status: str | None = None,
                  fields: str = "status, fill, era") -> list[dict]:
        """Raw (run, task) rows of the campaign: one query, optionally filtered."""
        where = self._where
        if task:
            where += f" AND task = {quote_str(check_name(task, 'task'))}"
        if status:
            where += f" AND status = {quote_str(check_status(status))}"
        return self.influx.select(f"SELECT {fields} FROM run WHERE {where} GROUP BY task")

    def runs(self, task: str | None = None, status: str | None = None,
             details: bool = False) -> list[RunRow]:
        """Runs with the status of each task, optionally only those where ``task``
        (or any task) has ``status``; an unknown ``task`` is NotFound. ``details``:
        each task's attempt, reason, build, URL or log and output too (same query)."""
        camp = self.info()
        rows = self.task_rows(fields=", ".join(("status", "fill", "era", *DETAIL_FIELDS))
                              if details else "status, fill, era")
        if task:
            check_name(task, "task")
            known = {row["task"] for row in rows} | camp.active_tasks
            if task not in known:
                raise NotFound(f"task {task!r} is not in campaign {self.campaign!r}"
                               + did_you_mean(task, known))
        by_run: dict[int, RunRow] = {}
        for row in rows:
            item = by_run.setdefault(row["time"], RunRow(row["time"], row.get("fill"),
                                                         row.get("era")))
            item.tasks[row["task"]] = row["status"]
            if details:
                item.details[row["task"]] = {key: row.get(key) for key in DETAIL_FIELDS}
        if status:
            check_status(status)
        selected = []
        for item in sorted(by_run.values(), key=lambda r: r.run):
            if task and task not in item.tasks:
                continue
            if status and status not in ([item.tasks[task]] if task else item.tasks.values()):
                continue
            selected.append(item)
        return selected

    def status_counts(self) -> dict[str, dict[str, int]]:
        """{task: {status: number of runs}} for every task known to the campaign."""
        camp = self.info()
        counts: dict[str, Counter] = defaultdict(Counter)
        for task in sorted(camp.active_tasks):
            counts[task]
        for row in self.task_rows(fields="status"):
            counts[row["task"]][row["status"]] += 1
        return {task: dict(c) for task, c in sorted(counts.items())}

    def set_status(self, task: str, runs: Iterable[int], status: str, **fields) -> int:
        """Set the status (and extra fields) of ``task`` for ``runs``: one write."""
        check_name(task, "task")
        check_status(status)
        now = time.time()
        points = [run_point(self.campaign, task, run, status, now, **fields) for run in runs]
        self.influx.write(points)
        return len(points)

    def get_output(self, era: str | None = None, task: str | None = None,
                   runs: Iterable[int] | None = None) -> dict[int, str]:
        """{run: output path} of the runs where ``task`` is done (one query).

        What downstream analyses read: the files a workflow registered with
        ``Handler.register_output``, optionally only for one era or some runs.
        """
        if not task:
            raise InputError("get_output needs the task whose outputs to read")
        where = f"{self._where} AND task = {quote_str(check_name(task, 'task'))}"
        wanted = None if runs is None else {int(run) for run in runs}
        if wanted:   # run numbers are the points' times: read only their span
            where += f" AND time >= {min(wanted)} AND time <= {max(wanted)}"
        outputs = {}
        for row in self.influx.select(f"SELECT status, output, era FROM run WHERE {where}"):
            if (row.get("status") == Status.DONE and row.get("output")
                    and (era is None or row.get("era") == era)
                    and (wanted is None or row["time"] in wanted)):
                outputs[row["time"]] = row["output"]
        return dict(sorted(outputs.items()))


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise InputError(f"invalid status {status!r}: use one of {', '.join(STATUSES)}")
    return status
