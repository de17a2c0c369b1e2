"""Prompt campaigns never lose a run (issue 11): runs closing out of order, the registry
chosen explicitly, the start run, and a dry run when the registry fails."""

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.cli.automation import main as automation
from ecaljenkins.cli.runctrl import main as runctrl
from ecaljenkins.registry import Run
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.workflows import Workflow

from fixtures.influx import dump
from scheduling import (FIRST_RUN, Clock, add_jobs, jenkins_scheduler, make_campaign,
                        make_runs, statuses, write_catalogue)

R = FIRST_RUN


def run(number: int, closed: bool = True, sequence: str = "GLOBAL-RUN",
        start: str = "2022-07-17T06:00:00") -> Run:
    return Run.from_attrs({"run_number": number, "fill_number": 8000, "era": "Run2022C",
                           "sequence": sequence, "start_time": start,
                           "end_time": "2022-07-17T07:00:00" if closed else None})


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """Write the run registry (a catalogue file that ECAL_RUN_REGISTRY names)."""
    path = tmp_path / "runs.csv"
    monkeypatch.setenv("ECAL_RUN_REGISTRY", str(path))
    return lambda runs: write_catalogue(path, runs)


def test_a_run_that_closes_after_a_later_one_is_still_fetched(client, db, jenkins, registry):
    clock = Clock()
    ctrl = make_campaign(client, "p", [Workflow("a", "x")], [run(R)], kind="prompt")
    add_jobs(jenkins, db, "p", ["a"])
    # R+1 is a long local run, R+3 a MiniDAQ run: both still open when R+2 and R+4 close
    registry([run(R), run(R + 1, closed=False), run(R + 2), run(R + 3, False, "MINIDAQ"),
              run(R + 4)])
    assert jenkins_scheduler(client, clock).cycle().campaigns[0].fetched == 2
    assert sorted(statuses(ctrl, "a")) == [R, R + 2, R + 4]
    assert ctrl.fetch_cursor() == (R, [R + 1, R + 3])
    clock.advance(600)
    registry([run(R), run(R + 1), run(R + 2), run(R + 3, True, "MINIDAQ"), run(R + 4),
              run(R + 5, closed=False)])
    report = jenkins_scheduler(client, clock).cycle()
    assert report.campaigns[0].fetched == 1                   # the MiniDAQ run matches nothing
    assert sorted(statuses(ctrl, "a")) == [R, R + 1, R + 2, R + 4]
    assert ctrl.fetch_cursor() == (R + 4, [R + 5])
    clock.advance(600)
    assert jenkins_scheduler(client, clock).cycle().campaigns[0].fetched == 0


def test_a_run_left_open_for_days_does_not_hold_fetching_back(client, db, jenkins, registry):
    clock = Clock()
    ctrl = make_campaign(client, "p", [Workflow("a", "x")], [run(R)], kind="prompt")
    add_jobs(jenkins, db, "p", ["a"])
    registry([run(R), run(R + 1, closed=False), run(R + 2, start="2022-07-30T06:00:00")])
    report = jenkins_scheduler(client, clock).cycle().campaigns[0]
    assert report.fetched == 1
    assert report.warnings == ["run 355101 is still open while runs started 7 days after it "
                               "have closed: not fetched"]
    assert ctrl.fetch_cursor() == (R + 2, [])


def test_a_prompt_campaign_never_reads_the_bundled_catalogue_unless_told(
        client, db, capsys, monkeypatch, influxd):
    make_campaign(client, "p", [Workflow("a", "x")], make_runs(1), kind="prompt")
    before = dump(influxd, db)
    assert automation(["--db", db, "schedule", "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "no run registry chosen: set ECAL_RUN_REGISTRY" in err
    assert "'bundled'" in err and len(err.strip().splitlines()) == 1
    assert "dry run at 20" in out and "unknown (fetching failed" in out
    assert dump(influxd, db) == before
    monkeypatch.setenv("ECAL_RUN_REGISTRY", "bundled")
    assert automation(["--db", db, "schedule", "--dry-run"]) == 0
    assert "new run(s) in the registry would be fetched" in capsys.readouterr().out


def test_create_prompt_says_how_the_first_run_is_set_and_start_run_sets_it(
        client, db, capsys, registry):
    registry([run(R + i, sequence="GLOBAL-RUN" if i % 2 == 0 else "LOCAL") for i in range(6)])
    assert runctrl(["--db", db, "create", "-c", "p1", "--kind", "prompt"]) == 0
    assert "inject it (inject --runs R), or create the campaign with --start-run R" in \
        capsys.readouterr().out
    assert runctrl(["--db", db, "create", "-c", "p2", "--kind", "prompt", "--start-run",
                    str(R + 2)]) == 0
    assert f"fetches its runs from {R + 2} on" in capsys.readouterr().out
    RunCtrl(client, "p2").update_rtype("all", add=["a"],
                                       definitions={"a": Workflow("a", "x").to_json()})
    report = Scheduler(client, dry_run=True).cycle("p2")
    # R+2 and R+4 are global; R+3 and R+5 are local runs, matching no run type
    assert report.campaigns[0].fetched == 2


def test_the_dry_run_counts_only_the_runs_a_run_type_takes(client, db, capsys, registry):
    make_campaign(client, "p", [Workflow("a", "x")], [run(R)], kind="prompt")
    registry([run(R), run(R + 1, sequence="LOCAL"), run(R + 2), run(R + 3, sequence="MINIDAQ")])
    assert automation(["--db", db, "schedule", "--dry-run"]) == 0
    assert "1 new run(s) in the registry would be fetched" in capsys.readouterr().out


def test_oms_failing_the_dry_run_still_plans_and_says_when(client, db, capsys, monkeypatch):
    make_campaign(client, "p", [Workflow("a", "x")], make_runs(2), kind="prompt")
    for key, value in {"ECAL_RUN_REGISTRY": "oms", "ECAL_OMS_CLIENT_ID": "ecal-client",
                       "ECAL_OMS_CLIENT_SECRET": "oms-Secret-x9",
                       "ECAL_OMS_URL": "http://127.0.0.1:9/agg/api/v1",
                       "ECAL_OMS_TOKEN_URL": "http://127.0.0.1:9/token"}.items():
        monkeypatch.setenv(key, value)
    assert automation(["--db", db, "schedule", "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "dry run at :" not in out and "dry run at 20" in out
    assert "would be fetched" not in out and "unknown (fetching failed" in out
    assert "would trigger a run(s) 355100" in out            # the runs already there
    assert "cannot reach CERN SSO" in err and "oms-Secret-x9" not in out + err
