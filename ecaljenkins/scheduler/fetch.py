"""Fetch: a prompt campaign's new runs, from the run registry, before planning."""

from __future__ import annotations

from ..campaign import RunCtrl
from ..influx import Influx
from .report import CampaignReport
from .state import CampaignState, reread


def fetch(influx: Influx, registry, state: CampaignState, report: CampaignReport,
          dry_run: bool) -> CampaignState:
    """Inject the closed runs after the campaign's newest (only counted, in a dry run).

    ``registry()`` returns the run registry; it is called only when there is
    something to ask (opening OMS costs a login). A campaign with no run
    yet fetches nothing: its first run says where fetching starts, so a new campaign
    never pulls the whole history of CMS. Returns the state to plan on: read again
    when runs were injected.
    """
    camp = state.campaign
    if not state.last_run:
        report.warnings.append(f"prompt campaign {camp.name!r} has no run yet: inject its "
                               "first run to set where fetching starts")
        return state
    new = registry().after(state.last_run, closed_only=True)
    if dry_run:
        report.fetched = len(new)
        return state
    if not new:
        return state
    summary = RunCtrl(influx, camp.name).inject(new)
    report.fetched = len(summary.injected)
    return reread(influx, state) if summary.injected else state
