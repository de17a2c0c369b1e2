"""The job side: ``jobctrl`` reports, the ``run`` build wrapper, and a Handler subclass."""

import argparse
import json
import sys
import textwrap

import pytest

from ecaljenkins.cli import automation
from ecaljenkins.localinflux import free_port
from ecaljenkins.workflows import Workflow

from fixtures.influx import dump
from fixtures.leaks import run_recorded
from scheduling import FIRST_RUN, make_campaign, make_runs, rows

R = FIRST_RUN


@pytest.fixture
def camp(client):
    return make_campaign(client, "c1", [Workflow("reco", "r"),
                                        Workflow("calib", "c", depends_on=("reco",),
                                                 group_by="fill")], make_runs(3))


def events(client, task=None):
    where = "campaign = 'c1'" + (f" AND task = '{task}'" if task else "")
    return client.select(f"SELECT * FROM job WHERE {where} GROUP BY task")


def test_jobctrl_rolls_reports_up_into_the_run(run_cli, db, client, camp):
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "jobctrl", "--task", "reco",
                  "--run", str(R), "--id", "17", "--running")
    assert res.code == 0, res
    assert (rows(camp, "reco")[R]["status"], rows(camp, "reco")[R]["build"]) == ("running", 17)
    res = run_cli("ecalautomation.py", "jobctrl", "--db", db, "--campaign", "c1", "--task",
                  "reco", "--run", str(R), "--done", "--fields", "output:/eos/ecal/r.root",
                  "events:1234", "note:a:b c")
    assert res.code == 0, res
    assert "reco: run(s) 355100 done" in res.out
    row = camp.task_rows(task="reco", fields="status, build, output, events, note")
    row = {r["time"]: r for r in row}[R]
    assert (row["status"], row["build"], row["output"], row["events"], row["note"]) == \
        ("done", 17, "/eos/ecal/r.root", "1234", "a:b c")
    history = events(client, "reco")
    assert [(e["run"], e["status"], e.get("build")) for e in history] == \
        [(R, "running", 17), (R, "done", None)]
    assert history[1]["output"] == "/eos/ecal/r.root"
    assert camp.get_output(task="reco") == {R: "/eos/ecal/r.root"}


BAD_REPORTS = [
    (["--run", str(R), "--done", "--fields", "bad-key:x"], "invalid field name 'bad-key'"),
    (["--run", str(R), "--done", "--fields", "status:x"], "field 'status' is reserved"),
    (["--run", str(R), "--done", "--fields", "novalue"], "expected key:value"),
    (["--run", str(R), "--done", "--fields", "big:" + "x" * 4097], "longer than 4096 bytes"),
    (["--run", "abc", "--done"], "invalid run number 'abc'"),
    (["--run", str(R)], "one of the arguments --idle --running --done --failed is required"),
    (["--run", str(R), "--done", "--id", "x"], "invalid int value"),
]


@pytest.mark.parametrize("args, message", BAD_REPORTS)
def test_jobctrl_refuses_bad_input_without_writing(run_cli, db, influxd, camp, args, message):
    before = dump(influxd, db)
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "jobctrl", "--task", "reco",
                  *args)
    assert res.code == 2 and message in res.err and res.err.count("\n") == 1, res
    assert dump(influxd, db) == before


SHOW_ENV = 'echo "run=${RUN_NUMBER-unset} runs=$RUNS c=$CAMPAIGN db=$DB t=$TASK"; echo oops >&2'


def test_run_wrapper_reports_done_with_the_log(run_cli, db, client, camp, tmp_path):
    log = tmp_path / "logs" / "reco.log"
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco", "--run",
                  str(R), "--log", str(log), "--", "bash", "-c", SHOW_ENV,
                  extra_env={"BUILD_NUMBER": "5", "BUILD_URL": "http://jenkins/job/x/5/"})
    assert res.code == 0, res
    expected = f"run={R} runs={R} c=c1 db={db} t=reco\noops\n"
    assert res.out == expected and log.read_text() == expected
    row = rows(camp, "reco")[R]
    assert (row["status"], row["build"], row["url"], row["log"]) == \
        ("done", 5, "http://jenkins/job/x/5/", str(log))
    assert [e["status"] for e in events(client, "reco")] == ["running", "done"]
    assert events(client, "reco")[1]["exit_code"] == 0


def test_run_wrapper_fails_with_the_command_status(run_cli, db, client, camp, tmp_path):
    res = run_cli("ecalautomation.py", "run", "--db", db, "-c", "c1", "--task", "calib",
                  "--runs", f"{R},{R + 1}", "--log", str(tmp_path / "c.log"), "--",
                  "bash", "-c", SHOW_ENV + "; exit 3")
    assert res.code == 3, res
    assert res.out.startswith(f"run=unset runs={R},{R + 1} ")
    got = rows(camp, "calib")
    for run in (R, R + 1):
        assert (got[run]["status"], got[run]["reason"]) == ("failed", "exit code 3")
    assert got[R + 2]["status"] == "new"
    assert [e["exit_code"] for e in events(client, "calib") if e["status"] == "failed"] == [3, 3]


def test_run_wrapper_command_not_found(run_cli, db, camp, tmp_path):
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco", "--run",
                  str(R), "--log", str(tmp_path / "x.log"), "--", "no-such-command-xyz")
    assert res.code == 127 and "cannot start 'no-such-command-xyz'" in res.out
    assert rows(camp, "reco")[R]["reason"] == "exit code 127"


def test_run_wrapper_default_log_location(run_cli, db, camp, tmp_path):
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco", "--run",
                  str(R), "--", "true", extra_env={"ECAL_LOG_DIR": str(tmp_path),
                                                   "BUILD_NUMBER": "9"})
    assert res.code == 0, res
    log = tmp_path / db / "c1" / "reco" / f"{R}-9.log"
    assert log.exists() and rows(camp, "reco")[R]["log"] == str(log)


def test_run_wrapper_keeps_the_command_status_when_influxdb_is_down(run_cli, db, tmp_path):
    down = {"ECAL_INFLUXDB_URL": f"http://127.0.0.1:{free_port()}", "ECAL_REPORT_RETRY": "0.3"}
    for command, code in (("echo fine", 0), ("exit 4", 4)):
        res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco",
                      "--run", str(R), "--log", str(tmp_path / "x.log"), "--", "bash", "-c",
                      command, extra_env=down)
        assert res.code == code, res
        assert "could not report reco running" in res.err
        assert "the scheduler will take the result from Jenkins or the local executor" \
            in res.err


def test_run_wrapper_needs_a_command(run_cli, db, camp):
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco",
                  "--run", str(R), "--")
    assert res.code == 2 and "no command to run" in res.err


HANDLERS = textwrap.dedent('''
    import json, sys
    from ecaljenkins import Handler

    class Reco(Handler):
        def process(self, run):
            if run == {fail}:
                raise RuntimeError(f"no data for run {{run}}\\nsecond line")
            path = f"{out}/reco-{{run}}.root"
            open(path, "w").write("reco")
            self.register_output(run, path)

    class Calib(Handler):
        def add_arguments(self, parser):
            parser.add_argument("--tag", default="v1")

        def process_group(self, runs):
            inputs = {{run: self.dependency_outputs(run) for run in runs}}
            path = f"{out}/calib-{{self.args.tag}}.json"
            json.dump({{"runs": runs, "inputs": inputs}}, open(path, "w"))
            for run in runs:
                self.register_output(run, path)

    which = sys.argv.pop(1)
    sys.exit({{"reco": Reco("reco"), "calib": Calib("calib", deps_tasks=["reco"])}}[which].run())
''')


def test_handler_subclass_end_to_end(run_cli, db, client, camp, tmp_path, env):
    import os
    script = tmp_path / "workflow.py"
    script.write_text(HANDLERS.format(fail=R + 2, out=tmp_path))

    def python(*args, **extra):
        return run_recorded([sys.executable, str(script), *args],
                            env=dict(os.environ, **extra))

    # standalone: the handler reports each run itself
    proc = python("reco", "--db", db, "-c", "c1", "--runs", f"{R},{R + 1},{R + 2}")
    assert proc.returncode == 1 and "RuntimeError: no data for run" in proc.stderr
    got = rows(camp, "reco")
    assert [got[r]["status"] for r in (R, R + 1, R + 2)] == ["done", "done", "failed"]
    assert got[R + 2]["reason"] == f"RuntimeError: no data for run {R + 2}"
    assert got[R]["output"] == f"{tmp_path}/reco-{R}.root"
    assert [(e["run"], e["status"]) for e in events(client, "reco")] == [
        (R, "running"), (R, "done"), (R + 1, "running"), (R + 1, "done"),
        (R + 2, "running"), (R + 2, "failed")]
    assert camp.get_output(task="reco") == {R: f"{tmp_path}/reco-{R}.root",
                                           R + 1: f"{tmp_path}/reco-{R + 1}.root"}
    assert camp.get_output(era="Run2022C", task="reco", runs=[R + 1, R + 2]) == \
        {R + 1: f"{tmp_path}/reco-{R + 1}.root"}
    assert camp.get_output(era="Run2023A", task="reco") == {}

    # under the wrapper (as a Jenkins job runs it): arguments from the environment, the
    # group at once, and the wrapper alone reports the status
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "calib",
                  "--runs", f"{R},{R + 1}", "--log", str(tmp_path / "calib.log"), "--",
                  sys.executable, str(script), "calib", "--tag", "v7")
    assert res.code == 0, res
    result = json.loads((tmp_path / "calib-v7.json").read_text())
    assert result == {"runs": [R, R + 1], "inputs": {
        str(R): {"reco": f"{tmp_path}/reco-{R}.root"},
        str(R + 1): {"reco": f"{tmp_path}/reco-{R + 1}.root"}}}
    got = rows(camp, "calib")
    assert [(got[r]["status"], got[r]["output"]) for r in (R, R + 1)] == \
        [("done", f"{tmp_path}/calib-v7.json")] * 2
    assert [e["status"] for e in events(client, "calib")] == ["running"] * 2 + ["done"] * 2


def test_handler_without_a_run_says_so(db, camp, tmp_path, env):
    import os
    script = tmp_path / "workflow.py"
    script.write_text(HANDLERS.format(fail=0, out=tmp_path))
    clean = {k: v for k, v in os.environ.items() if k not in ("RUNS", "RUN_NUMBER")}
    proc = run_recorded([sys.executable, str(script), "reco", "--db", db, "-c", "c1"],
                        env=clean)
    assert proc.returncode == 2 and "no run to process" in proc.stderr


def test_handler_with_influxdb_down_still_works_and_fails_only_what_needs_it(db, camp,
                                                                           tmp_path, env):
    """The one policy of run_build: unreported is a warning, the work's result decides."""
    import os
    script = tmp_path / "workflow.py"
    script.write_text(HANDLERS.format(fail=0, out=tmp_path))
    down = dict(os.environ, ECAL_INFLUXDB_URL=f"http://127.0.0.1:{free_port()}",
                ECAL_REPORT_RETRY="0.2")
    proc = run_recorded([sys.executable, str(script), "reco", "--db", db, "-c", "c1",
                         "--run", str(R)], env=down)
    unreachable = f"cannot reach InfluxDB at {down['ECAL_INFLUXDB_URL']} (ConnectionError)"
    later = "(the scheduler will take the result from Jenkins or the local executor)"
    # the run was processed, but registering its output needs InfluxDB: that run failed
    assert (tmp_path / f"reco-{R}.root").exists()
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"reco: warning: could not report reco running for run(s) {R}: {unreachable} {later}",
        f"reco: error: {unreachable}",
        f"reco: warning: could not report reco failed for run(s) {R}: {unreachable} {later}"]


def test_handler_refuses_a_run_without_the_task_before_working(db, camp, tmp_path, env):
    script = tmp_path / "workflow.py"
    script.write_text(HANDLERS.format(fail=0, out=tmp_path))
    proc = run_recorded([sys.executable, str(script), "reco", "--db", db, "-c", "c1",
                         "--run", "999999"])
    assert proc.returncode == 2, proc
    assert proc.stderr == ("reco: error: run 999999 does not have task 'reco' in campaign "
                           f"'c1' (database '{db}')\n")
    assert not (tmp_path / "reco-999999.root").exists()


#: what the build side must never import: the scheduler side's heavy libraries
SCHEDULER_SIDE = ("jenkins_jobs", "jinja2", "influxdb_client", "jenkins",
                  "ecaljenkins.scheduler", "ecaljenkins.executors", "ecaljenkins.jobs")
IMPORTED = textwrap.dedent('''
    import json, sys
    from ecaljenkins.cli.automation import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:   # --help
        code = exit.code
    print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)
''')


def _imported(*argv) -> tuple[int, set[str]]:
    """Exit status and every module a command line of ecalautomation.py imported."""
    proc = run_recorded([sys.executable, "-c", IMPORTED, *argv])
    code, modules = json.loads(proc.stderr.strip().splitlines()[-1])
    return code, set(modules)


def _of(modules: set[str], roots) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


def test_build_side_commands_import_nothing_of_the_scheduler_side(db, camp, tmp_path, env):
    """``jobctrl`` and ``run`` start for every build: the start-up test of issue 10 (the
    times are in ``make bench``; here, what is imported)."""
    for argv in (["jobctrl", "--help"], ["run", "--help"]):
        code, modules = _imported(*argv)
        # --help needs not even the InfluxDB client (requests)
        assert (code, _of(modules, SCHEDULER_SIDE + ("requests",))) == (0, []), argv
    code, modules = _imported("--db", db, "-c", "c1", "jobctrl", "--task", "reco", "--run",
                              str(R), "--running")
    assert (code, _of(modules, SCHEDULER_SIDE)) == (0, [])
    assert "requests" in modules   # it did report: the check sees a real command's imports
    code, modules = _imported("--db", db, "-c", "c1", "run", "--task", "reco", "--run", str(R),
                              "--log", str(tmp_path / "x.log"), "--", "true")
    assert (code, _of(modules, SCHEDULER_SIDE)) == (0, [])
    assert rows(camp, "reco")[R]["status"] == "done"
    code, modules = _imported("schedule", "--help")
    assert code == 0 and _of(modules, ("ecaljenkins.scheduler",))


class Registered:
    """Stands for argparse's sub-parsers: records the names a verb group registers."""

    def __init__(self):
        self.names = []
        self._sub = argparse.ArgumentParser().add_subparsers()

    def add_parser(self, name, **kwargs):
        self.names.append(name)
        return self._sub.add_parser(name, **kwargs)


def test_each_verb_group_registers_the_commands_automation_lists():
    """cli/automation.py imports a group by the COMMANDS table: it must say what they do."""
    for command, name in automation.COMMANDS.items():
        (group,) = automation.groups(command)
        group.register(registered := Registered())
        assert group.__name__ == f"ecaljenkins.cli.{name}"
        assert registered.names == [c for c, g in automation.COMMANDS.items() if g == name]
    assert automation.command_of(["--db", "d", "-c", "run", "--debug", "jobctrl", "-x"]) == \
        "jobctrl"
    assert automation.command_of(["--camp", "schedule", "--db=x", "-cY", "run"]) == "run"
    assert automation.command_of(["--debug"]) is None
    assert [g.__name__ for g in automation.GROUPS] == ["ecaljenkins.cli.schedule",
                                                       "ecaljenkins.cli.jobctrl"]
