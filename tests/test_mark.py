"""The low-water mark (docs/schema.md): a cycle reads what can still change, and misses
nothing any writer brings back. Against the real influxd."""

import time

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.jobctrl import Reporter, reprocess
from ecaljenkins.influx import Influx
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.scheduler.state import (definitions, read_mark, read_state, rebuild_mark,
                                         write_mark)
from ecaljenkins.taskjobs import report as report_jobs
from ecaljenkins.workflows import Workflow

from scheduling import FIRST_RUN, Clock, add_jobs, jenkins_scheduler, make_campaign, make_runs

R = FIRST_RUN
RECO = Workflow("reco", "reco.sh", max_retries=1, retry_delay=0)
CALIB = Workflow("calib", "calib.sh", depends_on=("reco",), group_by="fill")


def settle_mark(client, name: str) -> int:
    """The mark as a cycle long after the set-up's writes would store it."""
    time.sleep(1.1)   # the server's clock (whole seconds) past every write of the set-up
    camp = RunCtrl(client, name).info()
    return rebuild_mark(client, camp, definitions(camp, dict, []), settle=0)


def dry(client, name: str):
    """One dry-run cycle of campaign ``name``: its report, and the queries it made."""
    before = client.stats["queries"]
    report = Scheduler(client, dry_run=True).cycle(name).campaigns[0]
    assert not report.errors
    return report, client.stats["queries"] - before


def planned(report, task: str) -> list[tuple[int, ...]]:
    return [build.runs for build in report.plan.tasks[task].builds]


@pytest.fixture
def twelve(client):
    """Campaign c1: reco then calib per fill (fills of 3 runs), 12 runs; reco done for
    the first 8, calib done for the first 6 (fills 8000 and 8001)."""
    ctrl = make_campaign(client, "c1", [RECO, CALIB], make_runs(12))
    ctrl.set_status("reco", range(R, R + 8), "done")
    ctrl.set_status("calib", range(R, R + 6), "done")
    return ctrl


def test_a_cycle_reads_from_the_mark(client, twelve):
    assert settle_mark(client, "c1") == R + 6          # calib of R+6 is the lowest new row
    assert read_mark(client, "c1").starts == {"fill": R + 6, "era": R + 6}   # fill 8002
    report, queries = dry(client, "c1")
    assert report.since == R + 6 and not report.warnings
    assert queries == 3                                # configuration, mark, rows
    counts = {task: sum(tp.counts.values()) for task, tp in report.plan.tasks.items()}
    assert counts == {"reco": 6, "calib": 6}           # only the rows from the mark on
    assert planned(report, "reco") == [(R + 8,), (R + 9,), (R + 10,), (R + 11,)]
    assert planned(report, "calib") == []              # fill 8002 waits for reco of R+8
    assert {wait.reason for wait in report.plan.tasks["calib"].waiting} == \
        {"rest of its group not ready", "dependency not done"}


def test_the_mark_keeps_a_pending_row_and_where_its_group_starts(client, twelve):
    # calib of R+5 (fill 8001: R+3..R+5) fails with retries left: the mark stays at it
    twelve.set_status("calib", [R + 5], "failed", attempt=1)
    assert settle_mark(client, "c1") == R + 5
    assert read_mark(client, "c1").starts["fill"] == R + 3   # its fill starts at R+3
    camp = twelve.info()
    state = read_state(client, camp, {"calib": "fill"})
    assert state.groups_since == R + 3                 # where a group's runs are read from
    assert [row.run for row in state.rows["calib"]][:3] == [R + 3, R + 4, R + 5]
    assert [row.run for row in state.rows["reco"]][0] == R + 5
    # out of retries (max_retries 2), it is settled: the mark passes it
    twelve.set_status("calib", [R + 5], "failed", attempt=3)
    assert settle_mark(client, "c1") == R + 6


def test_a_real_cycle_stores_the_mark_and_keeps_it_right(client, db, jenkins, twelve):
    settle_mark(client, "c1")
    add_jobs(jenkins, db, "c1", ["reco", "calib"])
    clock = Clock()
    report = jenkins_scheduler(client, clock).cycle("c1").campaigns[0]
    assert not report.errors and len(report.triggered) == 4   # reco of R+8..R+11
    # the builds in flight hold the mark at the group of the oldest pending row
    assert report.mark == R + 6 == read_mark(client, "c1").run


def test_reprocess_of_an_old_run_is_planned(client, twelve):
    settle_mark(client, "c1")
    reprocess(RunCtrl(client, "c1"), "reco", runs=[R + 1])
    report, _ = dry(client, "c1")
    assert (R + 1,) in planned(report, "reco")
    assert report.since <= R + 1


def test_reprocess_inside_a_group_reads_the_whole_group(client, twelve):
    settle_mark(client, "c1")
    reprocess(RunCtrl(client, "c1"), "calib", runs=[R + 4])   # fill 8001 = R+3..R+5
    report, queries = dry(client, "c1")
    assert report.since == R + 3                       # reprocess reset the whole group
    assert report.groups_since == R + 3                # the group's first run, for its runs
    assert queries == 5                                # + where its group starts, its rows
    assert planned(report, "calib")[0] == (R + 3, R + 4, R + 5)   # a group builds whole


def test_an_old_run_injected_late_is_planned(client):
    runs = make_runs(12)
    late = runs.pop(2)                                 # R+2 closes after the others
    ctrl = make_campaign(client, "c1", [RECO], runs)
    ctrl.set_status("reco", [run.number for run in runs[:8]], "done")
    assert settle_mark(client, "c1") == R + 9          # runs[8]
    assert ctrl.inject([late]).injected == [R + 2]
    report, _ = dry(client, "c1")
    assert planned(report, "reco")[0] == (R + 2,)


def test_reports_of_builds_and_jobs_on_old_runs_lower_the_mark(client, twelve):
    settle_mark(client, "c1")
    Reporter(client, "c1", "reco").report([R + 2], "failed")   # jobctrl --failed by hand
    report, _ = dry(client, "c1")
    assert report.since <= R + 2 and (R + 2,) in planned(report, "reco")
    settle_mark(client, "c1")
    report_jobs(client, "c1", "reco", {"0": [R + 1]}, "failed")   # a job of a task
    report, _ = dry(client, "c1")
    assert report.since <= R + 1 and (R + 1,) in planned(report, "reco")


def test_a_run_type_change_reads_every_run_again(client, twelve):
    settle_mark(client, "c1")
    twelve.update_rtype("all", remove=["calib"])
    report, _ = dry(client, "c1")
    assert report.since == 0


def test_a_lowering_while_a_cycle_runs_is_not_lost(client, twelve, monkeypatch):
    settle_mark(client, "c1")
    monkeypatch.setattr("ecaljenkins.scheduler.state.SETTLE_SECONDS", 0)
    camp = twelve.info()
    workflows = definitions(camp, dict, [])
    state = read_state(client, camp)                   # a cycle reads ...
    reprocess(twelve, "reco", runs=[R])                # ... a user reprocesses meanwhile ...
    assert write_mark(client, state, workflows) == R + 6   # ... the cycle stores its mark
    again = read_state(client, camp)
    assert again.since == R and again.rows["reco"][0].status == "new"


def test_max_in_flight_counts_builds_below_the_newest(client, db, jenkins):
    capped = Workflow("reco", "reco.sh", max_in_flight=1)
    ctrl = make_campaign(client, "c1", [capped], make_runs(6))
    ctrl.set_status("reco", [R, R + 1], "done")
    ctrl.set_status("reco", [R + 2], "running", trigger="t" * 32, queue_id=7)
    assert settle_mark(client, "c1") == R + 2
    report, _ = dry(client, "c1")
    assert planned(report, "reco") == []
    assert {str(wait) for wait in report.plan.tasks["reco"].waiting} == \
        {"cap reached (max_in_flight 1, 1 already in flight)"}


def test_a_campaign_without_mark_is_read_whole_until_index_rebuild(client, influxd, db,
                                                                    run_cli, twelve):
    admin = Influx(db, influxd.url, user=influxd.admin, password=influxd.admin_password)
    admin.query('DROP MEASUREMENT "mark"')             # a campaign made before marks
    report, _ = dry(client, "c1")
    assert report.since == 0
    assert any("no low-water mark" in w and "index --rebuild" in w for w in report.warnings)
    shown = run_cli("ecalrunctrl.py", "index", "-c", "c1")
    assert shown.code == 0 and "no low-water mark" in shown.out
    assert read_mark(client, "c1") is None             # showing it changes nothing
    rebuilt = run_cli("ecalrunctrl.py", "index", "--rebuild")
    assert rebuilt.code == 0, rebuilt.err
    assert f"campaign 'c1': low-water mark set at run {R + 6}" in rebuilt.out
    assert read_mark(client, "c1").run == R + 6
    assert "low-water mark at run" in run_cli("ecalrunctrl.py", "index", "-c", "c1").out
    missing = run_cli("ecalrunctrl.py", "index", "-c", "nope")
    assert missing.code == 2 and "campaign 'nope' does not exist" in missing.err


def test_every_write_request_carries_the_lowering_of_its_own_points(client):
    from ecaljenkins.schema import Point, new_run_point, rtype_point, runinfo_point
    points = [new_run_point("a", "t", 300, 1, "E", 0.0), new_run_point("b", "t", 200, 1, "E", 0.0),
              new_run_point("a", "t", 100, 1, "E", 0.0), runinfo_point("a", 50, 1, "E", [], {}),
              rtype_point("b", "all", [], [], "update", "u", 1)]
    assert client.write(points, batch=2) == 3
    client.write(["run,campaign=a,task=t status=\"new\" 10"])   # strings: as they are
    client.write([Point("run", (), {"status": "new"}, 5)])   # no campaign: nothing lowered
    client.write([new_run_point("a", "t", 20, 1, "E", 0.0)], lower_marks=False)
    lowered = [(row["campaign"], row["run"]) for row in client.select(
        "SELECT campaign, run FROM lowered")]
    assert sorted(lowered) == [("a", 50), ("a", 300), ("b", 0), ("b", 200)]
