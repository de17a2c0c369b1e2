"""What an operator expects besides scheduling (issue 11): inject --dry-run and its guard,
pause/resume, cancel, runs --json details and history, against the real influxd."""

import json

from ecaljenkins.campaign import CONFIRM_ABOVE, RunCtrl
from ecaljenkins.workflows import Workflow

from fixtures.influx import dump
from scheduling import make_campaign, make_runs, write_catalogue

R = 355100


def test_inject_dry_run_writes_nothing_and_says_what_it_would_do(run_cli, client, influxd, db):
    make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], [])
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", "355100,355200",
                  "--dry-run")
    assert res.code == 0, res
    assert dump(influxd, db) == before
    assert "run(s) would be injected" in res.out and "dry run: nothing written" in res.out


def test_a_very_large_injection_needs_yes(run_cli, client, influxd, db, tmp_path):
    runs = make_runs(CONFIRM_ABOVE + 1, first=400000)
    write_catalogue(tmp_path / "runs.csv", runs)
    extra = {"ECAL_RUN_REGISTRY": str(tmp_path / "runs.csv")}
    ctrl = make_campaign(client, "c1", [Workflow("a", "x")], [])
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", "400000,410000",
                  extra_env=extra)
    assert res.code == 2, res
    assert f"{CONFIRM_ABOVE + 1} runs would be injected" in res.err and "--yes" in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert dump(influxd, db) == before
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", "400000,410000", "--yes",
                  extra_env=extra)
    assert res.code == 0, res
    assert len(ctrl.task_rows(task="a")) == CONFIRM_ABOVE + 1


def test_runs_json_and_history_show_attempts_reasons_builds_and_who_changed_what(
        run_cli, client, db):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], make_runs(2))
    ctrl.set_status("a", [R], "running", attempt=1, build=7, url="http://j/job/a/7/")
    ctrl.set_status("a", [R], "failed", reason="exit code 3", log="/logs/a/1.log")
    assert run_cli("ecalautomation.py", "-c", "c1", "jobctrl", "--task", "b", "--run", str(R),
                   "--done", "--fields", "output:/eos/b.root").code == 0
    listed = json.loads(run_cli("ecalrunctrl.py", "runs", "-c", "c1", "--json").out)
    first = listed[0]
    assert first["tasks"] == {"a": "failed", "b": "done"}
    assert first["details"]["a"]["attempt"] == 1 and first["details"]["a"]["build"] == 7
    assert first["details"]["a"]["reason"] == "exit code 3"
    assert first["details"]["a"]["url"] == "http://j/job/a/7/"
    assert first["details"]["b"]["output"] == "/eos/b.root"

    res = run_cli("ecalrunctrl.py", "history", "-c", "c1", "--run", str(R), "--json")
    assert res.code == 0, res
    doc = json.loads(res.out)
    assert doc["run"] == R and doc["rtypes"] == ["all"]
    assert doc["tasks"]["a"]["reason"] == "exit code 3"
    builds = [e for e in doc["history"] if e["what"] == "build"]
    assert [(e["task"], e["status"], e.get("output")) for e in builds] == [("b", "done",
                                                                            "/eos/b.root")]
    (change,) = [e for e in doc["history"] if e["what"] == "config"]
    assert change["added"] == ["a", "b"] and change["user"] == "writer"
    times = [e["time"] for e in doc["history"]]
    assert times == sorted(times)
    text = run_cli("ecalrunctrl.py", "history", "-c", "c1", "--run", str(R), "--task", "a")
    assert text.code == 0, text
    assert "exit code 3" in text.out and "added a by writer" in text.out
    assert "b done" not in text.out
    missing = run_cli("ecalrunctrl.py", "history", "-c", "c1", "--run", "355200")
    assert missing.code == 2 and "run 355200 is not in campaign 'c1'" in missing.err


def test_pause_and_resume_remember_which_run_type_had_which_task(client, db, jenkins, influxd,
                                                                  capsys):
    from ecaljenkins.cli.runctrl import main
    from ecaljenkins.names import job_name
    from ecaljenkins.scheduler import Scheduler
    ctrl = make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], make_runs(2))
    ctrl.create_rtype("beam", ["stable_beams == true"], ["c"],
                      {"c": Workflow("c", "z").to_json()})
    assert main(["--db", db, "jobs", "-c", "c1", "--update"]) == 0
    names = {t: job_name(db, "c1", t) for t in "abc"}
    assert not any(jenkins.jobs[n].disabled for n in names.values())
    capsys.readouterr()

    assert main(["--db", db, "pause", "-c", "c1"]) == 0
    assert "run type 'all': a,b; run type 'beam': c" in capsys.readouterr().out
    camp = ctrl.info()
    assert not camp.active and all(not rt.tasks for rt in camp.rtypes.values())
    assert all(jenkins.jobs[n].disabled for n in names.values())
    assert Scheduler(client, dry_run=True).cycle().inactive == ["c1"]
    before = dump(influxd, db)
    assert main(["--db", db, "pause", "-c", "c1"]) == 2
    assert "has no active task: nothing to pause" in capsys.readouterr().err
    assert dump(influxd, db) == before

    assert main(["--db", db, "resume", "-c", "c1"]) == 0
    camp = ctrl.info()
    assert camp.rtypes["all"].tasks == ("a", "b") and camp.rtypes["beam"].tasks == ("c",)
    assert not any(jenkins.jobs[n].disabled for n in names.values())
    before = dump(influxd, db)
    assert main(["--db", db, "resume", "-c", "c1"]) == 2
    assert "is not paused: nothing to resume" in capsys.readouterr().err
    assert dump(influxd, db) == before


def test_the_seeds_way_of_deactivating_still_works_beside_pause(run_cli, client):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], make_runs(1))
    assert run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--remove", "a,b",
                   "--type", "all").code == 0
    assert not ctrl.info().active
    res = run_cli("ecalrunctrl.py", "resume", "-c", "c1")
    assert res.code == 2 and "is not paused" in res.err
    assert run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--add", "a",
                   "--type", "all").code == 0
    assert ctrl.info().rtypes["all"].tasks == ("a",)
    # paused while a task was added meanwhile: both are active after resume
    assert run_cli("ecalrunctrl.py", "pause", "-c", "c1").code == 0
    assert run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--add", "b").code == 0
    assert run_cli("ecalrunctrl.py", "resume", "-c", "c1").code == 0
    assert ctrl.info().rtypes["all"].tasks == ("b", "a")
