"""Where a campaign stands: runs per run type, task and status, and what failed.

The status view (``ecalrunctrl.py status``), the HTML report and any script share
this one computation, so they always agree on the numbers. Reading costs a
constant number of queries whatever the campaign's size: its configuration, its
runs (``runinfo``), the status of every (run, task) and the details of the failed
ones; everything else is counted here, in one pass over the rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Callable

from .campaign import Campaign, RunCtrl
from .names import quote_str
from .schema import FAILURE_FIELDS, JOB_STATUSES, STATUSES, Status
from .taskjobs import read_jobs


def read_runinfo(ctrl: RunCtrl) -> dict[int, dict]:
    """{run: {"fill", "era", "rtypes"}} of every run of the campaign: one query.

    ``rtypes`` are the run types the run matched when it was injected.
    """
    rows = ctrl.influx.select("SELECT fill, era, rtypes FROM runinfo "
                              f"WHERE campaign = {quote_str(ctrl.campaign)}")
    return {row["time"]: {"fill": row.get("fill"), "era": row.get("era"),
                          "rtypes": [r for r in (row.get("rtypes") or "").split(",") if r]}
            for row in rows}


def task_order(camp: Campaign, tasks_with_rows) -> list[str]:
    """Active tasks in run-type order, then tasks that only have rows left (sorted)."""
    active = list(dict.fromkeys(t for rt in camp.rtypes.values() for t in rt.tasks))
    return active + sorted(set(tasks_with_rows) - set(active))


def failure(row: dict) -> dict:
    """The public shape of one failed (run, task), from its ``run`` row."""
    return {"run": row["time"], "task": row["task"],
            **{key: row.get(key) for key in FAILURE_FIELDS}}


def job_counts(jobs) -> dict[str, dict[str, dict[str, int]]]:
    """{task: {run: {job status: n, "resubmitted": n}}} of the jobs of tasks of many jobs
    (:class:`ecaljenkins.taskjobs.Job`); a job of several runs counts for each."""
    counts: dict = defaultdict(lambda: defaultdict(Counter))
    for job in jobs:
        for run in job.runs:
            cell = counts[job.task][str(run)]
            cell[job.status.value] += 1
            cell["resubmitted"] += job.failures - (job.status == "failed")
    return {task: {run: {key: n for key, n in (*((s.value, cell[s]) for s in JOB_STATUSES),
                                               ("resubmitted", cell["resubmitted"])) if n}
                   for run, cell in sorted(runs.items())}
            for task, runs in sorted(counts.items())}


def rule(camp: Campaign, runinfo: dict[int, dict]) -> Callable[[dict], bool]:
    """The planner's rule over rows read here: true while one of the row's run's run
    types has its task (:meth:`Campaign.tasks_of_run`)."""
    text = {run: ",".join(info["rtypes"]) for run, info in runinfo.items()}
    return lambda row: row["task"] in camp.tasks_of_run(text.get(row["time"]))


def summarize(camp: Campaign, runinfo: dict[int, dict], rows, failed_rows,
              jobs=()) -> dict:
    """The status document from rows already read (see :func:`campaign_status`).

    ``rows`` need ``time`` (the run), ``task`` and ``status``; ``failed_rows`` are
    the failed ones with :data:`FAILURE_FIELDS`; ``jobs`` those of its tasks of many
    jobs (:func:`ecaljenkins.taskjobs.read_jobs`). A (run, task) counts only while
    one of the run's run types has the task (:meth:`Campaign.tasks_of_run`, the
    planner's rule); the others are in ``inactive``. Per run type, a (run, task)
    counts when the task is active in the run type and the run is of that type.
    """
    totals: dict[str, Counter] = defaultdict(Counter)
    inactive: dict[str, Counter] = defaultdict(Counter)
    counted = rule(camp, runinfo)
    by_rtype = {name: defaultdict(Counter) for name in camp.rtypes}
    rtypes_of_task: dict[str, list[str]] = defaultdict(list)
    for rt in camp.rtypes.values():
        for task in rt.tasks:
            rtypes_of_task[task].append(rt.name)
    run_rtypes = {run: frozenset(info["rtypes"]) for run, info in runinfo.items()}
    for row in rows:
        task, status = row["task"], row["status"]
        if not counted(row):
            inactive[task][status] += 1
            continue
        totals[task][status] += 1
        for name in rtypes_of_task.get(task, ()):
            if name in run_rtypes.get(row["time"], ()):
                by_rtype[name][task][status] += 1
    rtype_runs = Counter(name for info in runinfo.values() for name in info["rtypes"])
    return {
        "campaign": camp.name,
        "kind": camp.kind,
        "active": camp.active,
        "runs": len(runinfo),
        "rtypes": {rt.name: {"filters": [f.text for f in rt.filters], "tasks": list(rt.tasks),
                             "runs": rtype_runs[rt.name],
                             "counts": {t: _ordered(by_rtype[rt.name][t]) for t in rt.tasks}}
                   for rt in camp.rtypes.values()},
        "tasks": {task: _ordered(totals[task]) for task in task_order(camp, totals)},
        "inactive": {task: _ordered(inactive[task]) for task in sorted(inactive)},
        "failures": sorted((failure(row) for row in failed_rows if counted(row)),
                           key=lambda f: (f["run"], f["task"])),
        "jobs": job_counts(jobs),
    }


def _ordered(counts: Counter) -> dict[str, int]:
    """Non-zero counts in lifecycle order (unknown statuses last), as JSON shows them."""
    known = {s: counts[s] for s in STATUSES if counts[s]}
    return known | {s: n for s, n in sorted(counts.items()) if s not in known and n}


def campaign_status(ctrl: RunCtrl) -> dict:
    """Everything the status view shows, as a JSON-ready dict (five queries).

    ``{"campaign", "kind", "active", "runs", "rtypes": {name: {"filters", "tasks",
    "runs", "counts"}}, "tasks": {task: {status: n}}, "failures": [...], "jobs":
    {task: {run: {job status: n}}}}`` - the
    shapes are documented in ``docs/json.md``. Raises NotFound for an unknown
    campaign.
    """
    camp = ctrl.info()
    runinfo = read_runinfo(ctrl)
    rows = ctrl.task_rows(fields="status")
    failed = ctrl.task_rows(status=Status.FAILED, fields=", ".join(("status",) + FAILURE_FIELDS))
    return summarize(camp, runinfo, rows, failed,
                     read_jobs(ctrl.influx, ctrl.campaign, None))


def progress(counts: dict[str, int]) -> tuple[int, int]:
    """(done, total) of one task's counts."""
    return counts.get(Status.DONE, 0), sum(counts.values())
