"""Helpers of the scheduler tests: campaigns of synthetic runs, fake Jenkins jobs, a clock."""

import csv
import time

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.executors import JenkinsExecutor
from ecaljenkins.names import job_name
from ecaljenkins.registry import Run
from ecaljenkins.scheduler import Scheduler

FIRST_RUN = 355100
FIRST_FILL = 8000


def make_runs(count: int, per_fill: int = 3, first: int = FIRST_RUN, era: str = "Run2022C",
              closed: bool = True) -> list[Run]:
    """``count`` global runs, ``per_fill`` per fill, in one era."""
    return [Run.from_attrs({"run_number": first + i, "fill_number": FIRST_FILL + i // per_fill,
                            "era": era, "sequence": "GLOBAL-RUN",
                            "start_time": "2022-07-17T06:00:00",
                            "end_time": "2022-07-17T07:00:00" if closed else None})
            for i in range(count)]


def write_catalogue(path, runs) -> None:
    """A CSV run catalogue of ``runs`` (an open run has an empty end_time)."""
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["run_number", "fill_number", "era", "sequence", "start_time", "end_time"])
        for run in runs:
            out.writerow([run.number, run.fill, run.era, run.sequence, run.start_time,
                          run.end_time or ""])


def make_campaign(client, name: str, workflows, runs, kind: str = "rereco") -> RunCtrl:
    """A campaign whose run type ``all`` has ``workflows`` active (definitions recorded)."""
    ctrl = RunCtrl(client, name)
    ctrl.create(kind)
    ctrl.update_rtype("all", add=[wf.task for wf in workflows],
                      definitions={wf.task: wf.to_json() for wf in workflows})
    ctrl.inject(runs)
    return ctrl


def add_jobs(jenkins, db: str, campaign: str, tasks) -> dict[str, str]:
    """The Jenkins jobs of ``tasks``, with the parameters the rendered jobs declare."""
    names = {}
    for task in tasks:
        names[task] = job_name(db, campaign, task)
        jenkins.add_job(names[task], params={"RUN_NUMBER": "", "RUNS": "", "CAMPAIGN": campaign,
                                             "DB": db, "TASK": task, "TRIGGER_ID": ""})
    return names


class Clock:
    """A clock the test moves by hand: back-offs and grace periods without sleeping."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jenkins_scheduler(client, clock, executor=None, **kwargs) -> Scheduler:
    return Scheduler(client, executor or JenkinsExecutor(), clock=clock, lease_settle=0,
                     **kwargs)


def statuses(ctrl: RunCtrl, task: str) -> dict[int, str]:
    return {row["time"]: row["status"] for row in ctrl.task_rows(task=task)}


def rows(ctrl: RunCtrl, task: str) -> dict[int, dict]:
    fields = ("status, attempt, updated, queue_id, build, url, reason, trigger, relaunched, "
              "log, output")
    return {row["time"]: row for row in ctrl.task_rows(task=task, fields=fields)}
