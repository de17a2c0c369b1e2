"""Campaign commands: behaviour, output shapes, and the table of bad inputs."""

import json

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.registry import open_registry

from fixtures.influx import dump


@pytest.fixture
def campaign(run_cli, client):
    """A campaign 'c1' with tasks t1, t2 on run type all."""
    assert run_cli("ecalrunctrl.py", "create", "-c", "c1").code == 0
    assert run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--allow-undefined", "--add", "t1,t2").code == 0
    return RunCtrl(client, "c1")


@pytest.fixture
def era():
    registry = open_registry()
    name = min(registry.eras(), key=lambda e: len(registry.era(e)))
    return name, registry.era(name)


def test_db_and_campaign_before_or_after_subcommand(run_cli, db, client):
    assert run_cli("ecalrunctrl.py", "--db", db, "-c", "a", "create").code == 0
    assert run_cli("ecalrunctrl.py", "create", "--db", db, "--campaign", "b").code == 0
    out = run_cli("ecalrunctrl.py", "--db", db, "list", "--json")
    assert [c["campaign"] for c in json.loads(out.out)] == ["a", "b"]


def test_inject_era_is_idempotent_and_counts(run_cli, campaign, era):
    name, runs = era
    first = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--era", name)
    assert first.code == 0, first
    globals_ = [r.number for r in runs if r.sequence == "GLOBAL-RUN"]
    others = len(runs) - len(globals_)
    assert f"{len(globals_)} run(s) injected, {others} matched no run type" in first.out
    before = campaign.task_rows()
    again = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--era", name)
    assert f"0 run(s) injected, {others} matched no run type, {len(globals_)} already " \
           "present" in again.out
    assert sorted(map(repr, campaign.task_rows())) == sorted(map(repr, before))

    status = json.loads(run_cli("ecalrunctrl.py", "status", "-c", "c1", "--json").out)
    assert (status["campaign"], status["tasks"]) == ("c1", {"t1": {"new": len(globals_)},
                                                           "t2": {"new": len(globals_)}})
    listed = json.loads(run_cli("ecalrunctrl.py", "runs", "-c", "c1", "--json").out)
    assert [r["run"] for r in listed] == sorted(globals_)
    assert listed[0]["tasks"] == {"t1": "new", "t2": "new"}
    assert listed[0]["era"] == name


def test_inject_a_range_of_one_run(run_cli, campaign, era):
    _, runs = era
    run = next(r.number for r in runs if r.sequence == "GLOBAL-RUN")
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", f"{run},{run}")
    assert res.code == 0, res
    assert "1 run(s) injected" in res.out
    listed = json.loads(run_cli("ecalrunctrl.py", "runs", "-c", "c1", "--json").out)
    assert [r["run"] for r in listed] == [run]


def test_add_task_applies_to_new_runs_unless_backfill(run_cli, campaign, era):
    _, runs = era
    global_runs = [r.number for r in runs if r.sequence == "GLOBAL-RUN"]
    first, rest = global_runs[:2], global_runs[2:4]
    run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--runs", ",".join(map(str, first)))
    assert run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--allow-undefined", "--add", "t3").code == 0
    run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--runs", ",".join(map(str, rest)))
    rows = {r.run: r.tasks for r in campaign.runs()}
    assert all("t3" not in rows[r] for r in first)
    assert all(rows[r].get("t3") == "new" for r in rest)

    out = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--allow-undefined", "--add", "t4", "--backfill")
    assert "backfilled 4 run tasks" in out.out
    rows = {r.run: r.tasks for r in campaign.runs()}
    assert all(rows[r]["t4"] == "new" for r in first + rest)


def test_rtype_filters_select_runs(run_cli, campaign, era):
    name, runs = era
    fills = sorted({r.fill for r in runs if r.sequence == "GLOBAL-RUN"})
    res = run_cli("ecalrunctrl.py", "rtype-create", "-c", "c1", "--type", "late",
                  "--filter", "sequence == GLOBAL-RUN", "--filter", f"fill >= {fills[-1]}",
                  "--allow-undefined", "--add", "late-task")
    assert res.code == 0, res
    run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--era", name)
    rows = campaign.runs(task="late-task")
    assert {r.fill for r in rows} == {fills[-1]}
    assert json.loads(run_cli("ecalrunctrl.py", "rtype-list", "-c", "c1", "--json").out)[
        "rtypes"][1] == {"rtype": "late", "filters": ["sequence == GLOBAL-RUN",
                                                      f"fill >= {fills[-1]}"],
                         "tasks": ["late-task"]}


def test_list_shows_inactive_campaign(run_cli, campaign):
    run_cli("ecalrunctrl.py", "create", "-c", "idle")
    out = run_cli("ecalrunctrl.py", "list").out
    assert "c1" in out and "idle" in out
    line = [l for l in out.splitlines() if l.startswith("idle")][0]
    assert "inactive" in line


def test_read_only_user_can_read(run_cli, campaign, reader_env):
    assert run_cli("ecalrunctrl.py", "status", "-c", "c1").code == 0
    assert run_cli("ecalrunctrl.py", "rtype-list", "-c", "c1").code == 0


BAD_INPUTS = [
    # (arguments, exit status, words the message must contain)
    (["status", "-c", "nope"], 2, "campaign 'nope' does not exist"),
    (["rtype-update", "-c", "c1", "--type", "nope", "--add", "x"], 2, "run type 'nope'"),
    (["create", "-c", "c1"], 2, "already exists"),
    (["inject", "-c", "c1", "--range", "10,5"], 2, "10 is greater than 5"),
    (["inject", "-c", "c1", "--runs", "1,,x"], 2, "invalid run number ''"),
    (["inject", "-c", "c1", "--era", "Run2099Z"], 2, "Run2099Z"),
    (["inject", "-c", "c1", "--runs", "999999999"], 2, "999999999"),
    (["create", "-c", "bad'name"], 2, "invalid campaign"),
    (["create", "-c", "bad name"], 2, "invalid campaign"),
    (["create", "-c", "bad\nname"], 2, "invalid campaign"),
    (["create", "-c", "trailing\n"], 2, "invalid campaign"),
    (["--db", "db\n", "list"], 2, "invalid database name"),
    (["create", "-c", "x' OR 1=1; DROP DATABASE db --"], 2, "invalid campaign"),
    (["rtype-update", "-c", "c1", "--add", 'a"b'], 2, "invalid task"),
    (["rtype-update", "-c", "c1", "--add", "t9", "--remove", "t9"], 2, "both added"),
    (["rtype-update", "-c", "c1", "--remove", "t7"], 2, "'t7' is not active"),
    (["rtype-create", "-c", "c1", "--type", "all", "--filter", "a == 1"], 2, "already exists"),
    (["rtype-create", "-c", "c1", "--type", "x", "--filter", "a = = 1"], 2, "invalid filter"),
    (["create", "-c", "c2", "--kind", "weird"], 2, "invalid choice"),
    (["runs", "-c", "c1", "--status", "weird"], 2, "invalid choice"),
    (["rtype-update", "-c", "c1"], 2, "nothing to do"),
    (["inject", "-c", "c1"], 2, "one of the arguments"),
    (["status"], 2, "campaign is required"),
]


@pytest.mark.parametrize("args,code,words", BAD_INPUTS, ids=[" ".join(a[:3]) + f" #{i}"
                                                             for i, (a, _, _) in
                                                             enumerate(BAD_INPUTS)])
def test_bad_input(run_cli, campaign, influxd, db, args, code, words):
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", *args)
    assert res.code == code, res
    assert words in res.err, res
    assert len(res.err.strip().splitlines()) == 1, res
    assert "Traceback" not in res.err
    assert dump(influxd, db) == before


def test_read_only_user_cannot_write(run_cli, campaign, reader_env, influxd, db):
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--allow-undefined", "--add", "t5")
    assert res.code == 1
    assert res.err.strip() == ("ecalrunctrl.py: error: user reader is not authorized to "
                               f"write to database {db}")
    assert dump(influxd, db) == before


def test_wrong_password_and_server_down(run_cli, campaign, influxd):
    res = run_cli("ecalrunctrl.py", "status", "-c", "c1",
                  extra_env={"ECAL_INFLUXDB_PASSWORD": "wrong-pass-123"})
    assert res.code == 1 and "authentication failed" in res.err
    assert "wrong-pass-123" not in res.err
    res = run_cli("ecalrunctrl.py", "status", "-c", "c1",
                  extra_env={"ECAL_INFLUXDB_TOKEN": "tok-Secret-456"})
    assert res.code == 1, res
    assert "authentication failed for the token of ECAL_INFLUXDB_TOKEN" in res.err
    assert "tok-Secret-456" not in res.err
    res = run_cli("ecalrunctrl.py", "status", "-c", "c1",
                  extra_env={"ECAL_INFLUXDB_URL": "http://127.0.0.1:9"})
    assert res.code == 1 and "cannot reach InfluxDB at http://127.0.0.1:9" in res.err
    assert len(res.err.strip().splitlines()) == 1


# --- Jenkins jobs kept in step (workflow definitions recorded with the campaign) -------

CATALOGUE = """
reco:
  command: echo reco {run}
calib:
  command: echo calib
  depends_on: [reco]
  group_by: fill
"""


@pytest.fixture
def catalogue(tmp_path, monkeypatch):
    path = tmp_path / "workflows.yaml"
    path.write_text(CATALOGUE)
    monkeypatch.setenv("ECAL_WORKFLOWS", str(path))
    return path


def test_add_records_definition_and_renders_jobs(run_cli, client, db, env, catalogue, influxd):
    run_cli("ecalrunctrl.py", "create", "-c", "c1")
    res = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--add", "reco,calib", "reko")
    assert res.code == 2 and res.err.strip() == (
        "ecalrunctrl.py: error: task 'reko' has no workflow definition in the catalogue nor "
        "in the campaign (did you mean 'reco'?) (give --allow-undefined if its workflow is "
        "defined later)"), res
    assert RunCtrl(client, "c1").info().active_tasks == set()
    res = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--add", "reco,calib", "typo",
                  "--allow-undefined")
    assert res.code == 0, res
    assert "task 'typo' has no workflow definition" in res.err
    assert "Jenkins not configured" in res.out
    camp = RunCtrl(client, "c1").info()
    assert set(camp.workflows) == {"reco", "calib"}
    assert json.loads(camp.workflows["reco"])["command"] == "echo reco {run}"
    path = f"{env['ECAL_JOBS_DIR']}/{db}/c1.yaml"
    text = open(path).read()
    assert f"ecal-{db}-c1-reco" in text and f"ecal-{db}-c1-calib" in text

    # the campaign keeps its definition when the catalogue changes, until --refresh
    catalogue.write_text(CATALOGUE.replace("echo reco {run}", "echo reco v2"))
    run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--remove", "calib")
    assert json.loads(RunCtrl(client, "c1").info().workflows["reco"])["command"] == \
        "echo reco {run}"
    res = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--refresh")
    assert res.code == 0 and "recorded the catalogue's definition of reco" in res.out, res
    assert json.loads(RunCtrl(client, "c1").info().workflows["reco"])["command"] == \
        "echo reco v2"
    # nothing changed in the catalogue since: said so, and nothing written
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--refresh")
    assert res.code == 0 and "nothing changed" in res.out, res
    assert dump(influxd, db) == before

    out = run_cli("ecalrunctrl.py", "jobs", "-c", "c1")
    assert out.code == 0 and "2 job(s) validated" in out.out


def test_broken_catalogue_changes_nothing(run_cli, client, influxd, db, catalogue):
    run_cli("ecalrunctrl.py", "create", "-c", "c1")
    catalogue.write_text("reco:\n  command: [unclosed\n")
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "rtype-update", "-c", "c1", "--add", "reco")
    assert res.code == 2 and str(catalogue) in res.err, res
    assert len(res.err.strip().splitlines()) == 1
    assert dump(influxd, db) == before


def test_reinjecting_an_interrupted_run_keeps_its_rows(campaign, era):
    """A run whose task rows were written but not its runinfo (injection cut off)
    is completed by injecting it again; rows already there keep their status."""
    _, runs = era
    first, second, cut = [r for r in runs if r.sequence == "GLOBAL-RUN"][:3]
    campaign.inject([first, second])
    campaign.set_status("t1", [cut.number], "queued", fill=cut.fill, era=cut.era)
    summary = campaign.inject([cut])
    assert summary.injected == [cut.number]
    rows = {r.run: r.tasks for r in campaign.runs()}
    assert rows[cut.number] == {"t1": "queued", "t2": "new"}
