"""The InfluxDB layout of docs/schema.md: the only place points are built.

One builder per measurement (``campaign``, ``rtype``, ``workflow``, ``run``,
``runinfo``, ``job``, ``fetch``, ``lock``), the field lists the readers select, and the
statuses of a (run, task) as one type. A :class:`Point` is this project's own:
an immutable record that encodes itself to line protocol. Owning the encoder
keeps influxdb-client (about 0.2 s of import) out of every command, and out of
every build start in particular, and it is three times faster on the points
written here (docs/performance.md); tests/test_influx.py holds it to
influxdb-client's output on thousands of fuzzed points.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from functools import lru_cache
from typing import Iterable, NamedTuple


class Status(StrEnum):
    """The status of a (run, task): ``new`` -> ``queued`` -> ``running`` -> ``done``|``failed``.

    Members are ``str``: they compare equal to, and are stored as, the plain
    words InfluxDB holds (``Status.DONE == "done"``).
    """

    NEW = "new"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobStatus(StrEnum):
    """The status of one job of a (run, task) (docs/schema.md, "Jobs"): ``idle`` (submitted,
    waiting) -> ``running`` -> ``done``|``failed``; a failed job resubmitted is idle again.

    The (run, task) row rolls its jobs up (:mod:`ecaljenkins.taskjobs`).
    """

    IDLE = "idle"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


#: every status, in lifecycle order (the columns of tables and reports)
STATUSES = tuple(Status)
#: every status of a job, in lifecycle order
JOB_STATUSES = tuple(JobStatus)
#: statuses a build reports about itself; ``new`` and ``queued`` belong to the scheduler
REPORT_STATUSES = (Status.RUNNING, Status.DONE, Status.FAILED)
#: a build exists for the (run, task): resetting it would start a second one
IN_FLIGHT = (Status.QUEUED, Status.RUNNING)

#: fields of a (run, task) the scheduler reads, in this order after ``time``
ROW_FIELDS = ("status", "attempt", "fill", "era", "updated", "queue_id", "build", "trigger",
              "relaunched", "jobs")
#: fields of a failed (run, task) that status and report show
FAILURE_FIELDS = ("attempt", "reason", "url", "log", "build")
#: fields of a (run, task) that ``runs --json`` and ``history`` show besides its status
DETAIL_FIELDS = (*FAILURE_FIELDS, "output", "updated")
#: ``run`` fields whose meaning and type the lifecycle owns: a build cannot overwrite them
RESERVED_FIELDS = frozenset({
    "time", "campaign", "task", "run", "status", "build", "url", "attempt", "fill", "era",
    "updated", "queue_id", "trigger", "relaunched", "exit_code", "jid", "runs", "jobs"})
#: tags of a job point a job's own identifying tags may not replace
JOB_KEY_TAGS = ("campaign", "task", "jid")
#: what a new build of a (run, task) starts from: nothing left of the previous one
FRESH_ATTEMPT = {"queue_id": 0, "build": 0, "url": "", "reason": "", "trigger": "",
                 "relaunched": 0, "log": "", "output": "", "jobs": 0}
#: the one scheduling lease of a database
LOCK_SCOPE = "schedule"
#: measurements keyed by the run number: a point of one may bring an old run back
RUN_KEYED = frozenset({"run", "runinfo"})
#: configuration that can make any run of the campaign schedulable again
#: (a task activated, retries raised): a point of one lowers the mark to the start
CONFIG_KEYED = frozenset({"rtype", "workflow"})


class Point(NamedTuple):
    """One line of line protocol: measurement, tags, fields and an integer time (ns).

    Field values are str, int, float or bool; a None field or a non-finite float
    is left out (as influxdb-client does), a None or empty tag too.
    """

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: dict
    time: int | None = None

    def to_line_protocol(self) -> str:
        """The point as one line of InfluxDB line protocol ("" when it has no field)."""
        fields = []
        for key, value in sorted(self.fields.items()):
            kind = type(value)
            if kind is str or (kind is not bool and isinstance(value, str)):
                fields.append(f'{_key(key)}="{str.translate(value, _STRING_ESCAPES)}"')
            elif kind is int:
                fields.append(f"{_key(key)}={value}i")
            elif kind is float:
                if math.isfinite(value):
                    text = repr(value)
                    fields.append(f"{_key(key)}={text[:-2] if text.endswith('.0') else text}")
            elif kind is bool:
                fields.append(f"{_key(key)}={'true' if value else 'false'}")
            elif value is not None:
                raise TypeError(f"field {key!r}: {kind.__name__} is not a line protocol "
                                "value (str, int, float or bool)")
        if not fields:
            return ""
        head = _series(self.measurement, self.tags)
        return f"{head} {','.join(fields)}" + ("" if self.time is None else f" {self.time}")


# Line protocol escapes, as InfluxDB (and influxdb-client) applies them.
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                                      "\r": r"\r"})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                              "\r": r"\r"})
_STRING_ESCAPES = str.maketrans({'"': r'\"', "\\": r"\\"})


@lru_cache(maxsize=4096)
def _key(key: str) -> str:
    return key.translate(_KEY_ESCAPES)


@lru_cache(maxsize=4096)
def _series(measurement: str, tags: tuple) -> str:
    """Escaped measurement and sorted tags: a handful of distinct ones per write, kept."""
    parts = [measurement.translate(_MEASUREMENT_ESCAPES)]
    for key, value in sorted(tags, key=lambda tag: tag[0]):
        if value is None:
            continue
        key, value = _key(key), str.translate(value, _KEY_ESCAPES)
        if value.endswith("\\"):
            value += " "
        if key and value:
            parts.append(f",{key}={value}")
    return "".join(parts)


# --- configuration history: stamped with the wall clock of the change --------------

def campaign_point(campaign: str, kind: str, description: str, user: str, now_ns: int,
                   event: str = "create") -> Point:
    """A campaign's creation (``kind`` rereco or prompt)."""
    return Point("campaign", (("campaign", campaign),),
                 {"kind": kind, "description": description, "event": event, "user": user},
                 now_ns)


def rtype_point(campaign: str, rtype: str, filters: Iterable[str], tasks: Iterable[str],
                event: str, user: str, now_ns: int, added: Iterable[str] = (),
                removed: Iterable[str] = ()) -> Point:
    """A run type as it is from now on: filter texts (AND-ed), active tasks, the change."""
    return Point("rtype", (("campaign", campaign), ("rtype", rtype)),
                 {"filters": json.dumps(list(filters)), "tasks": ",".join(tasks),
                  "event": event, "added": ",".join(added), "removed": ",".join(removed),
                  "user": user}, now_ns)


def workflow_point(campaign: str, task: str, definition: str, user: str,
                   now_ns: int) -> Point:
    """The workflow definition (JSON) of a task, recorded when it becomes active."""
    return Point("workflow", (("campaign", campaign), ("task", task)),
                 {"definition": definition, "user": user}, now_ns)


# --- run state: stamped with the run number ------------------------------------------

def run_point(campaign: str, task: str, run: int, status: Status | str | None, now: float,
              **fields) -> Point:
    """The ``run`` point changing a (run, task): it carries only the changed fields.

    Written at the run number's timestamp, it overwrites those fields in place
    and keeps the others (see docs/schema.md). ``updated`` is the time of the last
    status change (back-offs count from it): ``status`` None changes fields only.
    """
    values = {}
    if status is not None:
        # always a float: InfluxDB hands back 1.7e9 as the integer 1700000000, and
        # writing that back as an integer would conflict with the field's type
        values["status"] = Status(status).value
        values["updated"] = float(now)
    values.update(fields)
    return Point("run", (("campaign", campaign), ("task", task)), values, int(run))


def new_run_point(campaign: str, task: str, run: int, fill: int, era: str,
                  now: float) -> Point:
    """A (run, task) entering the campaign: status new, no attempt yet."""
    return run_point(campaign, task, run, Status.NEW, now, fill=int(fill), era=era, attempt=0)


def runinfo_point(campaign: str, run: int, fill: int, era: str, rtypes: Iterable[str],
                  meta: dict) -> Point:
    """A run's presence in a campaign, with every registry attribute (``meta``)."""
    return Point("runinfo", (("campaign", campaign),),
                 {"fill": int(fill), "era": era, "rtypes": ",".join(rtypes),
                  "meta": json.dumps(meta, sort_keys=True, default=str)}, int(run))


def fetch_point(campaign: str, after: int, open_runs: Iterable[int]) -> Point:
    """Where a prompt campaign's fetching stands: every run up to ``after`` is handled;
    ``open_runs``, after it, were still open at the last fetch. One point per campaign,
    at time 0: each fetch overwrites it."""
    return Point("fetch", (("campaign", campaign),),
                 {"after": int(after), "open": ",".join(map(str, open_runs))}, 0)


def runinfo_rtypes_point(campaign: str, run: int, rtypes: Iterable[str]) -> Point:
    """A run's run types changed (a backfill gave it a run type's tasks): fields only."""
    return Point("runinfo", (("campaign", campaign),), {"rtypes": ",".join(rtypes)}, int(run))


# --- events and the lease -------------------------------------------------------------

def job_point(campaign: str, task: str, run: int, status: Status | str, when_ns: int,
              **fields) -> Point:
    """A ``job`` event: one report of a build about one run, stamped with the wall clock."""
    return Point("job", (("campaign", campaign), ("task", task)),
                 {"run": int(run), "status": Status(status).value, **fields}, when_ns)


def task_job_point(campaign: str, task: str, jid: str, runs: Iterable[int],
                   status: JobStatus | str, when_ns: int, tags: Iterable[tuple[str, str]] = (),
                   **fields) -> Point:
    """A ``job`` event of one job of a task (jobs of many runs: ``runs``, its first in ``run``).

    The job is the series ``(campaign, task, jid, *tags)``: its latest point is
    its status. ``runs`` lists every run it works on (``run``, the first, keeps
    the measurement countable per report like a build's events).
    """
    runs = sorted(int(run) for run in runs)
    return Point("job", (("campaign", campaign), ("task", task), ("jid", jid), *tags),
                 {"run": runs[0], "runs": ",".join(map(str, runs)),
                  "status": JobStatus(status).value, **fields}, when_ns)


def mark_point(campaign: str, run: int, seen: int, fill_run: int, era_run: int) -> Point:
    """A campaign's low-water mark, set by the scheduler: every (run, task) below ``run``
    is settled, as of the server time ``seen`` (ns); ``fill_run`` and ``era_run`` are
    where ``run``'s fill and era start. One point at time 0, overwritten."""
    return Point("mark", (("campaign", campaign),),
                 {"run": int(run), "seen": int(seen), "fill_run": int(fill_run),
                  "era_run": int(era_run)}, 0)


def lowered_point(campaign: str, run: int) -> Point:
    """A write brought back runs from ``run`` on: stamped by the server when it arrives."""
    return Point("lowered", (("campaign", campaign),), {"run": int(run)})


def lowerings(points: Iterable[Point]) -> list[Point]:
    """The ``lowered`` points a write of ``points`` needs: one per campaign it touches.

    The one place the low-water mark is lowered (docs/schema.md, "The low-water
    mark"). :meth:`ecaljenkins.influx.Influx.write` adds them to every request that
    carries run-keyed points, so any writer, present or future, keeps the mark right
    without knowing it: a ``run`` or ``runinfo`` point lowers its campaign's mark to
    its run, a run type or workflow definition point to 0 (every run again).
    """
    lowest: dict[str, int] = {}
    for point in points:
        measurement = point.measurement
        if measurement in RUN_KEYED:
            run = point.time
        elif measurement in CONFIG_KEYED:
            run = 0
        else:
            continue
        campaign = next((value for key, value in point.tags if key == "campaign"), None)
        if campaign and (campaign not in lowest or run < lowest[campaign]):
            lowest[campaign] = run
    return [lowered_point(campaign, run) for campaign, run in lowest.items()]


def lock_point(holder: str, expires: float, taken: float | None = None) -> Point:
    """The scheduling lease: who holds it, until when, since when (unix seconds); one
    point at time 0."""
    fields = {"holder": holder, "expires": float(expires)}
    if taken is not None:
        fields["taken"] = float(taken)
    return Point("lock", (("scope", LOCK_SCOPE),), fields, 0)
