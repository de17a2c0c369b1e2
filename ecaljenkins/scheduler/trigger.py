"""Intent, trigger, record: start the planned builds so that none starts twice.

Jenkins and InfluxDB cannot be updated atomically, so every build is first
written as an *intent* (status queued, a fresh trigger id), then triggered, then
its queue id recorded; the builds Jenkins refused get their previous state back
in that same second write. A crash in between leaves intents that the next
cycle's reconciliation finds in Jenkins by their trigger id.
"""

from __future__ import annotations

import uuid

from ..errors import EcalError, JenkinsRefused, JenkinsTimeout
from ..executors import BuildRequest
from ..influx import Influx
from ..schema import Status, run_point
from ..workflows import Workflow
from .plan import Build
from .report import CampaignReport, Triggered


def trigger(influx: Influx, executor, campaign: str, builds: list[Build],
            workflows: dict[str, Workflow], report: CampaignReport, now: float) -> None:
    """Start ``builds``: one write of intents, the triggers, one write of what followed."""
    requests = [_request(influx.db, campaign, build, workflows.get(build.task))
                for build in builds]
    # the rows of these builds were read this cycle: above the mark, which is set after
    influx.write([point for build, request in zip(builds, requests)
                  for point in _intent(campaign, build, request.trigger_id, now)],
                 lower_marks=False)
    after = _start(executor, campaign, builds, requests, report, now)
    if after:
        influx.write(after, lower_marks=False)


def _request(db: str, campaign: str, build: Build, wf: Workflow | None) -> BuildRequest:
    """What the executor needs to start ``build``, with a fresh trigger id."""
    grouped = wf.group_by != "run" if wf else len(build.rows) > 1
    return BuildRequest(db, campaign, build.task, build.runs, uuid.uuid4().hex,
                        build.attempt(build.rows[0]), wf.command if wf else None,
                        wf.timeout_minutes if wf else None, grouped,
                        scm=wf.scm if wf else None, node=wf.node if wf else None)


def _intent(campaign: str, build: Build, trigger_id: str, now: float) -> list:
    """The rows of ``build`` queued under ``trigger_id``, before it is triggered."""
    return [run_point(campaign, build.task, row.run, Status.QUEUED, now,
                      attempt=build.attempt(row), trigger=trigger_id, queue_id=0, build=0,
                      relaunched=int(build.relaunch))
            for row in build.rows]


def _start(executor, campaign: str, builds: list[Build], requests: list[BuildRequest],
           report: CampaignReport, now: float) -> list:
    """Trigger each build; the points recording queue ids and rolling back refusals.

    A refusal stops the other builds of its task this cycle (they would fail
    alike); a timeout keeps the intent, since the build may exist.
    """
    after = []
    refused: set[str] = set()    # tasks whose trigger the executor refused in this cycle
    for build, request in zip(builds, requests):
        if build.task in refused:
            after += _rollback(campaign, build, now)
            continue
        try:
            queue_id = executor.start(request)
        except JenkinsTimeout as err:
            report.errors.append(f"{err}; whether build of run(s) {_runs(build)} was "
                                 "queued is unknown: the next cycle looks for it")
            continue
        except EcalError as err:   # refused by Jenkins: a human's job; else a failure
            refused.add(build.task)
            (report.refused if isinstance(err, JenkinsRefused) else report.errors).append(
                f"{err}; {build.task} run(s) {_runs(build)} stay(s) {build.rows[0].status}")
            after += _rollback(campaign, build, now)
            continue
        report.triggered.append(Triggered(build, request.trigger_id, int(queue_id or 0)))
        if queue_id:
            after += [run_point(campaign, build.task, row.run, None, now,
                                queue_id=int(queue_id)) for row in build.rows]
    return after


def _rollback(campaign: str, build: Build, now: float) -> list:
    """Points giving the rows of a build that was not triggered their previous state."""
    return [run_point(campaign, build.task, row.run, row.status,
                      row.updated or now, attempt=row.attempt or 0,
                      trigger=row.trigger or "", queue_id=row.queue_id or 0,
                      build=row.build or 0, relaunched=row.relaunched or 0)
            for row in build.rows]


def _runs(build: Build) -> str:
    return ",".join(map(str, build.runs))
