"""``JobCtrl``: the jobs of one task as ECAL's submitters and HTCondor payloads see them.

A ``JobCtrl`` is one group of jobs of a task of a campaign, told apart from the
task's other groups by its ``tags``. Its jobs are those of ecaljenkins' job
model (:mod:`ecaljenkins.taskjobs`): every report is a ``job`` point, and the
(run, task) rows of the group's runs roll its jobs up (running while any job
is idle or running, failed when one failed, done when all are done), as the
scheduler, ``status``, the report and ``getOutput`` read them.

Which runs the jobs work on comes from the tags, the most precise first:

* ``run``: that run;
* else ``group``: the comma-separated runs it lists;
* else ``fill``: every run of the fill that has the task in the campaign.

Every such run must have the task in the campaign (checked once, at the first
report). Tags with none of these keys name no run: reporting is refused.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from ecaljenkins import taskjobs
from ecaljenkins.errors import AlreadyExists, InputError
from ecaljenkins.jobctrl import reporting_influx
from ecaljenkins.names import check_name, parse_int
from ecaljenkins.registry import parse_run, parse_runs
from ecaljenkins.schema import JOB_STATUSES, JobStatus
from ecaljenkins.settings import Settings

class JobCtrl:
    """``JobCtrl(task='eflow-phisym', campaign='prompt', tags={'fill': 8000,
    'group': '355100,355101'}, dbname='ecal_prompt_v1')``.

    Job ids (``jid``) are text (an int is taken as its digits); ``fields`` of a
    report are the job's own (``output``, ...), stored as text, and may not be
    named like a tag. A payload's reports keep retrying an unreachable InfluxDB
    for ``ECAL_REPORT_RETRY`` seconds, as a build's do.
    """

    def __init__(self, task: str | None = None, campaign: str | None = None,
                 tags: Mapping[str, object] | None = None, dbname: str | None = None):
        if not task or not campaign:
            raise InputError("JobCtrl needs the task and the campaign: "
                             "JobCtrl(task=..., campaign=..., tags={...}, dbname=...)")
        self.task = check_name(task, "task")
        self.campaign = check_name(campaign, "campaign")
        self.tags = dict(tags or {})
        taskjobs.check_tags(self.tags)
        self.influx = reporting_influx(dbname, Settings.from_env())
        self._runs: list[int] | None = None

    # --- the runs of the group ----------------------------------------------------

    @property
    def runs(self) -> list[int]:
        """The runs the group's jobs work on, from its tags (one query, the first time)."""
        if self._runs is None:
            self._runs = self._resolve_runs()
        return self._runs

    def _resolve_runs(self) -> list[int]:
        tags = self.tags
        find = dict(influx=self.influx, campaign=self.campaign, task=self.task)
        if tags.get("run") not in (None, ""):
            return taskjobs.task_runs(**find, runs=[parse_run(str(tags["run"]))])
        if tags.get("group") not in (None, ""):
            return taskjobs.task_runs(**find, runs=parse_runs(str(tags["group"])))
        if tags.get("fill") not in (None, ""):
            return taskjobs.task_runs(**find, fill=parse_int(str(tags["fill"]), "fill", 0))
        raise InputError(f"the tags of JobCtrl({self.task!r}) name no run: give 'run', "
                         "'group' (comma-separated runs) or 'fill'")

    # --- the submitting side ----------------------------------------------------------

    def create_task(self, jids: Iterable[str | int], fields: Mapping | None = None,
                    recreate: bool = False) -> None:
        """Create the group's jobs, all ``idle`` (one write). A group that has jobs
        already is refused unless ``recreate``: then every job given is idle again
        (its history, failures included, is kept)."""
        jids = [taskjobs.check_jid(jid) for jid in jids]
        if not jids:
            raise InputError("create_task needs at least one job id")
        if not recreate and self.task_exist():
            raise AlreadyExists(f"task {self.task!r} of campaign {self.campaign!r} already "
                                f"has jobs with tags {self.tags}: create_task(..., "
                                "recreate=True) submits them again")
        self._report(jids, JobStatus.IDLE, fields)

    # --- what a job says about itself -------------------------------------------------

    def idle(self, jid: str | int, fields: Mapping | None = None) -> None:
        """The job is submitted (again) and waits."""
        self._report([jid], JobStatus.IDLE, fields)

    def running(self, jid: str | int, fields: Mapping | None = None) -> None:
        """The job started."""
        self._report([jid], JobStatus.RUNNING, fields)

    def failed(self, jid: str | int, fields: Mapping | None = None) -> None:
        """The job failed (a resubmission sets it idle again)."""
        self._report([jid], JobStatus.FAILED, fields)

    def done(self, jid: str | int, fields: Mapping | None = None) -> None:
        """The job ended well; ``fields={'output': 'p1,p2'}`` records what it produced."""
        self._report([jid], JobStatus.DONE, fields)

    def _report(self, jids: list, status: JobStatus, fields: Mapping | None) -> None:
        runs = self.runs
        taskjobs.report(self.influx, self.campaign, self.task,
                        {taskjobs.check_jid(jid): runs for jid in jids}, status,
                        tags=self.tags, fields=_text_fields(fields))

    # --- reading ------------------------------------------------------------------

    def _jobs(self) -> list[taskjobs.Job]:
        return taskjobs.read_jobs(self.influx, self.campaign, self.task, self.tags)

    def get_job(self, jid: str | int, last: bool = False) -> list[dict]:
        """The reports of job ``jid``, oldest first (only the latest with ``last``):
        dicts of its tags and fields, ``time`` in ns since the epoch."""
        history = taskjobs.job_history(self.influx, self.campaign, self.task, jid, self.tags)
        return history[-1:] if last else history

    def get_jobs(self) -> dict[str, list[str]]:
        """{status: ids of the group's jobs in it}, every status a key."""
        found: dict[str, list[str]] = {status.value: [] for status in JOB_STATUSES}
        for job in self._jobs():
            found[job.status.value].append(job.jid)
        return found

    def get_idle(self) -> list[str]:
        return self.get_jobs()[JobStatus.IDLE]

    def get_running(self) -> list[str]:
        return self.get_jobs()[JobStatus.RUNNING]

    def get_failed(self) -> list[str]:
        return self.get_jobs()[JobStatus.FAILED]

    def get_done(self) -> list[str]:
        return self.get_jobs()[JobStatus.DONE]

    def get_nretries(self, jid: str | int) -> int:
        """How many times job ``jid`` failed so far (0 for a job never reported)."""
        jid = taskjobs.check_jid(jid)
        return next((job.failures for job in self._jobs() if job.jid == jid), 0)

    def task_exist(self) -> bool:
        """Whether the group has jobs."""
        return bool(self._jobs())

    def task_completed(self) -> bool:
        """Whether the group has jobs and all of them are done."""
        jobs = self._jobs()
        return bool(jobs) and all(job.status == JobStatus.DONE for job in jobs)


def _text_fields(fields: Mapping | None) -> dict[str, str]:
    """A job's fields as text (ECAL's scripts pass numbers too): one type per field."""
    return {str(key): value if isinstance(value, str) else str(value)
            for key, value in (fields or {}).items()}
