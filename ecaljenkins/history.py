"""The history of a run in a campaign: its builds, and the configuration changes around them.

``ecalrunctrl.py history --run R [--task T]`` answers "what happened to this run,
and who changed what when" in one place: the current state of each of the run's
tasks (attempts, reason, build URL or log, output), every report of its builds
(the ``job`` events), and the configuration changes of the campaign that touch
its tasks (the ``rtype`` and ``workflow`` history, with their user). Everything
is already stored; reading it costs one request of four statements.
"""

from __future__ import annotations

from .campaign import RunCtrl
from .errors import NotFound
from .names import check_name, did_you_mean, quote_str
from .schema import DETAIL_FIELDS

#: fields of a build's report shown in the history
EVENT_FIELDS = ("status", "build", "url", "log", "exit_code", "reason", "output")


def run_history(ctrl: RunCtrl, run: int, task: str | None = None) -> dict:
    """The run's tasks now, and every event of them and of the configuration, oldest first.

    NotFound when the run is not in the campaign, or does not have ``task``.
    """
    run = int(run)
    where = f"campaign = {quote_str(ctrl.campaign)}"
    task_where = f" AND task = {quote_str(check_name(task, 'task'))}" if task else ""
    camp = ctrl.info()
    runinfo, rows, events, rtypes, workflows = _split(ctrl.influx.query(
        f"SELECT fill, era, rtypes FROM runinfo WHERE {where} AND time = {run}; "
        f"SELECT status, {', '.join(DETAIL_FIELDS)} FROM run WHERE {where}{task_where} "
        f"AND time = {run} GROUP BY task; "
        f"SELECT {', '.join(EVENT_FIELDS)} FROM job WHERE {where}{task_where} AND run = {run} "
        "GROUP BY task; "
        f"SELECT * FROM rtype WHERE {where}; "
        f"SELECT task, \"user\" FROM workflow WHERE {where}{task_where}"))
    if not runinfo and not rows:
        raise NotFound(f"run {run} is not in campaign {ctrl.campaign!r}")
    if task and not rows:
        raise NotFound(f"run {run} does not have task {task!r} in campaign {ctrl.campaign!r}"
                       + did_you_mean(task, camp.active_tasks))
    tasks = {row["task"]: {"status": row.get("status"),
                           **{key: row.get(key) for key in DETAIL_FIELDS}}
             for row in sorted(rows, key=lambda r: r["task"])}
    info = runinfo[0] if runinfo else {}
    history = [{"time": row["time"], "what": "build", "task": row["task"],
                **{key: row.get(key) for key in EVENT_FIELDS}} for row in events]
    history += _config_changes(rtypes, workflows, set(tasks))
    history.sort(key=lambda entry: entry["time"])
    return {"campaign": ctrl.campaign, "run": run, "fill": info.get("fill"),
            "era": info.get("era"),
            "rtypes": [r for r in (info.get("rtypes") or "").split(",") if r],
            "tasks": tasks, "history": history}


def _split(series_list) -> tuple[list, list, list, list, list]:
    """Rows of each measurement, in the order of the five statements (one per measurement)."""
    found: dict[str, list] = {}
    for series in series_list:
        found.setdefault(series.name, []).extend(series.dicts())
    return tuple(found.get(name, []) for name in ("runinfo", "run", "job", "rtype", "workflow"))


def _config_changes(rtypes: list[dict], workflows: list[dict], tasks: set[str]) -> list[dict]:
    """Run-type changes that added or removed one of ``tasks`` (or created a run type
    with them), and the recording of their workflow definitions: who, when."""
    changes = []
    for row in rtypes:
        added = [t for t in (row.get("added") or "").split(",") if t in tasks]
        removed = [t for t in (row.get("removed") or "").split(",") if t in tasks]
        if not (added or removed):
            continue
        changes.append({"time": row["time"], "what": "config", "rtype": row["rtype"],
                        "event": row.get("event"), "added": added, "removed": removed,
                        "user": row.get("user")})
    changes += [{"time": row["time"], "what": "workflow", "task": row["task"],
                 "event": "recorded", "user": row.get("user")}
                for row in workflows if row.get("task") in tasks]
    return changes
