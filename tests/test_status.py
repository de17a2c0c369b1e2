"""The status view: the library's numbers, the text and JSON outputs, colour, failures."""

import json
import os
import pty
import subprocess
import sys

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.cli.status import bar
from ecaljenkins.registry import open_registry
from ecaljenkins.status import campaign_status

from fixtures.leaks import record_output

ERA = "Run2022G"  # 24 runs: 21 global, 3 not
URL = "https://cmsjenkins.cern.ch/job/ecal-db-c1-t1/{}/"


@pytest.fixture
def runs():
    """(global runs, other runs) of the era, sorted."""
    found = open_registry().era(ERA)
    return (sorted(r.number for r in found if r.sequence == "GLOBAL-RUN"),
            sorted(r.number for r in found if r.sequence != "GLOBAL-RUN"))


@pytest.fixture
def ctrl(client, runs):
    """Campaign c1: run type 'all' (global runs) with t1, t2; 'cosmics' (the others)
    with t2, t3; t9 given to the global runs then removed; a few builds done/failed."""
    glob, other = runs
    ctrl = RunCtrl(client, "c1")
    ctrl.create(description="status test")
    ctrl.update_rtype("all", add=["t1", "t2", "t9"])
    ctrl.create_rtype("cosmics", ["sequence != GLOBAL-RUN"], ["t2", "t3"])
    ctrl.inject(open_registry().era(ERA))
    ctrl.update_rtype("all", remove=["t9"])
    for run in glob[:5]:
        ctrl.set_status("t1", [run], "done", url=URL.format(run), build=run % 1000, attempt=1)
    ctrl.set_status("t1", glob[5:7], "failed", reason="exit code 1", attempt=3,
                    url=URL.format(7), build=7)
    ctrl.set_status("t1", glob[7:8], "running", url=URL.format(8), attempt=1)
    ctrl.set_status("t2", other[:1], "failed", reason="timeout", attempt=1,
                    log="/eos/logs/t2.log")
    return ctrl


def status_cli(run_cli, *args):
    res = run_cli("ecalrunctrl.py", "status", "-c", "c1", *args)
    assert res.code == 0 and res.err == "", res
    return res.out


def test_counts_per_run_type_task_and_status(ctrl, runs):
    glob, other = runs
    doc = campaign_status(ctrl)
    assert doc["campaign"] == "c1" and doc["kind"] == "rereco" and doc["active"] is True
    assert doc["runs"] == len(glob) + len(other)
    t1 = {"new": len(glob) - 8, "running": 1, "done": 5, "failed": 2}
    assert doc["rtypes"] == {
        "all": {"filters": ["sequence == GLOBAL-RUN"], "tasks": ["t1", "t2"],
                "runs": len(glob), "counts": {"t1": t1, "t2": {"new": len(glob)}}},
        "cosmics": {"filters": ["sequence != GLOBAL-RUN"], "tasks": ["t2", "t3"],
                    "runs": len(other),
                    "counts": {"t2": {"new": len(other) - 1, "failed": 1},
                               "t3": {"new": len(other)}}}}
    # per task over the whole campaign; t9 is no longer active: its rows remain, not counted
    assert doc["tasks"] == {"t1": t1, "t2": {"new": len(glob) + len(other) - 1, "failed": 1},
                            "t3": {"new": len(other)}}
    assert list(doc["tasks"]) == ["t1", "t2", "t3"]
    assert doc["inactive"] == {"t9": {"new": len(glob)}}
    assert list(doc["tasks"]["t1"]) == ["new", "running", "done", "failed"]  # lifecycle order
    expected = sorted([{"run": glob[5], "task": "t1", "attempt": 3, "reason": "exit code 1",
                        "url": URL.format(7), "log": None, "build": 7},
                       {"run": glob[6], "task": "t1", "attempt": 3, "reason": "exit code 1",
                        "url": URL.format(7), "log": None, "build": 7},
                       {"run": other[0], "task": "t2", "attempt": 1, "reason": "timeout",
                        "url": None, "log": "/eos/logs/t2.log", "build": None}],
                      key=lambda f: f["run"])
    assert doc["failures"] == expected


def test_a_constant_number_of_queries(ctrl, client):
    def queries():
        before = client.stats["queries"]
        campaign_status(ctrl)
        return client.stats["queries"] - before
    small = queries()
    ctrl.inject(open_registry().era("Run2022B"))
    ctrl.set_status("t1", [r.number for r in open_registry().era("Run2022B")][:30], "failed")
    # configuration, runs, rows, failed rows, jobs of tasks of many jobs
    assert queries() == small == 5


def test_json_keeps_the_old_shape_and_adds_keys(run_cli, ctrl, runs):
    glob, other = runs
    doc = json.loads(status_cli(run_cli, "--json"))
    assert doc == campaign_status(ctrl)
    assert doc["campaign"] == "c1"
    assert doc["tasks"]["t3"] == {"new": len(other)}
    assert set(doc) == {"campaign", "kind", "active", "runs", "rtypes", "tasks", "inactive",
                        "failures", "jobs"}
    assert doc["jobs"] == {}   # no task of many jobs
    assert set(doc["rtypes"]["all"]) == {"filters", "tasks", "runs", "counts"}
    assert set(doc["failures"][0]) == {"run", "task", "attempt", "reason", "url", "log", "build"}


def test_text_shows_run_types_bars_and_failures(run_cli, ctrl, runs):
    glob, other = runs
    out = status_cli(run_cli)
    lines = out.splitlines()
    assert lines[0] == (f"campaign 'c1' (rereco) in database '{ctrl.influx.db}': active; "
                        f"{len(glob) + len(other)} run(s)")
    assert "\033[" not in out  # not a terminal: no colour
    section = lines.index(f"run type 'all' (sequence == GLOBAL-RUN): {len(glob)} run(s)")
    assert lines[section + 1].split() == ["task", "new", "queued", "running", "done",
                                          "failed", "total", "progress"]
    t1 = lines[section + 3].split()
    assert t1[:7] == ["t1", str(len(glob) - 8), "0", "1", "5", "2", str(len(glob))]
    assert " ".join(t1[7:]) == bar({"done": 5, "failed": 2, "new": len(glob) - 7}, False)
    assert f"run type 'cosmics' (sequence != GLOBAL-RUN): {len(other)} run(s)" in lines
    leftover = lines.index("runs kept, neither scheduled nor counted (no run type of theirs "
                           "has the task any more):")
    assert lines[leftover + 3].split()[:2] == ["t9", str(len(glob))]
    failures = lines.index("3 failure(s):")
    rows = [line.split() for line in lines[failures + 3:]]
    assert rows == sorted([[str(glob[5]), "t1", "3", "exit", "code", "1", URL.format(7)],
                           [str(glob[6]), "t1", "3", "exit", "code", "1", URL.format(7)],
                           [str(other[0]), "t2", "1", "timeout", "/eos/logs/t2.log"]])
    assert "... and" not in out


def test_bar():
    assert bar({"done": 3, "failed": 1, "new": 8}, False) == \
        "[######!!................] 3/12 25%"
    assert bar({"done": 12}, False) == "[########################] 12/12 100%"
    assert bar({}, False) == "[........................] 0/0 -"
    assert bar({"done": 3, "failed": 1, "new": 8}, True) == \
        "[\033[32m######\033[0m\033[31m!!\033[0m................] 3/12 25%"


def test_at_most_20_failures_then_a_hint(run_cli, ctrl, runs, db):
    glob, _ = runs
    ctrl.set_status("t2", glob, "failed", reason="bad calibration")
    out = status_cli(run_cli)
    total = len(glob) + 3
    lines = out.splitlines()
    start = lines.index(f"{total} failure(s):")
    assert len(lines[start + 3:-1]) == 20
    assert lines[-1] == (f"... and {total - 20} more: ecalrunctrl.py --db {db} runs -c c1 "
                         "--status failed")
    hinted = run_cli("ecalrunctrl.py", *lines[-1].split(": ", 1)[1].split()[1:], "--json")
    assert len(json.loads(hinted.out)) == len(glob) + 1  # runs with any failed task


def test_inactive_campaign_says_so(run_cli, ctrl):
    ctrl.update_rtype("all", remove=["t1", "t2"])
    ctrl.update_rtype("cosmics", remove=["t2", "t3"])
    out = status_cli(run_cli)
    assert "INACTIVE: no run type has an active task, nothing is scheduled" in out.splitlines()[0]
    assert out.count("no active task") == 2
    doc = json.loads(status_cli(run_cli, "--json"))
    assert doc["active"] is False
    assert doc["rtypes"]["all"]["tasks"] == [] and doc["rtypes"]["all"]["counts"] == {}
    assert doc["tasks"] == {} and doc["failures"] == []     # nothing counts any more
    assert set(doc["inactive"]) == {"t1", "t2", "t3", "t9"}  # rows are kept


def test_hostile_reason_prints_as_one_plain_line(run_cli, ctrl, runs):
    glob, _ = runs
    ctrl.set_status("t1", glob[5:6], "failed", reason="line one\n\033[2J\033[31mline two\ttab",
                    url="x\ny")
    out = status_cli(run_cli)
    assert "\033" not in out
    row = [line for line in out.splitlines() if line.startswith(str(glob[5]))]
    assert row[0].split() == [str(glob[5]), "t1", "3", "line", "one", "[2J", "[31mline",
                              "two", "tab", "x", "y"]


def read_tty(argv, env):
    """Run ``argv`` with its stdout on a pseudo-terminal; return what it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code, err = proc.wait(timeout=60), proc.stderr.read().decode()
    record_output(out.decode(), err)
    assert code == 0, err
    return out.decode()


def test_colour_only_on_a_terminal(env, ctrl):
    argv = [sys.executable, "-m", "ecaljenkins.cli.runctrl", "status", "-c", "c1"]
    plain = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = read_tty(argv, plain)
    assert "\033[32m#####\033[0m\033[31m!!!\033[0m...." in coloured  # t1: 5+2 of 21
    assert "\033[" not in read_tty(argv, dict(plain, NO_COLOR="1"))


def test_unknown_campaign_is_an_input_error(run_cli, ctrl):
    res = run_cli("ecalrunctrl.py", "status", "-c", "c11", "--json")
    assert res.code == 2 and res.out == ""
    assert res.err.strip() == (f"ecalrunctrl.py: error: campaign 'c11' does not exist in "
                               f"database '{ctrl.influx.db}' (did you mean 'c1'?)")
