"""Builds report what happened (issue 11): the Handler's exception as the reason under
the wrapper, ``jobctrl`` taking the build's ``$DB``/``$CAMPAIGN``, ``jobctrl --output``,
and logs never overwritten."""

import sys
import textwrap

from ecaljenkins.workflows import Workflow

import pytest

from scheduling import FIRST_RUN, make_campaign, make_runs, rows

R = FIRST_RUN

FAILING_HANDLER = textwrap.dedent('''
    from ecaljenkins import Handler

    class Reco(Handler):
        def process(self, run):
            print("working on", run)
            raise ValueError(f"no calibration constants for run {run}\\nsecond line")

    raise SystemExit(Reco("reco").run())
''')


@pytest.fixture
def camp(client):
    return make_campaign(client, "c1", [Workflow("reco", "r")], make_runs(2))


def test_a_handler_exception_under_the_wrapper_is_the_reason(run_cli, db, camp, tmp_path):
    script = tmp_path / "reco.py"
    script.write_text(FAILING_HANDLER)
    log = tmp_path / "reco.log"
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco",
                  "--run", str(R), "--log", str(log), "--", sys.executable, str(script))
    assert res.code == 1, res
    row = rows(camp, "reco")[R]
    assert row["status"] == "failed"
    assert row["reason"] == f"ValueError: no calibration constants for run {R}"
    assert "Traceback" in log.read_text()     # the log keeps the whole story


def test_a_plain_command_failing_keeps_its_exit_code_as_reason(run_cli, db, camp, tmp_path):
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco",
                  "--run", str(R), "--log", str(tmp_path / "x.log"), "--", "bash", "-c",
                  "echo oops >&2; exit 4")
    assert res.code == 4
    assert rows(camp, "reco")[R]["reason"] == "exit code 4"


def test_jobctrl_inside_a_build_takes_db_and_campaign_from_the_build(run_cli, db, camp):
    build = {"DB": db, "CAMPAIGN": "c1", "ECAL_BUILD_WRAPPER": "1",
             "ECAL_INFLUXDB_DB": "not_this_one"}
    res = run_cli("ecalautomation.py", "jobctrl", "--task", "reco", "--run", str(R),
                  "--done", "--output", "/eos/ecal/reco-1.root", extra_env=build)
    assert res.code == 0, res
    row = rows(camp, "reco")[R]
    assert (row["status"], row["output"]) == ("done", "/eos/ecal/reco-1.root")
    assert camp.get_output(task="reco") == {R: "/eos/ecal/reco-1.root"}
    # under Jenkins alone (BUILD_NUMBER), the same contract
    res = run_cli("ecalautomation.py", "jobctrl", "--task", "reco", "--run", str(R + 1),
                  "--running", extra_env={"DB": db, "CAMPAIGN": "c1", "BUILD_NUMBER": "12"})
    assert res.code == 0, res
    assert (rows(camp, "reco")[R + 1]["status"], rows(camp, "reco")[R + 1]["build"]) == \
        ("running", 12)
    # outside a build, $CAMPAIGN is nobody's contract
    res = run_cli("ecalautomation.py", "--db", db, "jobctrl", "--task", "reco", "--run",
                  str(R), "--done", extra_env={"CAMPAIGN": "c1"})
    assert res.code == 2 and "the campaign is required" in res.err, res


def test_jobctrl_output_and_fields_output_must_agree(run_cli, db, camp):
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "jobctrl", "--task", "reco",
                  "--run", str(R), "--done", "--output", "/a.root", "--fields", "output:/b.root")
    assert res.code == 2 and "two outputs given" in res.err, res
    assert rows(camp, "reco")[R]["status"] == "new"


def test_a_second_build_never_overwrites_the_first_log(run_cli, db, camp, tmp_path):
    log = tmp_path / "logs" / f"{R}-1.log"

    def build(word):
        res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "run", "--task", "reco",
                      "--run", str(R), "--log", str(log), "--", "echo", word)
        assert res.code == 0, res
        return rows(camp, "reco")[R]["log"]

    assert build("first") == str(log)
    assert build("second") == str(log.with_name(f"{R}-1.1.log"))
    assert build("third") == str(log.with_name(f"{R}-1.2.log"))
    names = [f"{R}-1.log", f"{R}-1.1.log", f"{R}-1.2.log"]
    assert sorted(p.name for p in log.parent.iterdir()) == sorted(names)
    assert [(log.parent / name).read_text() for name in names] == \
        ["first\n", "second\n", "third\n"]
