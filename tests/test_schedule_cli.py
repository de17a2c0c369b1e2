"""The scheduler as users run it: dry run, reprocess, and the local executor end to end."""

import time

import pytest

from ecaljenkins.workflows import Workflow

from fixtures.influx import dump
from scheduling import FIRST_RUN, make_campaign, make_runs, rows, statuses

R = FIRST_RUN


@pytest.fixture
def planned(client):
    """reco (max 2 in flight): R in flight, R+1 backing off, R+2..R+4 new; calib after it;
    'old' removed from the run type while its runs kept it."""
    ctrl = make_campaign(client, "c1", [
        Workflow("reco", "r", max_in_flight=2, retry_delay=3600),
        Workflow("calib", "c", depends_on=("reco",)), Workflow("old", "o")], make_runs(5))
    ctrl.set_status("reco", [R], "queued", trigger="t0", queue_id=7)
    ctrl.set_status("reco", [R + 1], "failed", attempt=1)
    ctrl.update_rtype("all", remove=["old"])
    return ctrl


def test_dry_run_explains_the_plan_and_writes_nothing(run_cli, db, influxd, planned, request):
    before = dump(influxd, db)
    request.getfixturevalue("reader_env")            # works with a read-only user
    res = run_cli("ecalautomation.py", "schedule", "--db", db, "--dry-run")
    assert res.code == 0, res
    out = res.out.splitlines()
    assert out[0].startswith("campaign 'c1' (rereco), dry run at ")
    table = {line.split()[0]: line.split(None, 9) for line in out[3:6]}
    assert out[1].split() == ["task", "group_by", "new", "queued", "running", "done", "failed",
                              "to", "trigger", "waiting", "why", "waiting"]
    assert table["reco"][1:9] == ["run", "3", "1", "0", "0", "1", "1", "3"]
    assert table["reco"][9] == "back-off: 1, cap reached: 2"
    assert table["calib"][9] == "dependency not done: 5"
    assert table["old"][9] == "inactive task: 5"
    assert "  would trigger reco run(s) 355102 (attempt 1)" in out
    assert "  waiting reco run 355103: cap reached (max_in_flight 2, 1 already in flight)" in out
    assert any(line.startswith("  waiting reco run 355101: back-off until 20") for line in out)
    assert "  waiting calib run 355100: dependency not done: reco is queued" in out
    assert "  waiting old run 355100: inactive task" in out
    assert dump(influxd, db) == before


def test_dry_run_details_are_truncated_unless_verbose(run_cli, db, client):
    make_campaign(client, "big", [Workflow("reco", "r"), Workflow("calib", "c",
                                                                  depends_on=("reco",))],
                  make_runs(30))
    short = run_cli("ecalautomation.py", "--db", db, "schedule", "-c", "big", "--dry-run")
    lines = short.out.splitlines()
    assert sum(line.startswith("  would trigger reco") for line in lines) == 10
    assert "  ... and 20 more reco build(s) to trigger (--verbose lists all)" in lines
    assert "  ... and 20 more waiting calib run(s) (--verbose lists all)" in lines
    full = run_cli("ecalautomation.py", "--db", db, "schedule", "-c", "big", "--dry-run", "-v")
    assert sum(line.startswith("  would trigger reco") for line in full.out.splitlines()) == 30
    assert "more" not in full.out


def test_schedule_bad_input(run_cli, db, client):
    make_campaign(client, "c1", [Workflow("reco", "r")], make_runs(1))
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "-c", "c11", "--dry-run")
    assert res.code == 2 and "campaign 'c11' does not exist" in res.err
    assert "did you mean 'c1'" in res.err
    res = run_cli("ecalautomation.py", "--db", db, "schedule")
    assert res.code == 2 and "JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN not set" in res.err
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "--max-triggers", "-1")
    assert res.code == 2 and "invalid --max-triggers" in res.err


def test_reprocess_resets_runs(run_cli, db, client):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x")], make_runs(4))
    ctrl.set_status("a", [R, R + 3], "failed", attempt=3, reason="exit code 1")
    ctrl.set_status("a", [R + 1], "done")
    ctrl.set_status("a", [R + 2], "running", build=4)
    res = run_cli("ecalrunctrl.py", "--db", db, "reprocess", "-c", "c1", "--task", "a",
                  "--status", "failed")
    assert res.code == 0 and "2 run(s) of a reset to new" in res.out, res
    got = rows(ctrl, "a")
    assert [(got[r]["status"], got[r]["attempt"], got[r]["reason"]) for r in (R, R + 3)] == \
        [("new", 0, "")] * 2
    res = run_cli("ecalrunctrl.py", "--db", db, "reprocess", "-c", "c1", "--task", "a",
                  "--runs", f"{R + 1},{R + 2}")
    assert res.code == 0 and "1 run(s) of a reset to new; 1 in flight left alone" in res.out
    assert statuses(ctrl, "a") == {R: "new", R + 1: "new", R + 2: "running", R + 3: "new"}
    res = run_cli("ecalrunctrl.py", "--db", db, "reprocess", "-c", "c1", "--task", "a", "--all")
    assert "3 run(s) of a reset to new; 1 in flight left alone" in res.out


@pytest.mark.parametrize("args, message", [
    (["--task", "rceo", "--all"], "task 'rceo' is not in campaign 'c1' (did you mean 'reco'?)"),
    (["--task", "a", "--runs", "999"], "run 999 does not have task 'a'"),
    (["--task", "a", "--runs", "1,,2"], "invalid run number ''"),
    (["--task", "a"], "one of the arguments --runs --status --all is required"),
    (["--task", "a'; DROP", "--all"], "invalid task"),
])
def test_reprocess_bad_input(run_cli, db, client, influxd, args, message):
    make_campaign(client, "c1", [Workflow("a", "x"), Workflow("reco", "y")], make_runs(2))
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "--db", db, "reprocess", "-c", "c1", *args)
    assert res.code == 2 and message in res.err, res
    assert dump(influxd, db) == before


def test_local_executor_end_to_end(run_cli, db, client, tmp_path):
    marker = tmp_path / "failed-once"
    reco = Workflow("reco", f'echo "reco $RUN_NUMBER"\nif [ "$RUN_NUMBER" = {R + 1} ] && '
                            f'[ ! -e {marker} ]; then touch {marker}; exit 3; fi',
                    retry_delay=0)
    calib = Workflow("calib", 'echo "calib $RUNS"', depends_on=("reco",), group_by="fill")
    ctrl = make_campaign(client, "c1", [reco, calib], make_runs(3))     # one fill
    logs = tmp_path / "logs"

    def cycle():
        res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                      "--jobs", "2", "--log-dir", str(logs))
        assert res.code == 0, res
        return res

    first = cycle()
    assert "campaign 'c1': 3 build(s) triggered (reco: 3)" in first.out
    got = rows(ctrl, "reco")
    assert [(got[r]["status"], got[r]["attempt"]) for r in (R, R + 1, R + 2)] == \
        [("done", 1), ("failed", 1), ("done", 1)]
    failed_log = logs / db / "c1" / "reco" / f"{R + 1}-1.log"
    assert got[R + 1]["log"] == str(failed_log) and got[R + 1]["reason"] == "exit code 3"
    assert failed_log.read_text() == f"reco {R + 1}\n"
    assert set(statuses(ctrl, "calib").values()) == {"new"}
    cycle()                                               # the retry succeeds
    got = rows(ctrl, "reco")
    assert (got[R + 1]["status"], got[R + 1]["attempt"]) == ("done", 2)
    assert (logs / db / "c1" / "reco" / f"{R + 1}-2.log").read_text() == f"reco {R + 1}\n"
    third = cycle()                                       # now the fill's calibration
    assert "1 build(s) triggered (calib: 1)" in third.out
    assert set(statuses(ctrl, "calib").values()) == {"done"}
    assert (logs / db / "c1" / "calib" / f"{R}-1.log").read_text() == \
        f"calib {R},{R + 1},{R + 2}\n"
    assert "0 build(s) triggered" in cycle().out


def test_local_executor_logs_go_to_ecal_log_dir_by_default(run_cli, db, client, tmp_path):
    ctrl = make_campaign(client, "c1", [Workflow("reco", 'echo "reco $RUN_NUMBER"')],
                         make_runs(1))
    env = {"ECAL_LOG_DIR": str(tmp_path)}
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                  "-c", "c11", extra_env=env)
    assert res.code == 2 and "campaign 'c11' does not exist" in res.err, res
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                  "-c", "c1", extra_env=env)
    assert res.code == 0, res
    assert rows(ctrl, "reco")[R]["status"] == "done"
    assert (tmp_path / db / "c1" / "reco" / f"{R}-1.log").read_text() == f"reco {R}\n"


def test_local_build_that_dies_without_reporting_is_failed(run_cli, db, client, tmp_path):
    # the command kills the wrapper (its parent) before it can report
    ctrl = make_campaign(client, "c1", [Workflow("a", "kill -9 $PPID", max_retries=0)],
                         make_runs(1))
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                  "--log-dir", str(tmp_path))
    assert res.code == 0, res
    row = rows(ctrl, "a")[R]
    assert (row["status"], row["reason"]) == \
        ("failed", "local build exited with code -9 without a report")


def test_local_build_is_killed_whole_at_its_timeout(tmp_path):
    from ecaljenkins.executors import LocalExecutor
    pid_file = tmp_path / "pid"
    # a build whose command left a grandchild behind: the whole group goes
    outcome = LocalExecutor(jobs=1)._run(
        ["bash", "-c", f"sleep 600 & echo $! > {pid_file}; wait"], timeout=3)
    assert outcome.timed_out and outcome.reason == "local build killed at its timeout"
    pid = int(pid_file.read_text())
    # SIGKILL is delivered asynchronously: give the kernel a moment to finish it
    deadline = time.monotonic() + 30
    while (state := _process_state(pid)) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state in ("gone", "Z")        # dead, or a zombie awaiting init


def _process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0]
    except FileNotFoundError:
        return "gone"
