"""Fetch: a prompt campaign's new runs, from the run registry, before planning.

Runs close out of order: local and MiniDAQ runs share the run counter with global
runs, so run 101 may still be open when 102 has closed. Fetching "the closed runs
after the highest one injected" would skip 101 forever. The campaign keeps a
**cursor** instead (the ``fetch`` point of docs/schema.md): every run up to
``after`` is handled, and the runs after it are asked for again at every cycle
until they close. The cursor stops before the oldest run still open; a run still
open while a run started :data:`ABANDONED_AFTER` later has closed is given up
with a warning (its end was never recorded), so one stuck run cannot hold the
fetching back for ever.

The same stage asks when the fill of the newest run ended (:func:`newest_fill_end`),
so the planner can close that fill's group without waiting for a run of the next
fill: one request, and only when a fill-grouped task has runs of that fill ready
but for the group being open.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..campaign import RunCtrl
from ..errors import EcalError
from ..influx import Influx
from ..registry import Registry, Run
from ..workflows import Workflow
from .plan import plan
from .report import CampaignReport
from .state import CampaignState, FillEnd, reread

#: an open run this much older (by start time) than a closed later one is given up
ABANDONED_AFTER = timedelta(days=7)


def fetch(influx: Influx, registry, state: CampaignState, report: CampaignReport,
          dry_run: bool, workflows: dict[str, Workflow], now: float) -> CampaignState:
    """Inject the runs closed since the campaign's cursor (only counted, in a dry run),
    then learn whether the newest run's fill ended (:func:`newest_fill_end`).

    ``registry()`` returns the run registry; it is called only when there is
    something to ask (opening OMS costs a login). The cursor starts at the
    campaign's start run (``create --start-run``), else at its first run: a
    campaign with neither fetches nothing, so a new campaign never pulls the whole
    history of CMS. Only runs matching a run type count (as ``inject`` adds
    them). Returns the state to plan on: read again when runs were injected.
    """
    camp = state.campaign
    ctrl = RunCtrl(influx, camp.name)
    after, seen_open = ctrl.fetch_cursor()
    if not after:
        report.warnings.append(f"prompt campaign {camp.name!r} has no run yet: inject its "
                               "first run (or create it with --start-run) to set where "
                               "fetching starts")
        return state
    runs = registry().after(after, closed_only=False)
    waiting, abandoned = open_runs(runs)
    report.warnings += [f"run {run.number} is still open while runs started "
                        f"{ABANDONED_AFTER.days} days after it have closed: not fetched"
                        for run in abandoned]
    closed = [run for run in runs if run.closed]
    summary = ctrl.inject(closed, dry_run=dry_run) if closed else None
    report.fetched = len(summary.injected) if summary else 0
    if not dry_run:
        cursor = waiting[0].number - 1 if waiting else max((r.number for r in runs),
                                                           default=after)
        still_open = [run.number for run in waiting]
        if (cursor, still_open) != (after, seen_open):
            ctrl.set_fetch_cursor(cursor, still_open)
        if report.fetched:
            state = reread(influx, state)
    return newest_fill_end(registry(), state, workflows, now, waiting, report)


def newest_fill_end(registry: Registry, state: CampaignState, workflows: dict[str, Workflow],
                    now: float, waiting: list[Run], report: CampaignReport) -> CampaignState:
    """``state`` with ``fill_end`` set: what the registry says of the end of the newest
    run's fill, asked only when a fill-grouped task keeps runs of that fill waiting
    because the group may still grow (one request; none otherwise).

    ``waiting``: the runs after the cursor still open. Those of the fill that a
    fill-grouped task would take keep the group open even once the fill ended (OMS
    ends a fill at the beam dump; its last run closes later). A registry error
    leaves the group open, with a warning: the cycle goes on.
    """
    newest = state.newest
    if newest is None or not newest.fill or "fill" not in state.grouped.values():
        return state
    if plan(state, workflows, now).open_fill != newest.fill:
        return state
    fill, camp = newest.fill, state.campaign
    fill_tasks = {task for task, kind in state.grouped.items() if kind == "fill"}
    try:
        end = registry.fill_end(fill)
    except EcalError as err:
        report.warnings.append(f"campaign {camp.name!r}: cannot tell whether fill {fill} "
                               f"ended ({err}): its group stays open")
        state.fill_end = FillEnd(fill, None, error=str(err))
        return state
    still_open = tuple(run.number for run in waiting
                       if run.fill == fill and fill_tasks & set(camp.tasks_for(run)[1]))
    state.fill_end = FillEnd(fill, end, still_open)
    return state


def open_runs(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(open runs to wait for, open runs given up), each sorted by number."""
    latest = max((_start(run) for run in runs if run.closed), default=None)
    waiting, abandoned = [], []
    for run in runs:
        if run.closed:
            continue
        stale = latest is not None and latest - _start(run) > ABANDONED_AFTER
        (abandoned if stale else waiting).append(run)
    return waiting, abandoned


def _start(run: Run) -> datetime:
    start = datetime.fromisoformat(run.start_time)
    return start if start.tzinfo else start.replace(tzinfo=timezone.utc)
