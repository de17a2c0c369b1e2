"""Tasks of many jobs on HTCondor: submit a (run, task)'s jobs, check and resubmit them.

A task's build (a :class:`~ecaljenkins.handler.Handler` whose subclass defines
``jobs(runs)``) splits its runs into :class:`JobSpec` s, submits them as one
cluster (:func:`submit`) and ends; each job runs the same script with ``--jid``
and reports itself through :mod:`ecaljenkins.taskjobs`, whose roll-up keeps the
(run, task) row ``running`` until every job is done. Every cycle the scheduler
(:func:`check`) reads the jobs' reports, asks the schedd about the jobs in flight
that may have died silently, resubmits the failed ones with retries left (per
job, ``max_retries``, with the workflow's back-off) and rolls up.

Each job's submit description is recorded with its ``idle`` report (field
``submit``), so the scheduler resubmits it without the workflow's code.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Iterable, NamedTuple

from . import taskjobs
from .condor import FINISHED, JOB_ATTR, UNKNOWN, CondorPool, outcome
from .errors import CondorError, InputError
from .influx import Influx
from .names import quote_str
from .schema import JobStatus, Status, run_point, task_job_point
from .workflows import Workflow



class JobSpec(NamedTuple):
    """One job of a (run, task): its id, the runs it works on, its own arguments
    (given to the script after ``--jid``) and input files to transfer."""

    jid: str
    runs: tuple[int, ...]
    arguments: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()


class Checked(NamedTuple):
    """What a cycle's check of the jobs of a campaign did."""

    resubmitted: int = 0
    #: jobs found dead in the schedd without a report (now failed or done)
    silent: int = 0
    #: jobs failed with no retry left
    exhausted: int = 0
    changed: bool = False
    #: (task, run) with a failed job awaiting its retry: not a build to start again
    waiting: frozenset = frozenset()


def job_key(db: str, campaign: str, task: str, jid: str) -> str:
    return f"{db}/{campaign}/{task}/{jid}"


def describe(pool: CondorPool, db: str, campaign: str, task: str, program: list[str],
             spec: JobSpec) -> dict[str, str]:
    """The submit description of one job: ``program`` (a script, or ``-m`` and a module)
    run with ``--jid`` by the pool's interpreter, its log
    ``<log_dir>/<db>/<campaign>/<task>/jobs/<run>-<jid>.log``."""
    runs = ",".join(map(str, spec.runs))
    description = pool.job_command([*program, "--db", db, "--campaign", campaign,
                                    "--runs", runs, "--jid", spec.jid, *spec.arguments])
    directory = pool.log_dir / db / campaign / task / "jobs"
    if spec.inputs:
        description["transfer_input_files"] += "," + ",".join(spec.inputs)
    description.update({
        "initialdir": str(directory),
        "output": f"{spec.runs[0]}-{spec.jid}.log",
        "error": f"{spec.runs[0]}-{spec.jid}.log",
        "batch_name": f"{campaign}/{task}",
        f"+{JOB_ATTR}": f'"{job_key(db, campaign, task, spec.jid)}"',
        "+EcalDb": f'"{db}"',
        "+EcalCampaign": f'"{campaign}"',
        "+EcalTask": f'"{task}"',
        "+EcalRuns": f'"{runs}"',
    })
    return description


def submit(pool: CondorPool, influx: Influx, campaign: str, task: str, program: list[str],
           specs: Iterable[JobSpec]) -> int:
    """Submit the jobs as one cluster and report them ``idle`` (one write, one roll-up);
    the cluster id."""
    specs = list(specs)
    if not specs:
        raise InputError(f"{task}: jobs() gave no job to submit")
    if len({spec.jid for spec in specs}) != len(specs):
        raise InputError(f"{task}: jobs() gave two jobs the same id")
    descriptions = [describe(pool, influx.db, campaign, task, program, spec)
                    for spec in specs]
    varying = sorted({key for d in descriptions for key, value in d.items()
                      if value != descriptions[0].get(key)}
                     | {"arguments", "output", "error", f"+{JOB_ATTR}", "+EcalRuns"})
    common = {key: value for key, value in descriptions[0].items() if key not in varying}
    # item variables named by letters: the queue statement refuses digits in them
    names = {key: "ecalitem" + chr(ord("a") + n) for n, key in enumerate(varying)}
    common.update({key: f"$({name})" for key, name in names.items()})
    items = [{name: d.get(key, "") for key, name in names.items()} for d in descriptions]
    cluster = pool.submit(common, f"submitting the {len(specs)} jobs of {task}",
                          itemdata=items)
    _report_idle(influx, campaign, task, [(spec, d, f"{cluster}.{proc}") for proc, (spec, d)
                                          in enumerate(zip(specs, descriptions))])
    return cluster


def _report_idle(influx: Influx, campaign: str, task: str, submitted) -> None:
    """``idle`` reports of (spec, description, "cluster.proc"), one write, then a roll-up."""
    now = time.time_ns()
    influx.write([task_job_point(campaign, task, spec.jid, spec.runs, JobStatus.IDLE,
                                 now + offset, submit=json.dumps(description),
                                 condor_id=condor_id)
                  for offset, (spec, description, condor_id) in enumerate(submitted)])
    taskjobs.roll_up(influx, campaign, task, {run for spec, _, _ in submitted
                                              for run in spec.runs})


def _recorded(influx: Influx, campaign: str, field: str) -> dict[tuple[str, str], object]:
    """The latest ``field`` (``condor_id``, ``submit``) of every job of the campaign
    submitted here (its ``idle`` reports carry both), by (task, jid)."""
    return {(series.tags["task"], series.tags["jid"]): row[1]
            for series in influx.query(
                f"SELECT last({field}) FROM job WHERE campaign = {quote_str(campaign)} AND "
                f"jid != '' AND {field} != '' GROUP BY task, jid")
            for row in series.values}


def check(influx: Influx, campaign: str, workflows: dict[str, Workflow], pool_of,
          now: float, warnings: list[str]) -> Checked:
    """One cycle's work on the jobs of ``campaign`` (see the module's docstring).

    ``pool_of()`` gives the :class:`CondorPool` (made only when a job needs the
    schedd). One query when every job is done (or there is none); else one for the
    jobs' cluster ids (only jobs submitted here are checked: an ECAL script's own
    jobs reported through JobCtrl are its own), one for the roll-up, one queue read
    and one history query for all the jobs in flight no longer queued; and one for
    the submit descriptions when a job is to be resubmitted.
    """
    jobs = taskjobs.read_jobs(influx, campaign, None)
    if all(job.status == JobStatus.DONE for job in jobs):
        return Checked()
    # only the jobs submitted here (a cluster id recorded) are checked and resubmitted;
    # jobs an ECAL script submits and reports itself (JobCtrl) are its own
    submitted = _recorded(influx, campaign, "condor_id")
    jobs = [job for job in jobs if (job.task, job.jid) in submitted]
    dead: dict[tuple[str, str], tuple[JobStatus, str]] = {}
    in_flight = [job for job in jobs if job.status in (JobStatus.IDLE, JobStatus.RUNNING)]
    if in_flight:
        pool = pool_of()
        queued = pool.queued(JOB_ATTR)
        keys = [(job, job_key(influx.db, campaign, job.task, job.jid)) for job in in_flight]
        unread = None   # the history's error: the jobs no longer queued are not checked
        try:   # the jobs no longer queued: one history query for them all
            ended = pool.history(JOB_ATTR, [key for _, key in keys if key not in queued])
        except CondorError as err:
            ended, unread = {}, err
        for job, key in keys:
            ad = queued.get(key) or ended.get(key)
            if ad is None and unread is not None:
                warnings.append(f"{job.task} job {job.jid}: not checked: {unread}")
                continue
            try:
                state, ok, why = (outcome(pool, ad) if ad is not None
                                  else (FINISHED, False, "vanished from the schedd"))
            except CondorError as err:
                warnings.append(f"{job.task} job {job.jid}: not checked: {err}")
                continue
            if state == UNKNOWN:
                warnings.append(f"{job.task} job {job.jid}: {why}")
            elif state == FINISHED:
                dead[(job.task, job.jid)] = (JobStatus.DONE if ok else JobStatus.FAILED, why)
    when = time.time_ns()
    points, failed = [], []
    for job in jobs:
        if (job.task, job.jid) in dead:
            status, why = dead[(job.task, job.jid)]
            points.append(task_job_point(campaign, job.task, job.jid, job.runs, status,
                                         when + len(points), tuple(sorted(job.tags.items())),
                                         reason=why))
            if status == JobStatus.FAILED:   # its back-off starts now
                failed.append(job._replace(status=status, failures=job.failures + 1,
                                           time=when))
        elif job.status == JobStatus.FAILED:
            failed.append(job)
    due, exhausted = [], []
    for job in failed:
        wf = workflows.get(job.task)
        if wf is None:
            continue
        if job.failures > wf.max_retries:
            exhausted.append(job)
        elif job.time / 1e9 + wf.retry_wait(job.failures) <= now:
            due.append(job)
        # else: its back-off is not over (Checked.waiting)
    if points:
        influx.write(points)
    # the submit descriptions (~1.5 kB a job) are read only when a job is to go again
    resubmitted = _resubmit(influx, campaign, due, _recorded(influx, campaign, "submit"),
                            pool_of, warnings) if due else 0
    changes = taskjobs.roll_up(influx, campaign)
    if exhausted:
        _mark_exhausted(influx, campaign, exhausted, workflows, now)
    waiting = frozenset((job.task, run) for job in failed
                        if job not in exhausted and job not in due for run in job.runs)
    return Checked(resubmitted, len(dead), len(exhausted),
                   bool(points or resubmitted or changes or exhausted), waiting)


def _resubmit(influx: Influx, campaign: str, due: list, recorded: dict, pool_of,
              warnings: list[str]) -> int:
    """Submit the ``due`` jobs again from their ``recorded`` descriptions; how many were."""
    pool = pool_of()
    by_task = defaultdict(list)
    for job in due:
        if (job.task, job.jid) not in recorded:
            warnings.append(f"{job.task} job {job.jid}: no recorded submit description: "
                            "not resubmitted")
            continue
        description = json.loads(recorded[job.task, job.jid])
        try:
            cluster = pool.submit(description, f"resubmitting {job.task} job {job.jid}")
        except CondorError as err:
            warnings.append(f"{err}; {job.task} job {job.jid} stays failed")
            continue
        spec = JobSpec(job.jid, job.runs)
        by_task[job.task].append((spec, description, f"{cluster}.0"))
    for task, submitted in by_task.items():
        _report_idle(influx, campaign, task, submitted)
    return sum(map(len, by_task.values()))


def _mark_exhausted(influx: Influx, campaign: str, exhausted: list,
                    workflows: dict[str, Workflow], now: float) -> None:
    """The rows of jobs out of retries: ``failed`` for good (attempt past
    ``max_retries``), so the planner does not start the whole build again."""
    points = {}
    for job in exhausted:
        attempt = workflows[job.task].max_retries + 1
        for run in job.runs:
            points[(job.task, run)] = run_point(
                campaign, job.task, run, Status.FAILED, now, attempt=attempt,
                reason=f"job {job.jid} failed {job.failures} times: out of retries")
    influx.write(list(points.values()))
