"""The cycle: the stages of docs/scheduler.md, in order, for every active campaign."""

from __future__ import annotations

import os
import time
from typing import Callable

from ..campaign import Campaign, list_campaigns
from ..errors import ConfigError, EcalError, NotFound
from ..executors import EXECUTORS
from ..influx import Influx, gc_paused
from ..names import did_you_mean
from ..schema import Status
from ..settings import Settings
from ..workflows import Workflow, load_catalogue
from .clock import Clock
from .fetch import fetch
from .lease import LEASE_SECONDS, LEASE_SETTLE, Lease, holder_id
from .plan import plan
from .reconcile import GRACE_SECONDS, reconcile, settle_local
from .report import CampaignReport, CycleReport
from .state import definitions, grouping, read_state, reread, write_mark
from .trigger import trigger

#: builds triggered per cycle at most (all campaigns of the database together)
DEFAULT_MAX_TRIGGERS = 500


def make_executor(name: str, jobs: int = 2, log_dir: str | os.PathLike = "logs",
                  settings: Settings | None = None, schedd: str | None = None):
    """The executor called ``name`` (see :data:`EXECUTORS`); ``jobs`` is the local
    executor's parallel builds, ``schedd`` the htcondor executor's schedd."""
    if name == "jenkins":
        from ..executors import JenkinsExecutor
        return JenkinsExecutor(settings=settings)
    if name == "local":
        from ..executors import LocalExecutor
        return LocalExecutor(jobs=jobs, log_dir=log_dir)
    if name == "htcondor":
        from ..condor import HTCondorExecutor
        return HTCondorExecutor(schedd, log_dir=log_dir, settings=settings)
    raise ConfigError(f"unknown executor {name!r}: use {' or '.join(EXECUTORS)}")


class Scheduler:
    """One database's scheduler. ``clock`` is injectable so tests need no sleeping.

    ``executor`` is a :class:`~ecaljenkins.executors.JenkinsExecutor` or
    :class:`~ecaljenkins.executors.LocalExecutor` (unused in a dry run);
    ``registry`` the run registry of prompt campaigns (opened on first need).
    """

    def __init__(self, influx: Influx, executor=None, *, dry_run: bool = False,
                 max_triggers: int | None = DEFAULT_MAX_TRIGGERS,
                 clock: Clock = time.time, registry=None,
                 catalogue: Callable[[], dict[str, Workflow]] = load_catalogue,
                 grace: float = GRACE_SECONDS, lease_seconds: float = LEASE_SECONDS,
                 lease_settle: float = LEASE_SETTLE):
        if executor is None and not dry_run:
            raise ConfigError("a scheduler that triggers builds needs an executor")
        self.influx, self.executor, self.dry_run = influx, executor, dry_run
        self.max_triggers, self.clock, self.grace = max_triggers, clock, grace
        self._registry, self._catalogue_loader = registry, catalogue
        self._catalogue: dict[str, Workflow] | None = None
        self._pool = None   # the schedd of the jobs of tasks of many jobs, when needed
        self.lease = Lease(influx, holder_id(), lease_seconds, lease_settle, clock)

    def cycle(self, campaign: str | None = None) -> CycleReport:
        """Schedule every active campaign of the database, or only ``campaign``."""
        cycle = CycleReport(self.influx.db, self.dry_run)
        campaigns = self._active(campaign, cycle)
        if not campaigns:
            return cycle
        if not self.dry_run:
            cycle.skipped = self.lease.acquire()
            cycle.took_over = self.lease.took_over
            if cycle.skipped:
                return cycle
        try:    # from here on, whatever happens (SIGTERM too), the lease is released
            self._catalogue = None
            if self.executor is not None:
                self.executor.new_cycle()
            if self._pool is not None:   # the schedd of the jobs: read afresh
                self._pool.new_cycle()
            budget = self.max_triggers
            for camp in campaigns:
                report = CampaignReport(camp.name, camp.kind)
                cycle.campaigns.append(report)
                try:
                    with gc_paused():   # a campaign's rows and plan hold no cycles
                        budget = self._campaign(camp, report, budget)
                except EcalError as err:
                    report.errors.append(f"campaign {camp.name!r}: {err}")
        finally:
            if not self.dry_run:
                self.lease.release()
        return cycle

    def _active(self, campaign: str | None, cycle: CycleReport) -> list[Campaign]:
        """The campaigns to schedule (read: one request); the inactive ones noted."""
        campaigns = list_campaigns(self.influx)
        if campaign is not None:
            chosen = [c for c in campaigns if c.name == campaign]
            if not chosen:
                raise NotFound(f"campaign {campaign!r} does not exist in database "
                               f"{self.influx.db!r}"
                               + did_you_mean(campaign, [c.name for c in campaigns]))
            campaigns = chosen
        cycle.inactive = [c.name for c in campaigns if not c.active]
        return [c for c in campaigns if c.active]

    def _campaign(self, camp: Campaign, report: CampaignReport,
                  budget: int | None) -> int | None:
        """Read, fetch, reconcile, plan, trigger one campaign; the budget left."""
        workflows = definitions(camp, lambda: self._load_catalogue(report), report.warnings)
        state = read_state(self.influx, camp, grouping(camp, workflows))
        if state.mark is None:
            report.warnings.append(
                f"campaign {camp.name!r} has no low-water mark: every run was read; "
                f"'ecalrunctrl.py --db {self.influx.db} index --rebuild' creates it")
        if camp.kind == "prompt":
            try:
                state = fetch(self.influx, self._open_registry, state, report, self.dry_run,
                              workflows, self.clock())
            except EcalError as err:   # the runs already there are still scheduled
                report.fetched = None
                report.errors.append(f"campaign {camp.name!r}: fetching new runs: {err}")
        now = self.clock()
        if not self.dry_run:
            state = self._check_jobs(camp, state, workflows, report, now)
        relaunches = [] if self.dry_run else reconcile(self.influx, self.executor, state,
                                                        report, now, self.grace)
        report.plan = plan(state, workflows, now, budget)
        report.since, report.groups_since = state.since, state.groups_since
        report.warnings += report.plan.warnings
        if self.dry_run:
            return budget
        builds = relaunches + report.plan.builds
        if builds:
            trigger(self.influx, self.executor, camp.name, builds, workflows, report, now)
            outcomes = self.executor.finish()   # local builds: they ran meanwhile
            if outcomes:
                settle_local(self.influx, camp, outcomes, report, self.clock())
        if state.mark is not None:   # a missing mark is made by 'index --rebuild' only
            report.mark = write_mark(self.influx, state, workflows)
        return None if budget is None else budget - len(report.plan.builds)

    def _check_jobs(self, camp: Campaign, state, workflows, report: CampaignReport,
                    now: float):
        """The jobs of tasks of many jobs: checked, resubmitted, rolled up (read again
        when that changed a row)."""
        from ..condorjobs import check
        report.jobs = check(self.influx, camp.name, workflows, self._condor_pool, now,
                            report.warnings)
        if report.jobs.changed:
            state = reread(self.influx, state)
        if report.jobs.waiting:   # a job's retry is coming: no new build of the run
            state.rows = {task: [row._replace(status=Status.RUNNING)
                                 if (task, row.run) in report.jobs.waiting else row
                                 for row in rows] for task, rows in state.rows.items()}
        return state

    def _condor_pool(self):
        """The schedd of the jobs: the htcondor executor's, else CONDOR_CONFIG's."""
        if self._pool is None:
            self._pool = getattr(self.executor, "pool", None)
        if self._pool is None:
            from ..condor import CondorPool
            self._pool = CondorPool(log_dir=getattr(self.executor, "log_dir", "logs"))
        return self._pool

    def _load_catalogue(self, report: CampaignReport) -> dict[str, Workflow]:
        """The workflow catalogue, read once per cycle (empty, with a warning, if broken)."""
        if self._catalogue is None:
            try:
                self._catalogue = self._catalogue_loader()
            except ConfigError as err:
                report.warnings.append(str(err))
                self._catalogue = {}
        return self._catalogue

    def _open_registry(self):
        if self._registry is None:
            from ..registry import open_registry   # only prompt campaigns need it
            self._registry = open_registry(chosen=True)
        return self._registry
