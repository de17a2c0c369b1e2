"""Tasks made of many jobs: the job model and its roll-up into the (run, task) rows.

A heavy task does not run in its Jenkins build: the build submits jobs (an
HTCondor cluster, say) and ends; each job reports about itself. A **job** is
one unit of work of one task of a campaign:

* it is identified by its id ``jid`` (text, unique among the jobs of its
  task that share its identifying ``tags``; ``tags`` tell groups of jobs of one
  task apart, e.g. the fill or the run group they work on);
* it works on one or more **runs** of the campaign, fixed when it reports
  first;
* its status is a :class:`~ecaljenkins.schema.JobStatus`: ``idle`` (submitted,
  waiting) -> ``running`` -> ``done``|``failed``, and back to ``idle`` when it
  is resubmitted. Each report is a ``job`` point (docs/schema.md, "Jobs"); the
  latest is the job's status, its ``failed`` points are its failures;
* a reprocessed (run, task) starts afresh: ``reprocess`` sets the row's
  ``jobs_since``, and the jobs whose latest report is older (the earlier
  attempt's) are left out of everything here; failures count from it.

The **roll-up** (:func:`roll_up`) makes the (run, task) row the scheduler,
``status``, the report and ``get_output`` read say what its jobs say, for every
run that has jobs:

* ``running`` while any of its jobs is idle or running;
* else ``failed`` when one of them failed (``reason`` names them);
* else ``done``: all its jobs are done, and the row's ``output`` is their
  outputs, comma-separated (jobs in id order).

A row is written only when this changes it. :func:`report` writes a job's
points first and rolls up after, reading the rows before the jobs; so of two
jobs of a run ending together, the later one to report sees both done, and an
earlier, older read never writes anything back over a newer status. Whatever
else moved a row (a build's own report), the next roll-up puts it back.

Costs: a report is one write, one request and at most one more write, whatever
the number of jobs; :func:`roll_up` of a whole task, or of every task of a
campaign at once (what a scheduler cycle needs), is one request and at most one
write (the job statements return one row per job, not one per report).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterable, Mapping, NamedTuple

from .errors import InputError, NotFound
from .influx import Influx
from .jobctrl import FIELD_KEY_RE, check_fields
from .names import check_name, quote_str
from .schema import JOB_KEY_TAGS, JobStatus, Status, run_point, task_job_point

#: fields of every job point, which no tag of a job may be named like (``run`` may:
#: a job's run tag is the run it works on)
JOB_FIELDS = ("status", "runs", "output", "time")
#: longest list of failed job ids put in a row's ``reason``
REASON_JOBS = 10


class Job(NamedTuple):
    """A job as its latest report left it."""

    task: str
    jid: str
    #: its identifying tags, besides campaign, task and jid
    tags: dict
    runs: tuple[int, ...]
    status: JobStatus
    #: time of the latest report (ns)
    time: int
    output: str | None
    #: its ``failed`` reports so far
    failures: int


def check_tags(tags: Mapping[str, object] | None) -> tuple[tuple[str, str], ...]:
    """A job group's identifying tags as sorted (key, text) pairs, keys checked."""
    pairs = []
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not FIELD_KEY_RE.match(key):
            raise InputError(f"invalid job tag name {str(key)[:40]!r}: use letters, digits "
                             "and '_', starting with a letter or '_'")
        if key in JOB_KEY_TAGS or key in JOB_FIELDS:
            raise InputError(f"job tag {key!r} is reserved: it is set by the job model")
        text = str(value)
        if not text or "\n" in text or len(text) > 256:
            raise InputError(f"invalid value of job tag {key!r}: one line of 1 to 256 "
                             "characters")
        pairs.append((key, text))
    return tuple(sorted(pairs))


def check_jid(jid: object) -> str:
    """A job id: text (an int is taken as its digits), one line, at most 64 characters."""
    text = str(jid)
    if not text or len(text) > 64 or not text.isprintable():
        raise InputError(f"invalid job id {text[:40]!r}: 1 to 64 printable characters")
    return text


def _where(campaign: str, task: str | None) -> str:
    """The points of ``task`` of the campaign (of all its tasks when None)."""
    where = f"campaign = {quote_str(campaign)}"
    return where if task is None else f"{where} AND task = {quote_str(task)}"


def _rows_where(campaign: str, task: str | None, runs: Iterable[int] | None
                ) -> tuple[str, set[int] | None]:
    """WHERE of the rows of ``task`` (only the span of ``runs`` when given), and the runs."""
    where = _where(campaign, task)
    wanted = None if runs is None else {int(run) for run in runs}
    if wanted:   # run numbers are the rows' times: read only their span
        where += f" AND time >= {min(wanted)} AND time <= {max(wanted)}"
    return where, wanted


def task_runs(influx: Influx, campaign: str, task: str, runs: Iterable[int] | None = None,
              fill: int | None = None) -> list[int]:
    """The runs of the campaign that have ``task``: among ``runs`` (all must), or of
    ``fill``; one query. NotFound when a named run, or every run of the fill, has none."""
    where, wanted = _rows_where(check_name(campaign, "campaign"), check_name(task, "task"),
                                runs)
    if fill is not None:
        where += f" AND fill = {int(fill)}"
    found = {row["time"] for row in influx.select(f"SELECT status FROM run WHERE {where}")}
    if wanted is not None:
        missing = sorted(wanted - found)
        if missing or not wanted:
            raise NotFound(f"run {missing[0] if missing else '(none)'} does not have task "
                           f"{task!r} in campaign {campaign!r} (database {influx.db!r})")
        return sorted(wanted)
    if not found:
        raise NotFound(f"no run of fill {fill} has task {task!r} in campaign {campaign!r} "
                       f"(database {influx.db!r})")
    return sorted(found)


# --- reading --------------------------------------------------------------------------

def _jobs_statements(campaign: str, task: str | None, tags: tuple = ()) -> str:
    """The latest report of every job of the task, or of every task (one row per
    job), the times of their failures, and the rows' ``jobs_since``."""
    where = _where(campaign, task) + " AND jid != ''" + _tag_filter(tags)
    return (f"SELECT last(status) AS status, runs::field, output FROM job WHERE {where} "
            f"GROUP BY *; SELECT status AS failed FROM job WHERE {where} AND "
            "status::field = 'failed' GROUP BY *; SELECT jobs_since FROM run WHERE "
            f"{_where(campaign, task)} AND jobs_since > 0 GROUP BY task")


def _tag_filter(tags: tuple) -> str:
    """``AND key::tag = 'value'`` per tag: a tag may share its key with a field (``run``)."""
    return "".join(f' AND "{key}"::tag = {quote_str(value)}' for key, value in tags)


def _jobs(series_list, tags: tuple | None = None) -> list[Job]:
    """The jobs of a :func:`_jobs_statements` answer; only those with exactly ``tags``.

    A job whose latest report is older than the ``jobs_since`` of one of its runs
    belongs to an attempt before the task was reprocessed: it is left out, and a
    job's failures count from there.
    """
    latest, failed_at, since = {}, defaultdict(list), {}
    for series in series_list:
        if series.name == "run" and "jobs_since" in series.columns:
            since.update(((series.tags["task"], row[0]), row[1]) for row in series.values)
        if series.name != "job":
            continue
        own = {k: v for k, v in series.tags.items() if v and k not in JOB_KEY_TAGS}
        key = (series.tags["task"], series.tags["jid"], tuple(sorted(own.items())))
        if tags is not None and key[2] != tags:
            continue
        if "failed" in series.columns:
            failed_at[key] = [row[0] for row in series.values]
        else:
            latest[key] = (own, next(series.dicts()))
    jobs = []
    for (task, jid, key_tags), (own, row) in latest.items():
        runs = tuple(int(run) for run in (row.get("runs") or "").split(",") if run)
        start = max((since.get((task, run), 0) for run in runs), default=0)
        if row["time"] < start:
            continue
        jobs.append(Job(task, jid, own, runs, JobStatus(row["status"]), row["time"],
                        row.get("output"),
                        sum(when >= start for when in failed_at[task, jid, key_tags])))
    return sorted(jobs, key=lambda job: (job.task, job_order(job.jid),
                                         sorted(job.tags.items())))


def _rows(series_list) -> list[dict]:
    """The (run, task) rows of an answer that also holds :func:`_jobs_statements`'."""
    return [row for s in series_list if s.name == "run" and "status" in s.columns
            for row in s.dicts()]


def job_order(jid: str) -> tuple:
    """Ids in natural order: ``2`` before ``10``."""
    return (0, int(jid), "") if jid.isdigit() else (1, 0, jid)


def read_jobs(influx: Influx, campaign: str, task: str,
              tags: Mapping[str, object] | None = None) -> list[Job]:
    """The jobs of ``task`` (only those with exactly ``tags`` when given): one request."""
    pairs = None if tags is None else check_tags(tags)
    return _jobs(influx.query(_jobs_statements(campaign, task, pairs or ())), pairs)


def job_history(influx: Influx, campaign: str, task: str, jid: str,
                tags: Mapping[str, object] | None = None) -> list[dict]:
    """Every report of one job, oldest first (the job's tags, fields and ``time`` in ns)."""
    pairs = check_tags(tags)
    where = (_where(campaign, task) + f" AND jid = {quote_str(check_jid(jid))}"
             + _tag_filter(pairs))
    return [{key: value for key, value in row.items() if value not in (None, "")}
            for series in influx.query(f"SELECT * FROM job WHERE {where} GROUP BY *")
            if {k: v for k, v in series.tags.items() if v and k not in JOB_KEY_TAGS}
            == dict(pairs) for row in series.dicts()]


# --- the roll-up ----------------------------------------------------------------------

def rolled_up(statuses: Iterable[JobStatus | str]) -> Status | None:
    """The status of a (run, task) whose jobs have ``statuses``; None without a job."""
    statuses = set(statuses)
    if not statuses:
        return None
    if statuses & {JobStatus.IDLE, JobStatus.RUNNING}:
        return Status.RUNNING
    if JobStatus.FAILED in statuses:
        return Status.FAILED
    return Status.DONE


def _row_changes(rows: dict[tuple[str, int], dict], jobs: list[Job], runs: set[int] | None,
                 now: float, campaign: str) -> tuple[dict[tuple[str, int], Status], list]:
    """{(task, run): new status} and the ``run`` points of the rows the jobs change."""
    by_row: dict[tuple[str, int], list[Job]] = defaultdict(list)
    for job in jobs:
        for run in job.runs:
            if runs is None or run in runs:
                by_row[job.task, run].append(job)
    changes, points = {}, []
    for (task, run), its_jobs in sorted(by_row.items()):
        row = rows.get((task, run))
        if row is None:   # a job of a run the campaign does not hold (any more)
            continue
        status = rolled_up(job.status for job in its_jobs)
        fields = {"jobs": len(its_jobs), "reason": ""}
        if status == Status.DONE:
            fields["output"] = ",".join(job.output for job in its_jobs if job.output)
        elif status == Status.FAILED:
            failed = [job.jid for job in its_jobs if job.status == JobStatus.FAILED]
            fields["reason"] = (f"{len(failed)} of {len(its_jobs)} jobs failed: "
                                + ", ".join(failed[:REASON_JOBS])
                                + (", ..." if len(failed) > REASON_JOBS else ""))
        if row.get("status") == status and (status != Status.DONE
                                            or row.get("output") == fields["output"]):
            continue
        changes[task, run] = status
        points.append(run_point(campaign, task, run, status, now, **fields))
    return changes, points


def roll_up(influx: Influx, campaign: str, task: str | None = None,
            runs: Iterable[int] | None = None) -> dict[tuple[str, int], Status]:
    """Bring the rows of ``task`` (of every task of the campaign when None; of
    ``runs``, or all) in line with their jobs.

    One request (rows, then jobs) and at most one write, whatever the number of
    tasks, runs and jobs; returns {(task, run): new status} of the rows it changed.
    Rows without jobs are left alone.
    """
    campaign = check_name(campaign, "campaign")
    task = None if task is None else check_name(task, "task")
    where, wanted = _rows_where(campaign, task, runs)
    series = influx.query(f"SELECT status, output FROM run WHERE {where} GROUP BY task; "
                          + _jobs_statements(campaign, task))
    rows = {(row["task"], row["time"]): row for row in _rows(series)}
    changes, points = _row_changes(rows, _jobs(series), wanted, time.time(), campaign)
    if points:
        influx.write(points)
    return changes


# --- reporting ------------------------------------------------------------------------

def report(influx: Influx, campaign: str, task: str, jobs: Mapping[str, Iterable[int]],
           status: JobStatus | str, tags: Mapping[str, object] | None = None,
           fields: Mapping[str, str] | None = None) -> dict[tuple[str, int], Status]:
    """Record ``status`` for ``jobs`` ({jid: its runs}) in one write, then roll up
    their runs; returns the rows the roll-up changed.

    The caller checks the runs have the task (:func:`task_runs`). ``fields`` are
    the jobs' own (``output``, ...): checked, and not named like a tag.
    """
    status = JobStatus(status)
    pairs = check_tags(tags)
    fields = check_fields(fields or {})
    clash = sorted(set(fields) & {key for key, _ in pairs})
    if clash:
        raise InputError(f"field {clash[0]!r} is also a tag of the jobs: rename one")
    now_ns = time.time_ns()
    points, runs = [], set()
    for offset, (jid, job_runs) in enumerate(jobs.items()):
        job_runs = [int(run) for run in job_runs]
        if not job_runs:
            raise InputError(f"job {jid!r} works on no run")
        runs.update(job_runs)
        points.append(task_job_point(campaign, task, check_jid(jid), job_runs, status,
                                     now_ns + offset, pairs, **fields))
    if not points:
        return {}
    influx.write(points)
    return roll_up(influx, campaign, task, runs)


# --- outputs --------------------------------------------------------------------------

def outputs(influx: Influx, campaign: str, task: str, era: str | None = None,
            runs: Iterable[int] | None = None) -> list[str]:
    """The outputs of the done (run, task)s, one element per job as it stored it.

    A run whose task has jobs gives the output of each of its done jobs (a job of
    several runs once); a run done by its build alone gives its row's ``output``.
    Only runs whose row is ``done`` count, of ``era`` and among ``runs`` when given.
    One request.
    """
    campaign, task = check_name(campaign, "campaign"), check_name(task, "task")
    where, wanted = _rows_where(campaign, task, runs)
    series = influx.query(f"SELECT status, output, era FROM run WHERE {where}; "
                          + _jobs_statements(campaign, task))
    done = {row["time"]: row for row in _rows(series)
            if row.get("status") == Status.DONE
            and (era is None or row.get("era") == era)
            and (wanted is None or row["time"] in wanted)}
    found, with_jobs = [], set()
    for job in _jobs(series):
        with_jobs.update(job.runs)
        if job.status == JobStatus.DONE and job.output and any(run in done for run in job.runs):
            found.append((min(run for run in job.runs if run in done), job.output))
    found += [(run, row["output"]) for run, row in done.items()
              if run not in with_jobs and row.get("output")]
    return [output for _run, output in sorted(found, key=lambda item: item[0])]
