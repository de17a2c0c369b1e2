"""Run types, groups, reprocessing and dependents stay consistent (issue 11).

One rule everywhere: a (run, task) is scheduled and counted only while one of the
run's run types has the task (planner, text status, status --json, HTML report,
reprocess). A fill/era group build covers every run of its group; a run without a
fill is its own group. Reprocessing says what it did to groups and dependents.
"""

import json
import re

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.jobctrl import reprocess
from ecaljenkins.registry import Run
from ecaljenkins.report import render_report
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.status import campaign_status
from ecaljenkins.workflows import Workflow

from scheduling import FIRST_RUN, make_campaign, make_runs, rows, statuses

R = FIRST_RUN


def dry_run(client):
    """The plan of one dry cycle (nothing written), and the warnings of the campaign."""
    report = Scheduler(client, dry_run=True).cycle().campaigns[0]
    return report.plan, report.warnings


def builds(plan, task):
    return [b.runs for b in plan.tasks[task].builds]


@pytest.fixture
def two_rtypes(client):
    """Task b on run type 'all' and on 'late' (runs R+2, R+3), a on 'all'; 4 runs;
    then b removed from 'all': only R+2 and R+3 still have it."""
    ctrl = RunCtrl(client, "c1")
    ctrl.create()
    flows = [Workflow("a", "echo a"), Workflow("b", "echo b")]
    ctrl.update_rtype("all", add=["a", "b"], definitions={w.task: w.to_json() for w in flows})
    ctrl.create_rtype("late", [f"run >= {R + 2}"], ["b"])
    ctrl.inject(make_runs(4))
    ctrl.set_status("b", [R, R + 1, R + 2, R + 3], "done")
    ctrl.update_rtype("all", remove=["b"])
    return ctrl


def test_one_rule_for_planner_status_json_text_and_report(two_rtypes, client, run_cli):
    summary = reprocess(two_rtypes, "b")            # --all
    assert summary.reset == [R + 2, R + 3] and summary.inactive == [R, R + 1]
    assert statuses(two_rtypes, "b") == {R: "done", R + 1: "done", R + 2: "new", R + 3: "new"}
    plan, _ = dry_run(client)
    assert builds(plan, "b") == [(R + 2,), (R + 3,)]
    assert plan.tasks["b"].counts == {"new": 2}

    doc = campaign_status(two_rtypes)
    assert doc["tasks"]["b"] == {"new": 2}
    assert doc["inactive"] == {"b": {"done": 2}}
    assert doc["rtypes"]["late"]["counts"]["b"] == {"new": 2}
    res = run_cli("ecalrunctrl.py", "status", "-c", "c1", "--json")
    assert json.loads(res.out)["tasks"] == doc["tasks"]
    text = run_cli("ecalrunctrl.py", "status", "-c", "c1").out
    assert "runs kept, neither scheduled nor counted" in text
    page = render_report(two_rtypes)
    b_row = re.search(r"<tr><td>b</td>.*?</tr>", page)[0]
    assert ">2</td>" in b_row and "0/2 (0.0%)" in b_row, b_row

    # reprocessing a run whose run types no longer have the task says so, changes nothing
    res = run_cli("ecalrunctrl.py", "reprocess", "-c", "c1", "--task", "b", "--runs", str(R))
    assert res.code == 0, res
    assert "1 run(s) left alone: their run types no longer have b (355100)" in res.out
    assert statuses(two_rtypes, "b")[R] == "done"


def test_backfilled_runs_have_the_run_type(client):
    ctrl = RunCtrl(client, "c2")
    ctrl.create()
    ctrl.update_rtype("all", add=["a"], definitions={"a": Workflow("a", "x").to_json()})
    ctrl.inject(make_runs(2))
    ctrl.create_rtype("late", [f"run >= {R + 1}"])
    change = ctrl.update_rtype("late", add=["b"], backfill=True,
                               definitions={"b": Workflow("b", "y").to_json()})
    assert change.backfilled == 1
    plan, _ = dry_run(client)
    assert builds(plan, "b") == [(R + 1,)]
    assert campaign_status(ctrl)["tasks"]["b"] == {"new": 1}


CALIB = Workflow("calib", "c", depends_on=("reco",), group_by="fill")


@pytest.fixture
def grouped(client):
    """reco then calib by fill; runs R, R+1 of one fill injected and all done."""
    runs = make_runs(3)                       # one fill
    ctrl = make_campaign(client, "c1", [Workflow("reco", "r"), CALIB], runs[:2])
    ctrl.set_status("reco", [R, R + 1], "done")
    ctrl.set_status("calib", [R, R + 1], "done", attempt=1)
    return ctrl, runs


def test_a_late_run_rebuilds_its_whole_group(grouped, client):
    ctrl, runs = grouped
    ctrl.inject(runs[2:])
    ctrl.set_status("reco", [R + 2], "done")
    plan, _ = dry_run(client)
    assert builds(plan, "calib") == [(R, R + 1, R + 2)]
    build = plan.tasks["calib"].builds[0]
    assert [build.attempt(row) for row in build.rows] == [2, 2, 1]


def test_reprocess_one_run_of_a_group_resets_the_group_and_says_so(grouped, run_cli):
    ctrl, _ = grouped
    res = run_cli("ecalrunctrl.py", "reprocess", "-c", "c1", "--task", "calib", "--runs",
                  str(R))
    assert res.code == 0, res
    assert "2 run(s) of calib reset to new" in res.out
    assert "calib is built by fill: the whole fill group(s) reset, 1 more run(s): 355101" \
        in res.out
    assert statuses(ctrl, "calib") == {R: "new", R + 1: "new"}


def test_reprocess_names_or_resets_the_dependents(grouped, run_cli):
    ctrl, _ = grouped
    res = run_cli("ecalrunctrl.py", "reprocess", "-c", "c1", "--task", "reco", "--runs", str(R))
    assert res.code == 0, res
    assert ("dependent calib left alone on the old outputs for 1 run(s) (355100): "
            "--with-dependents resets it too") in res.out
    assert statuses(ctrl, "calib") == {R: "done", R + 1: "done"}
    res = run_cli("ecalrunctrl.py", "reprocess", "-c", "c1", "--task", "reco", "--runs", str(R),
                  "--with-dependents")
    assert res.code == 0, res
    assert "dependent calib: 2 run(s) reset too" in res.out     # its fill group
    assert statuses(ctrl, "calib") == {R: "new", R + 1: "new"}
    assert statuses(ctrl, "reco") == {R: "new", R + 1: "done"}


def test_runs_without_a_fill_are_each_their_own_group(client):
    def nofill(number, era):
        return Run.from_attrs({"run_number": number, "fill_number": None, "era": era,
                               "sequence": "GLOBAL-RUN", "start_time": "2022-07-17T06:00:00",
                               "end_time": "2022-07-17T07:00:00"})
    runs = [nofill(R, "Run2022C"), nofill(R + 1, "Run2022D"), *make_runs(2, first=R + 2)]
    make_campaign(client, "c1", [Workflow("calib", "c", group_by="fill")], runs)
    plan, warnings = dry_run(client)
    assert builds(plan, "calib") == [(R,), (R + 1,), (R + 2, R + 3)]
    assert "task 'calib': 2 run(s) without a fill number, each built as its own group" \
        in warnings


def test_a_dependency_active_nowhere_is_reported_every_cycle(client, run_cli, db):
    ctrl = RunCtrl(client, "c1")
    ctrl.create()
    ctrl.update_rtype("all", add=["calib"], definitions={"calib": CALIB.to_json()},
                      allow_undefined=True)
    ctrl.inject(make_runs(2))
    for args in (["--dry-run"], ["--executor", "local"]):
        res = run_cli("ecalautomation.py", "--db", db, "schedule", *args)
        assert res.code == 0, res
        assert ("warning: task 'calib' depends on 'reco', active in no run type of campaign "
                "'c1': its runs wait until 'reco' is added") in res.err, res


def test_rows_failed_for_good_are_not_waiting(client, run_cli, db):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "r", max_retries=0)], make_runs(2))
    ctrl.set_status("reco", [R, R + 1], "failed", attempt=1)
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local")
    assert res.code == 0, res
    assert "0 waiting; 2 failed for good (retries exhausted: reprocess them)" in res.out, res
