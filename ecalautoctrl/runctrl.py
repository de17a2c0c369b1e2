"""``RunCtrl``: a campaign as ECAL's scripts read it (``getOutput``)."""

from __future__ import annotations

from typing import Iterable

from ecaljenkins import campaign, taskjobs
from ecaljenkins.errors import InputError
from ecaljenkins.registry import parse_run


class RunCtrl(campaign.RunCtrl):
    """``RunCtrl(dbname='ecal_prompt_v1', campaign='prompt')``: ecaljenkins'
    :class:`~ecaljenkins.campaign.RunCtrl` (every method of it), plus
    :meth:`getOutput`.

    The credentials come from ``ECAL_INFLUXDB_USER`` and ``ECAL_INFLUXDB_PWD``
    (or ``ECAL_INFLUXDB_PASSWORD``); ``dbname`` None is ``ECAL_INFLUXDB_DB``.
    """

    def __init__(self, dbname: str | None = None, campaign: str | None = None):
        if not campaign:
            raise InputError("RunCtrl needs the campaign: RunCtrl(dbname=..., campaign=...)")
        super().__init__(dbname, campaign)

    def getOutput(self, era: str | None = None, process: str | None = None,
                  runs: Iterable[int | str] | None = None) -> list[str]:
        """The outputs of task ``process`` for the runs where it is done, one element
        per job, each the text the job stored (often comma-separated paths).

        ``era`` and ``runs`` (numbers as int or str) select the runs; a run done by
        a build without jobs gives its build's output. One query.
        """
        if not process:
            raise InputError("getOutput needs process=<the task whose outputs to read>")
        wanted = None if runs is None else [parse_run(str(run).strip()) for run in runs]
        return taskjobs.outputs(self.influx, self.campaign, process, era=era, runs=wanted)
