"""Read: a campaign's workflow definitions and every (run, task) row, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from ..campaign import Campaign
from ..errors import ConfigError, InfluxError
from ..influx import Influx
from ..names import quote_str
from ..schema import IN_FLIGHT, ROW_FIELDS
from ..workflows import Workflow


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

    def flights(self) -> list[Flight]:
        """The builds in flight, oldest first: each one's rows share its trigger id."""
        found: dict = {}
        for task, rows in self.rows.items():
            for row in rows:
                if row.status in IN_FLIGHT:
                    found.setdefault((task, row.trigger or row.run), []).append(row)
        return [Flight(task, tuple(rows)) for (task, _), rows in found.items()]


class Flight(NamedTuple):
    """One build queued or running: its task and the rows it builds."""

    task: str
    rows: tuple[Row, ...]


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
