"""Bad input to every command of both CLIs: refused in one line, nothing written.

Each case runs the command in-process (``main(argv)``, as the console scripts do)
against a campaign ``c1`` with task ``t1`` over two runs, and checks: the exit
status (2 for input, 1 for a server fault), one line on stderr naming the
problem, no traceback or internal error, and the database exactly as before.
Hostile names (quotes, backslashes, newlines, unicode, ``; DROP``, InfluxQL and
shell fragments) are refused by validation before any request is sent.
"""

import pytest

from ecaljenkins.cli import automation, runctrl
from ecaljenkins.workflows import Workflow

from ecaljenkins.registry import open_registry

from fixtures.influx import dump
from scheduling import make_campaign

R1, R2 = 355100, 355113
MAIN = {"ecalrunctrl.py": runctrl.main, "ecalautomation.py": automation.main}
BROKEN_CATALOGUE = "t2:\n  command: echo\n  retries: 3\n"   # unknown key
BROKEN_RUNS = "run_number,era\n355100,Run2022B\n"            # required columns missing
RC, AU = "ecalrunctrl.py", "ecalautomation.py"

# (script, arguments, environment changes, exit status, words of the message)
CASES = [
    # --- create -----------------------------------------------------------------------
    (RC, ["create", "-c", ""], {}, 2, "the campaign is required"),
    (RC, ["create", "-c", "back\\slash"], {}, 2, "invalid campaign"),
    (RC, ["create", "-c", "café"], {}, 2, "invalid campaign"),
    (RC, ["create", "-c", "x" * 65], {}, 2, "invalid campaign"),
    (RC, ["create", "-c", "$(rm -rf ~)"], {}, 2, "invalid campaign"),
    (RC, ["create", "-c", "c1;DROP MEASUREMENT run"], {}, 2, "invalid campaign"),
    (RC, ["create", "-c", "ok", "--description", "two\nlines"], {}, 2, "invalid description"),
    (RC, ["create", "-c", "ok", "--kind", "prompt", "--start-run", "abc"], {}, 2,
     "invalid run number 'abc'"),
    (RC, ["create", "-c", "ok", "--start-run", "355100"], {}, 2,
     "a start run is for prompt campaigns"),
    (RC, ["create", "-c", "ok", "--description", "x" * 1025], {}, 2, "invalid description"),
    (RC, ["create", "-c", "ok"], {"ECAL_INFLUXDB_DB": ""}, 2, "no database"),
    (RC, ["create", "-c", "ok"], {"ECAL_INFLUXDB_USER": "reader"}, 1, "authentication failed"),
    # --- list -------------------------------------------------------------------------
    (RC, ["--db", 'x"; DROP DATABASE y', "list"], {}, 2, "invalid database name"),
    (RC, ["--db", "no_such_database_xyz", "list"], {}, 1,
     "user writer is not authorized to read database no_such_database_xyz"),
    (RC, ["list", "--json"], {"ECAL_INFLUXDB_URL": "http://127.0.0.1:9"}, 1,
     "cannot reach InfluxDB"),
    # --- rtype-create -----------------------------------------------------------------
    (RC, ["rtype-create", "-c", "c1", "--type", 'x"y', "--filter", "run > 1"], {}, 2,
     "invalid run type"),
    (RC, ["rtype-create", "-c", "c1", "--type", "x", "--filter", "no operator"], {}, 2,
     "invalid filter"),
    (RC, ["rtype-create", "-c", "c1", "--type", "x", "--filter", "era ~ (unclosed"], {}, 2,
     "bad regular expression"),
    (RC, ["rtype-create", "-c", "c1", "--type", "x", "--filter", "era == " + "a" * 300], {}, 2,
     "invalid filter"),
    (RC, ["rtype-create", "-c", "c1", "--type", "x", "--filter", "run > 1",
          "--add", "t;rm -rf /"], {}, 2, "invalid task"),
    (RC, ["rtype-create", "-c", "nope", "--type", "x", "--filter", "run > 1"], {}, 2,
     "campaign 'nope' does not exist"),
    # --- rtype-update -----------------------------------------------------------------
    (RC, ["rtype-update", "-c", "c1", "--add", "a,,b"], {}, 2, "empty name in list"),
    (RC, ["rtype-update", "-c", "c1", "--type", "all\n", "--add", "t2"], {}, 2,
     "invalid run type 'all\\n'"),
    (RC, ["rtype-update", "-c", "c1", "--filter", ""], {}, 2, "invalid filter"),
    (RC, ["rtype-update", "-c", "c1", "--add", "t2"], {"ECAL_WORKFLOWS": "/nonexistent.yaml"},
     2, "workflow catalogue /nonexistent.yaml not found"),
    (RC, ["rtype-update", "-c", "c1", "--add", "t2"], {"ECAL_WORKFLOWS": "@broken"}, 2,
     "unknown key 'retries'"),
    # --- rtype-list -------------------------------------------------------------------
    (RC, ["rtype-list", "-c", "' OR campaign =~ /.*/ --"], {}, 2, "invalid campaign"),
    (RC, ["rtype-list", "-c", "nope"], {}, 2, "campaign 'nope' does not exist"),
    # --- inject -----------------------------------------------------------------------
    (RC, ["inject", "-c", "c1", "--runs", "-5"], {}, 2, "invalid run number '-5'"),
    (RC, ["inject", "-c", "c1", "--runs", "0"], {}, 2, "invalid run number '0'"),
    (RC, ["inject", "-c", "c1", "--runs", "1000000000"], {}, 2, "invalid run number"),
    (RC, ["inject", "-c", "c1", "--runs", "355100 355113"], {}, 2, "invalid run number"),
    (RC, ["inject", "-c", "c1", "--runs", "3.5e5"], {}, 2, "invalid run number"),
    (RC, ["inject", "-c", "c1", "--runs", "3551²"], {}, 2, "invalid run number"),
    (RC, ["inject", "-c", "c1", "--range", "355100"], {}, 2, "expected MIN,MAX"),
    (RC, ["inject", "-c", "c1", "--range", "1,2,3"], {}, 2, "expected MIN,MAX"),
    (RC, ["inject", "-c", "c1", "--era", ""], {}, 2, "invalid era"),
    (RC, ["inject", "-c", "c1", "--era", "Run2022C' OR '1'='1"], {}, 2, "unknown era"),
    (RC, ["inject", "-c", "c1", "--era", "Run2022C"], {"ECAL_RUN_REGISTRY": "/no/runs.csv"},
     2, "cannot read run catalogue /no/runs.csv"),
    (RC, ["inject", "-c", "c1", "--era", "Run2022C"], {"ECAL_RUN_REGISTRY": "@broken"}, 2,
     "missing required columns"),
    (RC, ["inject", "-c", "c1", "--era", "Run2022C"], {"ECAL_RUN_REGISTRY": "runs.txt"}, 2,
     "unknown run registry"),
    (RC, ["inject", "-c", "c1", "--era", "Run2022C"], {"ECAL_RUN_REGISTRY": "oms"}, 2,
     "ECAL_OMS_CLIENT_ID is not set"),
    # --- runs -------------------------------------------------------------------------
    (RC, ["runs", "-c", "c1", "--task", 'a"b'], {}, 2, "invalid task"),
    (RC, ["runs", "-c", "c1", "--task", "nosuch"], {}, 2, "task 'nosuch'"),
    # --- history --------------------------------------------------------------------
    (RC, ["history", "-c", "c1", "--run", "abc"], {}, 2, "invalid run number 'abc'"),
    (RC, ["history", "-c", "c1", "--run", "355101"], {}, 2, "run 355101 is not in campaign"),
    (RC, ["history", "-c", "c1", "--run", str(R1), "--task", "t9"], {}, 2,
     "run 355100 does not have task 't9'"),
    # --- status, report ---------------------------------------------------------------
    (RC, ["status", "-c", "c1 OR 1=1"], {}, 2, "invalid campaign"),
    (RC, ["status", "-c", "c1"], {"ECAL_INFLUXDB_TIMEOUT": "-1"}, 2,
     "invalid ECAL_INFLUXDB_TIMEOUT '-1'"),
    (RC, ["status", "-c", "c1"], {"ECAL_INFLUXDB_PASSWORD": "wrong"}, 1,
     "authentication failed"),
    (RC, ["report", "-c", "c1", "-o", "/nonexistent/dir/r.html"], {}, 2,
     "cannot write the report"),
    (RC, ["report", "-c", "nope", "-o", "r.html"], {}, 2, "campaign 'nope' does not exist"),
    # --- reprocess --------------------------------------------------------------------
    (RC, ["reprocess", "-c", "c1", "--task", "t1", "--runs", "355100,x"], {}, 2,
     "invalid run number 'x'"),
    (RC, ["reprocess", "-c", "c1", "--task", "a\\b", "--all"], {}, 2, "invalid task"),
    (RC, ["reprocess", "-c", "c1", "--task", "t1", "--runs", "355101"], {}, 2,
     "run 355101 does not have task 't1'"),
    # --- pause, resume ---------------------------------------------------------------
    (RC, ["pause", "-c", "nope"], {}, 2, "campaign 'nope' does not exist"),
    (RC, ["pause", "-c", "c1", "--output", "/proc/no/jobs"], {}, 2,
     "cannot create the jobs folder"),
    (RC, ["resume", "-c", "c1"], {}, 2, "campaign 'c1' is not paused"),
    # --- cancel -----------------------------------------------------------------------
    (RC, ["cancel", "-c", "nope"], {}, 2, "campaign 'nope' does not exist"),
    (RC, ["cancel", "-c", "c1", "--task", "t9"], {}, 2, "task 't9' is not in campaign 'c1'"),
    (RC, ["cancel", "-c", "c1", "--to", "done"], {}, 2, "invalid choice"),
    # --- jobs -------------------------------------------------------------------------
    (RC, ["jobs", "-c", "nope"], {}, 2, "campaign 'nope' does not exist"),
    (RC, ["jobs", "-c", "c1", "--update"], {}, 2, "JENKINS_URL, JENKINS_USER, "
                                                  "JENKINS_API_TOKEN not set"),
    (RC, ["jobs", "-c", "c1", "--update", "--jenkins-ini", "/no/jenkins_jobs.ini"], {}, 2,
     "jenkins_jobs.ini /no/jenkins_jobs.ini not found"),
    # --- schedule ---------------------------------------------------------------------
    (AU, ["schedule", "-c", "nope"], {}, 2, "campaign 'nope' does not exist"),
    (AU, ["schedule", "-c", "x'y"], {}, 2, "invalid campaign"),
    (AU, ["schedule", "--max-triggers", "-1"], {}, 2, "invalid --max-triggers -1"),
    (AU, ["schedule", "--max-triggers", "ten"], {}, 2, "invalid int value"),
    (AU, ["schedule", "--executor", "local", "--jobs", "0"], {}, 2,
     "invalid number of parallel local builds 0"),
    (AU, ["schedule"], {}, 2, "JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN not set"),
    (AU, ["schedule", "--executor", "ssh"], {}, 2, "invalid choice"),
    # --- jobctrl ----------------------------------------------------------------------
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", str(R1), "--done"],
     {"ECAL_REPORT_RETRY": "soon"}, 2, "invalid ECAL_REPORT_RETRY 'soon'"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", str(R1), "--done"],
     {"ECAL_REPORT_RETRY": "nan"}, 2, "invalid ECAL_REPORT_RETRY 'nan'"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", str(R1), "--done"],
     {"ECAL_REPORT_RETRY": "-1"}, 2, "invalid ECAL_REPORT_RETRY '-1'"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t 1", "--run", str(R1), "--done"], {}, 2,
     "invalid task"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--runs", f"{R1},", "--done"], {}, 2,
     "invalid run number ''"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", str(R1), "--done", "--id", "-3"],
     {}, 2, "invalid build number -3"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", str(R1), "--done"],
     {"BUILD_NUMBER": "12; rm -rf /"}, 2, "invalid build number"),
    (AU, ["-c", "nope", "jobctrl", "--task", "t1", "--run", str(R1), "--done"], {}, 2,
     "campaign 'nope'"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t9", "--run", str(R1), "--done"], {}, 2,
     "task 't9'"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", "355101", "--done"], {}, 2,
     "run 355101"),
    (AU, ["-c", "c1", "jobctrl", "--task", "t1", "--run", str(R1), "--done",
          "--fields", "x:" + "é" * 2049], {}, 2, "longer than 4096 bytes"),
    # --- run (the build wrapper) ------------------------------------------------------
    (AU, ["-c", "c1", "run", "--task", "t1", "--run", "abc", "--", "true"], {}, 2,
     "invalid run number 'abc'"),
    (AU, ["-c", "nope", "run", "--task", "t1", "--run", str(R1), "--", "true"], {}, 2,
     "campaign 'nope'"),
    (AU, ["-c", "c1", "run", "--task", "t1", "--run", str(R1), "--log",
          "/proc/forbidden/x.log", "--", "true"], {}, 2, "cannot write the log"),
]


@pytest.fixture
def files(tmp_path):
    """Broken catalogue and run registry files, for the ``@broken`` cases."""
    catalogue, runs = tmp_path / "workflows.yaml", tmp_path / "runs.csv"
    catalogue.write_text(BROKEN_CATALOGUE)
    runs.write_text(BROKEN_RUNS)
    return {"ECAL_WORKFLOWS": str(catalogue), "ECAL_RUN_REGISTRY": str(runs)}


@pytest.fixture
def campaign(client):
    runs = open_registry().runs([R1, R2])
    return make_campaign(client, "c1", [Workflow("t1", "echo t1")], runs)


def _id(case):
    script, args, env, _, _ = case
    text = " ".join(args)[:50].replace("\n", "\\n")
    return f"{script[:-3]}: {text}" + (f" [{','.join(env)}]" if env else "")


@pytest.mark.parametrize("script, args, changes, code, words", CASES,
                         ids=[_id(case) for case in CASES])
def test_bad_input_is_refused_in_one_line_and_writes_nothing(
        campaign, influxd, db, monkeypatch, capsys, tmp_path, files, script, args, changes,
        code, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    for key, value in changes.items():
        monkeypatch.setenv(key, files[key] if value == "@broken" else value)
    before = dump(influxd, db)
    try:
        status = MAIN[script](args)
    except SystemExit as exit_:   # argparse's usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    assert status == code, (out, err)
    assert words in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert dump(influxd, db) == before
    assert not (tmp_path / "r.html").exists()


def test_the_table_covers_every_command_with_40_cases():
    commands = {(script, next(a for a in args if a in COMMANDS[script]))
                for script, args, *_ in CASES}
    assert commands == {(script, c) for script, names in COMMANDS.items() for c in names}
    assert len(CASES) >= 40


COMMANDS = {RC: {"create", "list", "rtype-create", "rtype-update", "rtype-list", "inject",
                 "runs", "history", "status", "report", "reprocess", "pause", "resume",
                 "cancel", "jobs"},
            AU: {"schedule", "jobctrl", "run"}}
