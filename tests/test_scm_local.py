"""Local builds of a workflow with scm run in a checkout of its pinned commit, as on an agent."""

from ecaljenkins.workflows import Workflow

from fixtures.git import git
from scheduling import FIRST_RUN as R, make_campaign, make_runs, rows


def test_local_build_runs_in_a_checkout_of_the_pinned_commit(run_cli, client, db, tmp_path,
                                                             git_remote):
    """The local executor checks a workflow's repository out as its Jenkins job does."""
    (git_remote.path / "sub").mkdir()
    (git_remote.path / "sub" / "here.sh").write_text("echo in-subdir; cat ../run.sh\n")
    git("add", "sub", cwd=git_remote.path)
    git("commit", "-q", "-m", "subdir", cwd=git_remote.path)
    wf = Workflow("a", "bash here.sh", scm={"url": git_remote.url, "branch": "main",
                                            "subdir": "sub"}).pinned()
    (git_remote.path / "run.sh").write_text("echo three\n")     # the branch moves on
    git("commit", "-q", "-am", "three", cwd=git_remote.path)
    ctrl = make_campaign(client, "c1", [wf], make_runs(1))
    result = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                     "--log-dir", str(tmp_path / "logs"))
    assert result.code == 0, result
    assert rows(ctrl, "a")[R]["status"] == "done"
    (log,) = (tmp_path / "logs" / db / "c1" / "a").glob("*.log")
    text = log.read_text()
    assert "in-subdir" in text and "echo two" in text and "three" not in text


def test_a_failed_checkout_fails_the_local_build_with_git_error(run_cli, client, db, tmp_path,
                                                                git_remote):
    wf = Workflow("a", "bash run.sh", max_retries=0,
                  scm={"url": git_remote.url, "branch": "no-such-branch"})
    ctrl = make_campaign(client, "c1", [wf], make_runs(1))
    result = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                     "--log-dir", str(tmp_path / "logs"))
    assert "couldn't find remote ref" in result.out + result.err, result
    row = rows(ctrl, "a")[R]
    assert row["status"] == "failed"
    assert row["reason"] == (f"git checkout of {git_remote.url} failed: fatal: couldn't find "
                             "remote ref refs/heads/no-such-branch")
