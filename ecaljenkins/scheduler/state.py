"""Read: a campaign's workflow definitions and the (run, task) rows that can still change.

The rows are read from the campaign's low-water mark on (docs/schema.md, "The
low-water mark"): below it every row is settled, so a cycle costs what is in
flight, not the campaign's history. :func:`low_water_mark` computes the next mark
from what was read; :func:`write_mark` stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

from ..campaign import Campaign
from ..errors import ConfigError, InfluxError
from ..influx import Influx
from ..names import quote_str
from ..schema import IN_FLIGHT, ROW_FIELDS, Status, mark_point
from ..workflows import Workflow

#: seconds a write may take from its arrival (when the server stamps its ``lowered``
#: point) until its rows can be read: a mark's ``seen`` is this much before its read
SETTLE_SECONDS = 300
#: the ways a task groups runs (``group_by`` other than ``run``)
GROUP_KINDS = ("fill", "era")


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
    #: jobs of a task of many jobs rolled up into the row (ecaljenkins.taskjobs)
    jobs: int | None = None


class FillEnd(NamedTuple):
    """What the run registry said this cycle of the fill of a prompt campaign's newest
    run (:func:`~.fetch.newest_fill_end`): whether that fill's group may still grow."""

    fill: int
    #: when the fill ended (ISO 8601); None while it goes on, or when unknown
    end: str | None
    #: runs of the fill the registry has, still open (their data incomplete), that a
    #: fill-grouped task of the campaign would take
    open_runs: tuple[int, ...] = ()
    #: why the registry could not tell (a warning was given)
    error: str | None = None


class Mark(NamedTuple):
    """A campaign's stored low-water mark: rows below ``run`` settled as of ``seen`` (ns);
    ``starts`` the first run of ``run``'s fill and era groups."""

    run: int
    seen: int
    starts: dict


@dataclass
class CampaignState:
    """A campaign and its (run, task) rows from run ``since`` on, by task (the rows of a
    fill/era-grouped task from where the group of ``since`` starts)."""

    campaign: Campaign
    rows: dict[str, list[Row]]
    #: the first run read: every (run, task) below it is settled (0: every row was read)
    since: int = 0
    #: where the fill and the era of ``since`` start: the rows of a task grouped by one
    #: are read from there, so its groups are whole
    starts: dict = field(default_factory=dict)
    #: the mark stored before this read (None: the campaign has none, every row was read)
    mark: Mark | None = None
    #: the ``seen`` of the next mark (ns of the server's clock), None if unknown
    seen: int | None = None
    #: task -> ``fill`` or ``era``: the active tasks that group runs
    grouped: dict = field(default_factory=dict)
    #: run -> its run types (``runinfo.rtypes`` text), for the runs read: which tasks it
    #: has now
    rtypes: dict[int, str] = field(default_factory=dict)
    #: prompt campaigns: what the run registry said of the end of the newest run's fill
    #: this cycle (None: not asked); the planner closes that fill's group once it is over
    fill_end: FillEnd | None = None

    def has_task(self, run: int, task: str) -> bool:
        """The one rule (:meth:`Campaign.tasks_of_run`): one of the run's run types has
        the task."""
        return task in self.campaign.tasks_of_run(self.rtypes.get(run))

    @property
    def groups_since(self) -> int:
        """Where whatever reads a group's runs (``runinfo``) must start."""
        return min(self.starts.values(), default=self.since)

    @property
    def newest(self) -> Row | None:
        """The row of the highest run (rows are sorted by run within each task)."""
        return max((rows[-1] for rows in self.rows.values() if rows), key=lambda row: row.run,
                   default=None)

    @property
    def last_run(self) -> int:
        newest = self.newest
        return newest.run if newest else 0

    def flights(self) -> list[Flight]:
        """The builds in flight, oldest first: each one's rows share its trigger id.

        A row whose status its jobs roll up (a task of many jobs, ``jobs`` > 0) is
        not a build in flight: the build that submitted them is over."""
        found: dict = {}
        for task, rows in self.rows.items():
            for row in rows:
                if row.status in IN_FLIGHT and not row.jobs:
                    found.setdefault((task, row.trigger or row.run), []).append(row)
        return [Flight(task, tuple(rows)) for (task, _), rows in found.items()]


class Flight(NamedTuple):
    """One build queued or running: its task and the rows it builds."""

    task: str
    rows: tuple[Row, ...]


def read_state(influx: Influx, camp: Campaign,
               grouped: dict[str, str] | None = None) -> CampaignState:
    """The (run, task) rows that can still change, by task, sorted by run.

    ``grouped``: task -> ``fill``/``era``, the active tasks that group runs (the
    rows of their groups are read whole); None: every task may. Two requests: the
    mark, then the lowest run written back since it was set and the rows from the
    mark on (and from where its fill/era starts, for grouped tasks). When a write
    brought back a run below the mark, two more: where that run's fill and era
    start, and the rows from there. A campaign without a mark has every row read
    (``state.mark`` None). Every rows query reads the run types of the same runs
    (``runinfo.rtypes``): they say which rows are scheduled
    (:meth:`CampaignState.has_task`).
    """
    grouped = _grouping(camp, grouped)
    mark = read_mark(influx, camp.name)
    seen = _seen(influx, mark)
    where = f"campaign = {quote_str(camp.name)}"
    rtypes: dict[int, str] = {}
    if mark is None:
        return CampaignState(camp, _rows(influx, camp, influx.stream(_rows_query(where)),
                                         rtypes), 0, {}, None, seen, grouped, rtypes)
    lowered: list[int] = []

    def pieces():   # the lowest run written back comes first, then the rows, as they come
        statements = [f"SELECT min(run) FROM lowered WHERE {where} AND time >= {mark.seen}",
                      *_group_queries(where, grouped, mark.starts, mark.run),
                      _rows_query(f"{where} AND time >= {mark.run}")]
        for series in influx.stream("; ".join(statements)):
            if series.name == "lowered":
                lowered.extend(row[1] for row in series.values)
            else:
                yield series

    rows = _rows(influx, camp, pieces(), rtypes)
    lowest = min(lowered, default=None)
    if lowest is None or lowest >= mark.run:
        return CampaignState(camp, rows, mark.run, mark.starts, mark, seen, grouped, rtypes)
    lowest = max(lowest, 0)
    starts = group_starts(influx, camp.name, lowest, set(grouped.values()))
    below = _rows(influx, camp, influx.stream("; ".join([
        *_group_queries(where, grouped, starts, lowest),
        _rows_query(f"{where} AND time >= {lowest} AND time < {mark.run}")])), rtypes)
    for task, task_rows in rows.items():   # grouped rows read twice are kept once
        merged = {row.run: row for row in below.get(task, ())}
        merged.update((row.run, row) for row in task_rows)
        below[task] = [merged[run] for run in sorted(merged)]
    return CampaignState(camp, below, lowest, starts, mark, seen, grouped, rtypes)


def _grouping(camp: Campaign, grouped: dict[str, str] | None) -> dict[str, str]:
    if grouped is None:   # unknown: read every task's rows as if grouped by era
        return {task: "era" for task in camp.active_tasks}
    return {task: kind for task, kind in grouped.items() if kind in GROUP_KINDS}


def _group_queries(where: str, grouped: dict[str, str], starts: dict, since: int) -> list[str]:
    """The rows of the grouped tasks from where their group of ``since`` starts to it."""
    queries = []
    for kind in GROUP_KINDS:
        tasks = sorted(task for task, by in grouped.items() if by == kind)
        start = starts.get(kind, since)
        if tasks and start < since:
            which = " OR ".join(f"task = {quote_str(task)}" for task in tasks)
            span = f"time >= {start} AND time < {since}"
            queries.append(_rows_query(f"{where} AND ({which}) AND {span}",
                                       f"{where} AND {span}"))
    return queries


def reread(influx: Influx, state: CampaignState) -> CampaignState:
    """The campaign read again as :func:`read_state` does (after the cycle injected runs
    or rolled jobs up), with what the registry said of the newest fill kept."""
    fresh = read_state(influx, state.campaign, state.grouped)
    fresh.fill_end = state.fill_end
    return fresh


def _rows_query(where: str, runs_where: str | None = None) -> str:
    """The rows of ``where``, and the run types of the same runs (``runs_where``: the
    same span without the task filter; run numbers are the times of both)."""
    return (f"SELECT {', '.join(ROW_FIELDS)} FROM run WHERE {where} GROUP BY task; "
            f"SELECT rtypes FROM runinfo WHERE {runs_where or where}")


def _rows(influx: Influx, camp: Campaign, pieces, rtypes: dict[int, str]
          ) -> dict[str, list[Row]]:
    """Rows by task from the pieces of a rows query, each turned into rows as it comes,
    so the raw JSON of a whole campaign is never held at once; the runs' run types
    go into ``rtypes``."""
    expected = ["time", *ROW_FIELDS]
    rows: dict[str, list[Row]] = {}
    for series in pieces:
        if series.name == "runinfo":
            rtypes.update((run, text or "") for run, text in series.values)
            continue
        if series.columns != expected:
            raise InfluxError(f"unexpected columns {series.columns} in the run rows of "
                              f"campaign {camp.name!r}")
        rows.setdefault(series.tags["task"], []).extend(map(Row._make, series.values))
    return rows


def read_mark(influx: Influx, campaign: str) -> Mark | None:
    """The campaign's stored low-water mark (one query), None if it has none."""
    for series in influx.query(f"SELECT run, seen, fill_run, era_run FROM mark WHERE "
                               f"campaign = {quote_str(campaign)}"):
        for _time, run, seen, fill_run, era_run in series.values:
            if run is not None and seen is not None:
                return Mark(int(run), int(seen), {"fill": int(fill_run or run),
                                                  "era": int(era_run or run)})
    return None


def _seen(influx: Influx, mark: Mark | None, settle: float | None = None) -> int | None:
    """What the next mark's ``seen`` is: the server's clock before the rows were read,
    less ``settle`` seconds (default :data:`SETTLE_SECONDS`; the old ``seen`` when the
    server gave no clock)."""
    if influx.server_time is None:
        return mark.seen if mark else None
    return int((influx.server_time - (SETTLE_SECONDS if settle is None else settle)) * 1e9)


def group_starts(influx: Influx, campaign: str, run: int, kinds: Iterable[str]) -> dict:
    """Where the fill and the era (``kinds``) of ``run`` start: one query.

    Walks the campaign's runs down from ``run`` while they share its fill or era
    and stops reading there: fills and eras are ranges of run numbers.
    """
    kinds = set(kinds) & set(GROUP_KINDS)
    starts = {kind: max(run, 0) for kind in kinds}
    if not kinds or run <= 0:
        return starts
    going, keys = set(kinds), None
    for series in influx.stream(f"SELECT fill, era FROM runinfo WHERE campaign = "
                                f"{quote_str(campaign)} AND time <= {run} "
                                "ORDER BY time DESC"):
        for time, fill, era in series.values:
            values = {"fill": fill, "era": era}
            if keys is None:
                keys = values
            going = {kind for kind in going if values[kind] == keys[kind]}
            if not going:
                return starts
            for kind in going:
                starts[kind] = time
    return starts


def low_water_mark(state: CampaignState, workflows: dict[str, Workflow]) -> int:
    """The lowest run with a (run, task) that can still change, never above the newest run.

    Settled, and so below the mark: ``done``, ``failed`` out of retries, and the
    rows of a task that is inactive (for their run: :meth:`CampaignState.has_task`)
    or has no definition (a run type or workflow change lowers the mark to 0). The newest run is always read: a prompt campaign
    fetches after it, new runs may join its group. Without rows: where the read started.
    """
    active = state.campaign.active_tasks
    mark = None
    for task, rows in state.rows.items():
        wf = workflows.get(task)
        if task not in active or wf is None:
            continue
        for row in rows:   # sorted by run: the first one that can change is the lowest
            if row.status == Status.DONE or (row.status == Status.FAILED
                                             and (row.attempt or 0) > wf.max_retries):
                continue
            if not state.has_task(row.run, task):
                continue
            mark = row.run if mark is None else min(mark, row.run)
            break
    newest = state.newest
    if newest is None:
        return state.since if mark is None else mark
    return newest.run if mark is None else min(mark, newest.run)


def write_mark(influx: Influx, state: CampaignState, workflows: dict[str, Workflow]) -> int:
    """Store the campaign's next mark: two requests (where its fill and era start, the
    write). The state must hold every row from its ``since`` on, as read and changed
    by this cycle. Returns the mark.
    """
    run = low_water_mark(state, workflows)
    starts = group_starts(influx, state.campaign.name, run, set(state.grouped.values()))
    influx.write([mark_point(state.campaign.name, run, state.seen if state.seen is not None
                             else 0, starts.get("fill", run), starts.get("era", run))])
    return run


def definitions(camp: Campaign, catalogue: Callable[[], dict[str, Workflow]],
                warnings: list[str]) -> dict[str, Workflow]:
    """Each task's recorded definition; the catalogue's when none was recorded.

    ``catalogue()`` is called only for an active task without a recorded
    definition; a definition that cannot be read is left out with a warning.
    """
    workflows = {}
    for task, definition in camp.workflows.items():
        try:
            workflows[task] = Workflow.from_json(definition)
        except ConfigError as err:
            warnings.append(f"task {task!r}: {err}")
    for task in sorted(camp.active_tasks - set(workflows)):
        known = catalogue()
        if task in known:
            workflows[task] = known[task]
            warnings.append(f"task {task!r} has no recorded workflow definition: "
                            "using the catalogue's")
    return workflows


def rebuild_mark(influx: Influx, camp: Campaign, workflows: dict[str, Workflow],
                 settle: float | None = None) -> int:
    """Read every row of the campaign and store its mark (``index --rebuild``); returns it.

    What migrates a campaign made before marks existed, or repairs a lost one.
    ``settle``: seconds of writes before now read again by the next cycle (tests and
    the benchmark, whose writes are over, pass 0).
    """
    mark = read_mark(influx, camp.name)   # first: the server's clock before the rows
    rtypes: dict[int, str] = {}
    rows = _rows(influx, camp, influx.stream(_rows_query(f"campaign = {quote_str(camp.name)}")),
                 rtypes)
    state = CampaignState(camp, rows, 0, {}, mark, _seen(influx, mark, settle),
                          grouping(camp, workflows), rtypes)
    return write_mark(influx, state, workflows)


def grouping(camp: Campaign, workflows: dict[str, Workflow]) -> dict[str, str]:
    """task -> ``fill``/``era`` for the active tasks that group runs."""
    return {task: wf.group_by for task, wf in workflows.items()
            if task in camp.active_tasks and wf.group_by in GROUP_KINDS}
