"""Campaign commands keep Jenkins in step: push on --add, disable on --remove, enable back."""

import pytest
import requests

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.cli.runctrl import main
from ecaljenkins.errors import InputError, NotFound
from ecaljenkins.jenkins_server import REQUIRED_PLUGINS
from ecaljenkins.jobsync import create_rtype, update_rtype
from ecaljenkins.settings import Settings
from ecaljenkins.workflows import Workflow

from fixtures.git import git
from fixtures.influx import dump
from jenkins_fake import TOKEN, URL, USER

CATALOGUE = """
reco:
  command: echo reco
calib:
  command: echo calib
  depends_on: [reco]
"""


@pytest.fixture
def setup(env, tmp_path, monkeypatch, db):
    path = tmp_path / "workflows.yaml"
    path.write_text(CATALOGUE)
    monkeypatch.setenv("ECAL_WORKFLOWS", str(path))
    assert main(["--db", db, "create", "-c", "c1"]) == 0
    return db


def cli(*args, capsys):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_pushes_remove_disables_add_enables(setup, jenkins, capsys):
    db = setup
    reco, calib = f"ecal-{db}-c1-reco", f"ecal-{db}-c1-calib"
    code, out, _ = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco", "calib",
                       capsys=capsys)
    assert code == 0
    assert f"pushed {reco}" in out and f"pushed {calib}" in out
    assert not jenkins.jobs[reco].disabled and not jenkins.jobs[calib].disabled

    code, out, _ = cli("--db", db, "rtype-update", "-c", "c1", "--remove", "calib",
                       capsys=capsys)
    assert code == 0 and f"disabled {calib}" in out and f"pushed {reco}" not in out
    assert jenkins.jobs[calib].disabled and not jenkins.jobs[reco].disabled
    assert len(jenkins.endpoint_calls("reconfig")) == 1   # the one job that changed

    code, out, _ = cli("--db", db, "rtype-update", "-c", "c1", "--add", "calib", capsys=capsys)
    assert code == 0 and not jenkins.jobs[calib].disabled


def test_jobs_update_pushes_every_campaign(setup, jenkins, capsys):
    db = setup
    cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco", capsys=capsys)
    jenkins.jobs.clear()
    code, out, _ = cli("--db", db, "jobs", "--update", capsys=capsys)
    assert code == 0 and "1 pushed to Jenkins" in out
    assert list(jenkins.jobs) == [f"ecal-{db}-c1-reco"]


@pytest.mark.parametrize("status", [401, 403, 500, "unreachable"])
def test_jenkins_error_is_one_line_and_changes_nothing(setup, jenkins, capsys, env, status,
                                                       influxd):
    db = setup
    jenkins.fail("*", requests.exceptions.ConnectionError("Connection refused")
                 if status == "unreachable" else status, times=None)
    before = dump(influxd, db)
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco",
                         capsys=capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and TOKEN not in err
    assert (f"HTTP {status}" if status != "unreachable" else "cannot connect") in err
    assert dump(influxd, db) == before      # Jenkins is asked before the campaign changes


def test_jobs_renders_the_scheduler_job(setup, env, capsys):
    db = setup
    code, out, _ = cli("--db", db, "jobs", "--scheduler", f"{db},other_db",
                       "--notify", "ecal-ops@cern.ch", capsys=capsys)
    assert code == 0, out
    assert "scheduler: " in out and "1 job(s) validated" in out
    text = open(f"{env['ECAL_JOBS_DIR']}/scheduler.yaml").read()
    assert f"for db in {db} other_db" in text and "H/10 * * * *" in text
    assert 'recipients: "ecal-ops@cern.ch"' in text


@pytest.mark.parametrize("variable,value,words", [
    ("JENKINS_URL", "http://bot:url-Secret-pw9@jenkins.example:8080/",
     "JENKINS_URL must be http(s)://host[:port]/ without user or password"),
    ("JENKINS_API_TOKEN", "", "JENKINS_API_TOKEN not set"),
])
def test_broken_jenkins_settings_change_nothing(setup, jenkins, capsys, monkeypatch, influxd,
                                                variable, value, words):
    db = setup
    monkeypatch.setenv(variable, value)
    before = dump(influxd, db)
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco",
                         capsys=capsys)
    assert code == 2
    assert words in err and "url-Secret-pw9" not in err + out
    assert len(err.strip().splitlines()) == 1
    assert dump(influxd, db) == before


@pytest.mark.parametrize("variable", ["ECAL_TEMPLATES", "ECAL_JOBS_DIR"])
def test_unusable_templates_or_jobs_folder_change_nothing(setup, capsys, monkeypatch, influxd,
                                                          tmp_path, variable):
    db = setup
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(variable, str(blocker / "sub"))
    before = dump(influxd, db)
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco",
                         capsys=capsys)
    assert code == 2, err
    assert str(blocker / "sub") in err and len(err.strip().splitlines()) == 1
    assert dump(influxd, db) == before


def test_the_library_calls_do_what_the_commands_do(setup, client, jenkins, tmp_path):
    """create_rtype/update_rtype record, re-render and push as rtype-create/-update do,
    from the settings they are given (not the environment the fixtures set)."""
    db = setup
    catalogue = tmp_path / "mine.yaml"
    catalogue.write_text("reco:\n  command: echo mine\n")
    settings = Settings(workflows=str(catalogue), jobs_dir=str(tmp_path / "lib-jobs"),
                        jenkins_url=URL, jenkins_user=USER, jenkins_api_token=TOKEN)
    ctrl, reco = RunCtrl(client, "c1"), f"ecal-{db}-c1-reco"

    with pytest.raises(NotFound, match="^task 'nosuch' has no workflow definition in the "
                                       "catalogue nor in the campaign"):
        create_rtype(ctrl, "cosmics", ["era == Run2022C"], ["reco", "nosuch"],
                     settings=settings)
    result = create_rtype(ctrl, "cosmics", ["era == Run2022C"], ["reco", "nosuch"],
                          settings=settings, allow_undefined=True)
    assert result.change.added == ["reco", "nosuch"]
    assert result.warnings == ["task 'nosuch' has no workflow definition in the catalogue: "
                               "it is recorded, but gets no Jenkins job"]
    assert result.jobs.path == tmp_path / "lib-jobs" / db / "c1.yaml"
    assert result.jobs.pushed == [reco] and result.jobs.undefined == ["nosuch"]
    assert "echo mine" in jenkins.jobs[reco].config and not jenkins.jobs[reco].disabled

    result = update_rtype(ctrl, "cosmics", add=["reco"], settings=settings)
    assert result.warnings == ["task 'reco' was already active in run type 'cosmics'"]
    assert result.jobs is None

    result = update_rtype(ctrl, "cosmics", remove=["reco"], settings=settings)
    assert result.change.removed == ["reco"] and result.jobs.disabled == [reco]
    assert jenkins.jobs[reco].disabled
    assert list(ctrl.info().rtype("cosmics").tasks) == ["nosuch"]

    with pytest.raises(InputError, match="^nothing to do: give --add"):
        update_rtype(ctrl, "cosmics", settings=settings)
def test_added_task_records_and_renders_the_commit_of_its_branch(env, db, tmp_path, capsys,
                                                                  monkeypatch, git_remote):
    path = tmp_path / "scm-workflows.yaml"
    path.write_text(f"reco:\n  command: ./run.sh\n  scm: {{url: '{git_remote.url}', "
                    "branch: main}\n")
    monkeypatch.setenv("ECAL_WORKFLOWS", str(path))
    assert main(["--db", db, "create", "-c", "c1"]) == 0
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco",
                         capsys=capsys)
    assert code == 0, err
    git("commit", "-q", "--allow-empty", "-m", "later", cwd=git_remote.path)
    # the campaign keeps the commit the branch pointed to when the task was added
    (definition,) = RunCtrl(db, "c1").info().workflows.values()
    assert Workflow.from_json(definition).scm.commit == git_remote.second
    text = open(f"{env['ECAL_JOBS_DIR']}/{db}/c1.yaml").read()
    assert f"+{git_remote.second}:refs/remotes/origin/ecal-pinned" in text
    # --refresh records where the branch is now
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--refresh", capsys=capsys)
    assert code == 0, err
    (definition,) = RunCtrl(db, "c1").info().workflows.values()
    assert Workflow.from_json(definition).scm.commit == git("rev-parse", "HEAD",
                                                            cwd=git_remote.path)


def test_unreachable_repository_changes_nothing(env, db, tmp_path, capsys, monkeypatch,
                                                influxd):
    path = tmp_path / "scm-workflows.yaml"
    path.write_text(f"reco:\n  command: ./run.sh\n  scm: {{url: 'file://{tmp_path}/gone', "
                    "branch: main}\n")
    monkeypatch.setenv("ECAL_WORKFLOWS", str(path))
    assert main(["--db", db, "create", "-c", "c1"]) == 0
    before = dump(influxd, db)
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco",
                         capsys=capsys)
    assert code == 1 and "git ls-remote" in err and len(err.strip().splitlines()) == 1
    assert dump(influxd, db) == before


# --- never half-applied ------------------------------------------------------------------

def test_push_failing_after_the_change_says_how_it_completes(setup, jenkins, capsys, influxd):
    db = setup
    jenkins.fail("createItem", 500)          # Jenkins answers the check, then fails the push
    code, out, err = cli("--db", db, "rtype-update", "-c", "c1", "--add", "reco",
                         capsys=capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert (f"the change of campaign 'c1' is recorded, but its Jenkins jobs are out of date: "
            f"'ecalrunctrl.py --db {db} jobs --update' (or the next scheduler cycle) pushes "
            "them") in err
    assert jenkins.jobs == {}
    code, out, err = cli("--db", db, "jobs", "--update", capsys=capsys)
    assert code == 0 and "1 pushed to Jenkins" in out
    assert not jenkins.jobs[f"ecal-{db}-c1-reco"].disabled


def test_jobs_check_names_the_missing_plugins(setup, jenkins, capsys):
    db = setup
    for name in REQUIRED_PLUGINS:
        if name not in ("git", "throttle-concurrents"):
            jenkins.add_plugin(name)
    code, out, err = cli("--db", db, "jobs", "--check", capsys=capsys)
    assert code == 1
    assert "missing Jenkins plugin git: needed for" in out
    assert "missing Jenkins plugin throttle-concurrents: needed for" in out
    assert "lacks the plugins git, throttle-concurrents" in err
    jenkins.add_plugin("git")
    jenkins.add_plugin("throttle-concurrents")
    code, out, err = cli("--db", db, "jobs", "--check", capsys=capsys)
    assert code == 0 and f"Jenkins has the {len(REQUIRED_PLUGINS)} plugins" in out
