"""What an operator expects besides scheduling (issue 11): inject --dry-run and its guard,
pause/resume, cancel, runs --json details and history, against the real influxd."""

import json
import os
from pathlib import Path

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
    # the history of a run says who paused and resumed its tasks, and when
    assert main(["--db", db, "history", "-c", "c1", "--run", str(R), "--json"]) == 0
    changes = [(e["event"], e["removed"], e["added"], e["user"])
               for e in json.loads(capsys.readouterr().out)["history"] if e["what"] == "config"]
    assert changes == [("update", [], ["a", "b"], "writer"), ("pause", ["a", "b"], [], "writer"),
                       ("resume", [], ["a", "b"], "writer")]


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


def _in_flight_campaign(client, db, jenkins, clock):
    """Campaign c1: tasks a and b over three runs, every build queued in Jenkins; the
    first build of a started."""
    from scheduling import add_jobs, jenkins_scheduler
    ctrl = make_campaign(client, "c1", [Workflow("a", "x", max_retries=2), Workflow("b", "y")],
                         make_runs(3))
    jobs = add_jobs(jenkins, db, "c1", ["a", "b"])
    jenkins_scheduler(client, clock).cycle()
    first = jenkins.triggered(jobs["a"])[0]
    number = jenkins.start(first.id)
    return ctrl, jobs, number


def test_cancel_stops_running_builds_and_dequeues_waiting_ones_in_jenkins(
        client, db, jenkins, capsys):
    from ecaljenkins.cli.runctrl import main
    from scheduling import Clock, jenkins_scheduler, rows
    clock = Clock()
    ctrl, jobs, number = _in_flight_campaign(client, db, jenkins, clock)
    assert main(["--db", db, "cancel", "-c", "c1", "--task", "a"]) == 0
    out = capsys.readouterr().out
    assert "3 build(s) cancelled (2 dequeued, 1 stopped); 3 (run, task) set to failed" in out
    assert jenkins.builds[(jobs["a"], number)].result == "ABORTED"
    assert [item.cancelled for item in jenkins.triggered(jobs["a"])] == [False, True, True]
    after = rows(ctrl, "a")
    assert {r["status"] for r in after.values()} == {"failed"}
    assert {r["reason"] for r in after.values()} == {"cancelled by writer"}
    assert {r["attempt"] for r in after.values()} == {3}      # out of retries: not rebuilt
    assert {r["status"] for r in rows(ctrl, "b").values()} == {"queued"}   # other task
    clock.advance(3600)
    report = jenkins_scheduler(client, clock).cycle()
    assert [t.build.task for t in report.campaigns[0].triggered] == []
    history = [e for e in json.loads(_history(main, db, capsys))["history"]
               if e["what"] == "build"]
    assert [(e["task"], e["status"], e["reason"]) for e in history] == [
        ("a", "failed", "cancelled by writer")]


def _history(main, db, capsys):
    assert main(["--db", db, "history", "-c", "c1", "--run", str(R), "--json"]) == 0
    return capsys.readouterr().out


def test_cancel_to_new_gives_the_attempt_back_and_the_next_cycle_builds_again(
        client, db, jenkins, capsys):
    from ecaljenkins.cli.runctrl import main
    from scheduling import Clock, jenkins_scheduler, rows
    clock = Clock()
    ctrl, jobs, _ = _in_flight_campaign(client, db, jenkins, clock)
    assert main(["--db", db, "cancel", "-c", "c1", "--to", "new"]) == 0
    assert "6 build(s) cancelled" in capsys.readouterr().out
    for task in "ab":
        assert {(r["status"], r["attempt"], r["queue_id"]) for r in rows(ctrl, task).values()} \
            == {("new", 0, 0)}
    report = jenkins_scheduler(client, clock).cycle()
    assert len(report.campaigns[0].triggered) == 6
    assert main(["--db", db, "cancel", "-c", "c1", "--task", "b", "--to", "new"]) == 0
    assert "3 build(s) cancelled (3 dequeued)" in capsys.readouterr().out


def test_cancel_leaves_the_rows_when_jenkins_fails(client, db, jenkins, capsys):
    from ecaljenkins.cli.runctrl import main
    from scheduling import Clock, rows
    ctrl, jobs, _ = _in_flight_campaign(client, db, jenkins, Clock())
    before = rows(ctrl, "a")
    jenkins.fail("cancelItem", 500, times=None)
    jenkins.fail("stop", 500, times=None)
    assert main(["--db", db, "cancel", "-c", "c1", "--task", "a"]) == 1
    captured = capsys.readouterr()
    assert "0 build(s) cancelled; 0 (run, task) set to failed" in captured.out
    assert captured.err.count("left as they are") == 3
    assert rows(ctrl, "a") == before


def test_cancel_kills_a_local_build_and_its_scheduler_goes_on(client, db, env, tmp_path):
    import subprocess
    import sys
    import time
    from scheduling import rows
    from fixtures.leaks import record_output, run_recorded
    # a sleep of its own (120.<pid>), told apart from any other test's on this machine
    seconds = f"120.{os.getpid()}"
    ctrl = make_campaign(client, "c1", [Workflow("a", f"touch {tmp_path}/started; "
                                                      f"sleep {seconds}")], make_runs(1))
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "ecaljenkins.cli.automation", "schedule", "--executor", "local",
         "--log-dir", str(tmp_path / "logs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rows(ctrl, "a")[R]["status"] == "running"
        res = run_recorded([sys.executable, "-m", "ecaljenkins.cli.runctrl", "cancel", "-c", "c1",
                            "--executor", "local"], env=None, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "1 build(s) cancelled (1 stopped); 1 (run, task) set to failed" in res.stdout
        out, err = scheduler.communicate(timeout=30)   # its build is gone: the cycle ends
        record_output(out, err)
    finally:
        scheduler.kill()
        record_output(*scheduler.communicate())
    row = rows(ctrl, "a")[R]
    assert (row["status"], row["reason"]) == ("failed", "cancelled by writer")
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                if _read(p) == f"sleep\x00{seconds}\x00".encode()]


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""
