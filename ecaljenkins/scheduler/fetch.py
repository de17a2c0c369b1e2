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
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..campaign import RunCtrl
from ..influx import Influx
from ..registry import Run
from .report import CampaignReport
from .state import CampaignState, reread

#: an open run this much older (by start time) than a closed later one is given up
ABANDONED_AFTER = timedelta(days=7)


def fetch(influx: Influx, registry, state: CampaignState, report: CampaignReport,
          dry_run: bool) -> CampaignState:
    """Inject the runs closed since the campaign's cursor (only counted, in a dry run).

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
    if dry_run:
        return state
    cursor = waiting[0].number - 1 if waiting else max((r.number for r in runs), default=after)
    still_open = [run.number for run in waiting]
    if (cursor, still_open) != (after, seen_open):
        ctrl.set_fetch_cursor(cursor, still_open)
    return reread(influx, state) if report.fetched else state


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
