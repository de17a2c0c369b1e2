"""The Grafana dashboard: its structure, and every query run against a real campaign.

Grafana sends the InfluxQL of each target as written (``rawQuery``), after
substituting its variables; :func:`interpolate` does the same substitutions
(``$timeFilter`` in Grafana's own form: ``time >= <ms>ms and time <= <ms>ms``).
"""

import json
import re
from pathlib import Path

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.schema import STATUSES, job_point
from ecaljenkins.registry import open_registry
from ecaljenkins.status import campaign_status

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboards" / "campaign.json"
MINUTE = 60 * 10**9
T0 = 1_700_000_000 // 3600 * 3600 * 10**9      # an hour boundary (ns)
START_MS, END_MS = T0 // 10**6, (T0 + 180 * MINUTE) // 10**6 - 1   # three hours
URL = "https://cmsjenkins.cern.ch/job/ecal-db-c1-t1/{}/"
#: (status, task, run index, minutes after T0, fields) of the job events of c1
EVENTS = [("queued", "t1", 0, 0, {}),
          ("running", "t1", 0, 1, {"build": 1, "url": URL.format(1)}),
          ("running", "t1", 1, 2, {"build": 2, "url": URL.format(2)}),
          ("done", "t1", 0, 30, {"build": 1, "url": URL.format(1)}),
          ("failed", "t1", 1, 40, {"build": 2, "url": URL.format(2), "exit_code": 65,
                                   "reason": "exit code 65"}),
          ("running", "t2", 2, 61, {"build": 3}),
          ("done", "t2", 2, 90, {"build": 3, "log": "/eos/logs/3.log"}),
          ("failed", "t2", 3, 150, {"build": 4, "reason": "timeout"})]


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def targets(dashboard):
    return [(panel, target) for panel in dashboard["panels"] for target in panel["targets"]]


def interpolate(query: str, campaign: str) -> str:
    """The query Grafana sends: variables replaced (the longest names first)."""
    values = {"$timeFilter": f"time >= {START_MS}ms and time <= {END_MS}ms",
              "$__interval_ms": str(3600 * 1000), "$__interval": "1h",
              "${campaign}": re.escape(campaign), "$campaign": re.escape(campaign)}
    for name in sorted(values, key=len, reverse=True):
        query = query.replace(name, values[name])
    assert not re.search(r"\$\{?\w", query), query
    return query


@pytest.fixture
def campaign(client):
    """c1 with two run types, states and job events; c10 alongside, to be left out."""
    runs = open_registry().era("Run2022G")
    glob = sorted(r.number for r in runs if r.sequence == "GLOBAL-RUN")
    ctrl = RunCtrl(client, "c1")
    ctrl.create()
    ctrl.update_rtype("all", add=["t1", "t2"])
    ctrl.create_rtype("cosmics", ["sequence != GLOBAL-RUN"], ["t3"])
    ctrl.inject(runs)
    ctrl.set_status("t1", glob[:1], "done", build=1, url=URL.format(1))
    ctrl.set_status("t1", glob[1:2], "failed", build=2, url=URL.format(2), reason="exit code 65")
    ctrl.set_status("t2", glob[2:3], "done", build=3)
    ctrl.set_status("t2", glob[3:4], "failed", build=4, reason="timeout")
    ctrl.set_status("t2", glob[4:6], "running")
    client.write([job_point("c1", task, glob[i], status, T0 + minutes * MINUTE, **fields)
                  for status, task, i, minutes, fields in EVENTS])
    other = RunCtrl(client, "c10")
    other.create()
    other.update_rtype("all", add=["t1"])
    other.inject(runs)
    other.set_status("t1", glob, "failed", reason="not mine")
    client.write([job_point("c10", "t1", run, "failed", T0 + 5 * MINUTE + i)
                  for i, run in enumerate(glob)])
    return ctrl, glob


def results(client, dashboard, campaign="c1"):
    """{(panel title, refId): series} of every target of the dashboard."""
    return {(panel["title"], target["refId"]):
            client.query(interpolate(target["query"], campaign))
            for panel, target in targets(dashboard)}


def test_structure(dashboard):
    assert dashboard["schemaVersion"] == 39 and dashboard["uid"] == "ecal-campaign"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "influxdb"
    assert variables["campaign"]["type"] == "query"
    assert variables["campaign"]["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    cells = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, panel["title"]  # panels do not overlap
        cells |= area
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
    for panel, target in targets(dashboard):
        assert target["rawQuery"] is True and target["datasource"] == panel["datasource"]
        query = target["query"]
        assert '"campaign" =~ /^$campaign$/' in query
        measurement = re.search(r'FROM "(\w+)"', query).group(1)
        # run state is stamped with run numbers (1970): a time filter would hide it
        assert ("$timeFilter" in query) == (measurement == "job"), query


def test_campaign_variable_lists_the_campaigns(client, dashboard, campaign):
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "campaign")
    (series,) = client.query(variable["query"])
    assert [value for _, value in series.values] == ["c1", "c10"]


def test_progress_per_task_matches_the_status_view(client, dashboard, campaign):
    ctrl, _ = campaign
    found = results(client, dashboard)
    progress = next(p for p in dashboard["panels"] if p["title"] == "Progress per task")
    counted, totals = {}, {}
    for target in progress["targets"]:
        for series in found[(progress["title"], target["refId"])]:
            (_, value), = series.values
            name = series.columns[1]
            if name == "total":
                totals[series.tags["task"]] = value
            else:
                counted.setdefault(series.tags["task"], {})[name] = value
    expected = campaign_status(ctrl)["tasks"]
    assert counted == expected
    assert totals == {task: sum(c.values()) for task, c in expected.items()}
    assert {name for c in counted.values() for name in c} <= set(STATUSES)


def test_stats(client, dashboard, campaign):
    ctrl, _ = campaign
    found = results(client, dashboard)
    (runs,) = found[("Runs in the campaign", "A")]
    assert runs.values[0][1] == len(open_registry().era("Run2022G"))
    (failed,) = found[("Failed (run, task) now", "A")]
    assert failed.values[0][1] == len(campaign_status(ctrl)["failures"]) == 2


def test_build_reports_per_status_over_time(client, dashboard, campaign):
    found = results(client, dashboard)
    panel = next(p for p in dashboard["panels"] if p["title"] == "Build reports per status")
    per_status = {}
    for target in panel["targets"]:
        (series,) = found[(panel["title"], target["refId"])]
        assert [t for t, _ in series.values] == [T0 + h * 60 * MINUTE for h in range(3)]
        per_status[target["alias"]] = [count for _, count in series.values]
    # hourly buckets of EVENTS (c10's failures at T0 + 5 min are not counted)
    assert per_status == {"queued": [1, 0, 0], "running": [2, 1, 0], "done": [1, 1, 0],
                          "failed": [1, 0, 1]}


def test_recent_failures_newest_first(client, dashboard, campaign):
    _, glob = campaign
    (series,) = results(client, dashboard)[("Recent failures", "A")]
    rows = [dict(zip(series.columns, values)) for values in series.values]
    assert [(r["time"], r["run"], r["task"], r["build"], r["reason"]) for r in rows] == [
        (T0 + 150 * MINUTE, glob[3], "t2", 4, "timeout"),
        (T0 + 40 * MINUTE, glob[1], "t1", 2, "exit code 65")]
    assert rows[1]["url"] == URL.format(2) and rows[1]["exit_code"] == 65


def test_configuration_history(client, dashboard, campaign):
    (series,) = results(client, dashboard)[("Campaign configuration history", "A")]
    rows = [dict(zip(series.columns, values)) for values in series.values]
    assert [(r["rtype"], r["event"], r["tasks"], r["added"]) for r in rows] == [
        ("cosmics", "create", "t3", "t3"),
        ("all", "update", "t1,t2", "t1,t2"),
        ("all", "create", "", "")]
    assert json.loads(rows[-1]["filters"]) == ["sequence == GLOBAL-RUN"]


def test_other_campaign_sees_only_its_own(client, dashboard, campaign):
    found = results(client, dashboard, campaign="c10")
    (failed,) = found[("Failed (run, task) now", "A")]
    assert failed.values[0][1] == len(campaign[1])
    (series,) = found[("Recent failures", "A")]
    assert {row[series.columns.index("task")] for row in series.values} == {"t1"}
    assert len(series.values) == len(campaign[1])
