"""The private HTCondor pool: real jobs submitted with the htcondor2 bindings.

Nothing is mocked: each test submits to the session's pool (tests/fixtures/condor.py)
and reads what the schedd says, in its queue and its history. The bindings are
reached through the pool (``condor_pool.htcondor``) so that this module imports
where they are not installed and its other tests still run.
"""

import os
import time

import pytest

from ecaljenkins.errors import CondorUnavailable
from ecaljenkins.localcondor import LocalCondor, debian_mirror
from fixtures.leaks import record_output

WAIT = 60  # seconds a job gets to reach a state (about 1 s is typical)


def submit(pool, name, arguments, **extra):
    """Submit one ``/bin/sh -c arguments`` job from a new directory of the work dir."""
    directory = pool.make_dir(name)
    description = {"executable": "/bin/sh", "arguments": f"\"-c '{arguments}'\"",
                   "initialdir": str(directory), "output": "job.out", "error": "job.err",
                   "log": "job.log", **extra}
    cluster = pool.schedd().submit(pool.htcondor.Submit(description)).cluster()
    return cluster, directory


def wait_history(pool, cluster):
    """The job's ad in the schedd's history, once it has left the queue."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        ads = pool.schedd().history(f"ClusterId == {cluster}",
                                    ["JobStatus", "LastJobStatus", "ExitCode", "Owner",
                                     "RemoveReason"])
        ads = list(ads)
        if ads:
            return ads[0]
        time.sleep(0.2)
    raise AssertionError(f"job {cluster} not in the history after {WAIT}s")


def wait_queue(pool, cluster, status):
    """The job's ad in the queue once its JobStatus is ``status``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        ads = pool.schedd().query(f"ClusterId == {cluster}",
                                  ["JobStatus", "HoldReason", "HoldReasonCode"])
        if ads and ads[0]["JobStatus"] == status:
            return ads[0]
        time.sleep(0.2)
    raise AssertionError(f"job {cluster} never reached JobStatus {status}: {ads}")


def test_job_completes_with_its_exit_code_in_the_history(condor_pool):
    cluster, directory = submit(condor_pool, "ok", "echo hello from $(id -u)")
    ad = wait_history(condor_pool, cluster)
    assert ad["JobStatus"] == condor_pool.htcondor.JobStatus.COMPLETED
    assert ad["ExitCode"] == 0
    assert ad["Owner"] == condor_pool.job_user
    assert (directory / "job.out").read_text() == f"hello from {condor_pool.job_uid}\n"


def test_failing_job_completes_with_its_exit_code(condor_pool):
    cluster, directory = submit(condor_pool, "fails", "echo broken >&2; exit 3")
    ad = wait_history(condor_pool, cluster)
    assert ad["JobStatus"] == condor_pool.htcondor.JobStatus.COMPLETED
    assert ad["ExitCode"] == 3
    assert (directory / "job.err").read_text() == "broken\n"


def test_job_with_a_missing_input_is_held_with_its_reason(condor_pool):
    htcondor = condor_pool.htcondor
    cluster, _ = submit(condor_pool, "held", "true", should_transfer_files="YES",
                        transfer_input_files="/nonexistent/ecal-input.root")
    ad = wait_queue(condor_pool, cluster, htcondor.JobStatus.HELD)
    assert "/nonexistent/ecal-input.root" in ad["HoldReason"]
    condor_pool.schedd().act(htcondor.JobAction.Remove, f"ClusterId == {cluster}")
    assert wait_history(condor_pool, cluster)["JobStatus"] == htcondor.JobStatus.REMOVED


def test_running_job_removed(condor_pool):
    htcondor = condor_pool.htcondor
    cluster, _ = submit(condor_pool, "removed", "sleep 600")
    wait_queue(condor_pool, cluster, htcondor.JobStatus.RUNNING)
    condor_pool.schedd().act(htcondor.JobAction.Remove, f"ClusterId == {cluster}")
    ad = wait_history(condor_pool, cluster)
    assert ad["JobStatus"] == htcondor.JobStatus.REMOVED
    assert ad["LastJobStatus"] == htcondor.JobStatus.RUNNING


def test_condor_tools_remove_with_a_reason(condor_pool):
    """``condor_rm -reason`` (the pool's own tools) records RemoveReason; the 25.x
    bindings' ``act(..., reason=)`` does not against these 23.9 daemons."""
    cluster, _ = submit(condor_pool, "removed-by-tool", "sleep 600")
    done = condor_pool.command("condor_rm", "-reason", "cancelled by the test", str(cluster))
    record_output(done.stdout, done.stderr)
    ad = wait_history(condor_pool, cluster)
    assert ad["JobStatus"] == condor_pool.htcondor.JobStatus.REMOVED
    assert ad["RemoveReason"].startswith("cancelled by the test")


def test_job_writes_to_the_shared_work_directory(condor_pool):
    """A file a job writes under ``workdir`` is on the host at the same path."""
    shared = condor_pool.make_dir("shared")
    # $(ClusterId) is expanded by the submit language: the job writes its own id
    cluster, _ = submit(condor_pool, "writer", f"echo $(ClusterId) > {shared}/out.txt")
    assert wait_history(condor_pool, cluster)["ExitCode"] == 0
    out = shared / "out.txt"
    assert out.stat().st_uid == condor_pool.job_uid
    assert out.read_text() == f"{cluster}\n"


def test_a_second_pool_runs_beside_and_stops_by_its_pid(condor_pool):
    """Two pools at once (two sessions on one machine); stopping one ends its master,
    removes its directory, leaves no mount behind and gives the bindings back to the
    other pool."""
    with LocalCondor() as second:
        assert second.collector != condor_pool.collector
        pid, directory = second.proc.pid, second.dir
        assert os.environ["CONDOR_CONFIG"] == str(second.config)
        cluster, _ = submit(second, "second", "exit 5")
        assert wait_history(second, cluster)["ExitCode"] == 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not directory.exists()
    with open("/proc/mounts") as mounts:
        assert str(second.rootfs) not in mounts.read()
    assert os.environ["CONDOR_CONFIG"] == str(condor_pool.config)
    cluster, _ = submit(condor_pool, "after-second", "exit 0")
    assert wait_history(condor_pool, cluster)["ExitCode"] == 0


def test_a_missing_root_filesystem_is_named(tmp_path):
    with pytest.raises(CondorUnavailable, match=f"no HTCondor root filesystem at {tmp_path}"):
        LocalCondor(rootfs=tmp_path)


@pytest.mark.parametrize("name, text", [
    ("sources.list.d/debian.sources",
     "Types: deb\nURIs: http://security.example/debian-security\n"
     "Suites: bookworm-security\nComponents: main\n\n"
     "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
     "Suites: bookworm bookworm-updates\nComponents: main\n"),
    ("sources.list",
     "# deb http://old.example/debian buster main\n"
     "deb http://security.debian.org/debian-security bookworm-security main\n"
     "deb [arch=amd64] http://mirror.example/debian bookworm main\n"),
], ids=["deb822", "one-line"])
def test_debian_mirror_is_the_configured_one_not_security(tmp_path, monkeypatch, name, text):
    monkeypatch.delenv("ECAL_CONDOR_MIRROR", raising=False)
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text(text)
    assert debian_mirror(str(tmp_path)) == "http://mirror.example/debian"


def test_no_debian_mirror_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("ECAL_CONDOR_MIRROR", raising=False)
    with pytest.raises(CondorUnavailable, match="no Debian mirror configured"):
        debian_mirror(str(tmp_path))
