"""Builds of a workflow with scm on the session's real pool: the scheduler checks the
repository out once per task and cycle, and each job runs in a copy of that checkout."""

import pytest

from ecaljenkins.condor import WORKSPACE_ATTR
from ecaljenkins.workflows import Workflow

from fixtures.git import git
from scheduling import FIRST_RUN as R, make_campaign, make_runs, rows
from test_condor import condor, cycle_until, logs, scheduler, wait_until  # noqa: F401


def ads(pool, db, history=True):
    """The task and checkout of every job of ``db``: the queue's, then the history's (a
    job leaving the queue between the two reads is in the second), each job once."""
    projection = ["ClusterId", "ProcId", "EcalTask", WORKSPACE_ATTR]
    found = list(pool.schedd().query(f'EcalDb == "{db}"', projection))
    if history:
        found += pool.schedd().history(f'EcalDb == "{db}"', projection)
    return list({(ad["ClusterId"], ad["ProcId"]): ad for ad in found}.values())


def workspaces(executor, db, task="a"):
    """The checkouts of ``task`` on the scheduler's machine."""
    parent = executor.log_dir / "workspace" / db / "c1" / task
    return sorted(parent.iterdir()) if parent.exists() else []


def test_a_build_runs_in_a_checkout_of_the_pinned_commit_made_once_per_cycle(
        condor_pool, condor, client, db, git_remote):
    (git_remote.path / "sub").mkdir()
    (git_remote.path / "sub" / "here.sh").write_text(
        'echo "in-subdir $RUN_NUMBER $(id -u)"; cat ../run.sh; cat ../.git/HEAD; '
        'echo made > made-by-job\n')
    git("add", "sub", cwd=git_remote.path)
    git("commit", "-q", "-m", "subdir", cwd=git_remote.path)
    pinned = git("rev-parse", "HEAD", cwd=git_remote.path)
    wf = Workflow("a", "bash here.sh", scm={"url": git_remote.url, "branch": "main",
                                            "subdir": "sub"}).pinned()
    (git_remote.path / "run.sh").write_text("echo three\n")     # the branch moves on
    git("commit", "-q", "-am", "three", cwd=git_remote.path)
    ctrl = make_campaign(client, "c1", [wf], make_runs(3))
    executor = condor()
    report = scheduler(client, executor).cycle()
    assert not report.failed, report.campaigns[0].errors
    assert len(report.campaigns[0].triggered) == 3
    # one checkout for the three builds of the task, named by each job
    (workspace,) = workspaces(executor, db)
    assert {ad.get(WORKSPACE_ATTR) for ad in ads(condor_pool, db)} == {str(workspace)}
    assert workspace.stat().st_uid == condor_pool.job_uid
    done = cycle_until(scheduler(client, executor), ctrl, "a", {"done"})
    assert set(done) == {R, R + 1, R + 2}, logs(executor)
    for run in done:
        text = (executor.log_dir / db / "c1" / "a" / f"{run}-1.log").read_text()
        assert f"in-subdir {run} {condor_pool.job_uid}" in text, text
        assert "echo two" in text and "three" not in text and pinned in text
    # the checkout does not come back beside the logs; the scheduler's copy is unchanged
    assert {path.suffix for path in (executor.log_dir / db / "c1" / "a").iterdir()} == \
        {".log", ".out"}
    assert not (workspace / "sub" / "made-by-job").exists()


def test_older_checkouts_are_removed_once_no_queued_job_names_them(condor_pool, condor,
                                                                   client, db, git_remote):
    """Jobs that cannot start (no such machine) keep their checkout; once they left the
    queue, the next checkout of the task removes it."""
    wf = Workflow("a", "bash run.sh", scm={"url": git_remote.url, "tag": "v1"},
                  node="no-such-machine").pinned()
    ctrl = make_campaign(client, "c1", [wf], make_runs(1))
    executor = condor()
    scheduler(client, executor).cycle()
    (first,) = workspaces(executor, db)
    ctrl.inject(make_runs(1, first=R + 1))
    scheduler(client, executor).cycle()
    assert len(workspaces(executor, db)) == 2 and first in workspaces(executor, db)
    assert {row["status"] for row in rows(ctrl, "a").values()} == {"queued"}
    condor_pool.schedd().act(condor_pool.htcondor.JobAction.Remove, f'EcalDb == "{db}"')
    wait_until("the jobs left the queue", lambda: not ads(condor_pool, db, history=False))
    ctrl.inject(make_runs(1, first=R + 2))
    scheduler(client, executor).cycle()
    (last,) = workspaces(executor, db)
    assert last != first
    assert [ad[WORKSPACE_ATTR] for ad in ads(condor_pool, db, history=False)] == [str(last)]


@pytest.mark.parametrize("scm, error", [
    ({"branch": "no-such-branch"}, "couldn't find remote ref refs/heads/no-such-branch"),
    ({"branch": "main", "commit": "0" * 40}, "0" * 40),
], ids=["branch", "commit"])
def test_a_failed_checkout_fails_the_builds_of_its_task_with_git_error(
        condor_pool, condor, client, db, git_remote, scm, error):
    """Other tasks are still submitted; nothing of the failed checkout is left."""
    ctrl = make_campaign(client, "c1", [
        Workflow("a", "bash run.sh", max_retries=0, scm={"url": git_remote.url, **scm}),
        Workflow("b", "true")], make_runs(2))
    executor = condor()
    report = scheduler(client, executor).cycle()
    failed = rows(ctrl, "a")
    assert {row["status"] for row in failed.values()} == {"failed"}
    for row in failed.values():
        assert row["reason"].startswith(f"git checkout of {git_remote.url} failed: ")
        assert error in row["reason"]
    assert any(error in warning for warning in report.campaigns[0].warnings)
    assert {ad["EcalTask"] for ad in ads(condor_pool, db)} == {"b"}
    assert workspaces(executor, db) == []
    cycle_until(scheduler(client, executor), ctrl, "b", {"done"})


SPLIT = '''
from ecaljenkins import Handler
from ecaljenkins.condorjobs import JobSpec

class Split(Handler):
    def jobs(self, runs):
        return [JobSpec(f"{run}-0", (run,)) for run in runs]

    def process_job(self, jid, runs):
        pass

if __name__ == "__main__":
    raise SystemExit(Split(task="split").run())
'''


def test_a_task_of_many_jobs_from_a_repository_is_refused_by_its_htcondor_build(
        condor_pool, condor, client, db, git_remote):
    """Its jobs would start the script of the build's sandbox, gone with the build."""
    (git_remote.path / "split.py").write_text(SPLIT)
    git("add", "split.py", cwd=git_remote.path)
    git("commit", "-q", "-m", "split", cwd=git_remote.path)
    wf = Workflow("split", "python3 split.py", max_retries=0,
                  scm={"url": git_remote.url, "branch": "main"}).pinned()
    ctrl = make_campaign(client, "c1", [wf], make_runs(1))
    executor = condor()
    final = cycle_until(scheduler(client, executor), ctrl, "split", {"failed", "done"})
    assert final[R]["status"] == "failed", logs(executor)
    assert final[R]["reason"] == (
        "the task's jobs cannot run split.py: a file of this HTCondor job's sandbox (a "
        "checkout of the workflow's repository), gone when the build ends; build this task "
        "of many jobs with the jenkins or local executor, or install it and run it with "
        "python -m"), logs(executor)
    assert [ad["EcalTask"] for ad in ads(condor_pool, db)] == ["split"]   # the build only
