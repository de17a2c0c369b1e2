"""The scheduling lease survives what Jenkins does to builds: SIGTERM, dead holders, stale leases.

Against the real influxd; the SIGTERM'd scheduler is a real subprocess.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from ecaljenkins.schema import lock_point
from ecaljenkins.scheduler.lease import STALE_SECONDS, Lease, break_lease, holder_is_dead
from ecaljenkins.workflows import Workflow

from fixtures.cli import MODULES
from fixtures.leaks import record_output
from scheduling import make_campaign, make_runs


def lease_of(client) -> dict | None:
    return Lease(client, "reader").read()


def hold(client, holder: str, since: float, seconds: float = 1800.0) -> None:
    """Write a lease of ``holder`` taken at ``since``, as a scheduler does."""
    client.write([lock_point(holder, since + seconds, since)])


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def schedule(run_cli, db, tmp_path, *args):
    return run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                   "--log-dir", str(tmp_path / "logs"), *args)


def test_sigterm_releases_the_lease(client, db, tmp_path, run_cli):
    started, stop = tmp_path / "started", tmp_path / "stop"
    command = f"touch {started}; while [ ! -e {stop} ]; do sleep 0.05; done"
    make_campaign(client, "c1", [Workflow("a", command)], make_runs(1))
    proc = subprocess.Popen([sys.executable, "-m", MODULES["ecalautomation.py"], "--db", db,
                             "schedule", "--executor", "local", "--log-dir",
                             str(tmp_path / "logs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not started.exists():   # the scheduler is inside its cycle, holding the lease
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.05)
        held = lease_of(client)
        assert held["holder"].startswith(f"{socket.gethostname()}:{proc.pid}:")
        assert held["expires"] > time.time() + 1000
        proc.send_signal(signal.SIGTERM)          # what Jenkins does when it aborts a build
        time.sleep(0.5)
        stop.touch()                              # let the build the scheduler started end
        out, err = proc.communicate(timeout=60)
    finally:
        stop.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    record_output(out, err)
    assert proc.returncode == 128 + signal.SIGTERM, (out, err)
    assert lease_of(client)["expires"] == 0       # released on the way out
    # the next cycle is not skipped
    again = schedule(run_cli, db, tmp_path)
    assert again.code == 0 and "skipping" not in again.out, again


def test_lease_of_a_dead_process_on_this_host_is_taken_over(client, db, tmp_path, run_cli):
    make_campaign(client, "c1", [Workflow("a", "true")], make_runs(1))
    gone = f"{socket.gethostname()}:{dead_pid()}:0badc0de"
    assert holder_is_dead(gone)
    hold(client, gone, time.time() - 60)
    result = schedule(run_cli, db, tmp_path)
    assert result.code == 0 and "skipping" not in result.out, result
    assert f"took over the lease of {gone}" in result.out
    assert lease_of(client)["expires"] == 0


def test_live_or_remote_holders_keep_their_lease(client, db, tmp_path, run_cli):
    make_campaign(client, "c1", [Workflow("a", "true")], make_runs(1))
    for holder in (f"{socket.gethostname()}:{os.getpid()}:0000beef",   # alive, here
                   f"elsewhere.cern.ch:{dead_pid()}:0000beef"):       # unknown: another host
        assert not holder_is_dead(holder)
        hold(client, holder, time.time() - 60)
        result = schedule(run_cli, db, tmp_path)
        assert result.code == 0, result           # a fresh lease: green, skipped
        assert f"another scheduler ({holder}) holds the lease" in result.out
        assert lease_of(client)["holder"] == holder


def test_skipping_for_a_stale_lease_exits_non_zero_naming_the_way_out(client, db, tmp_path,
                                                                      run_cli):
    make_campaign(client, "c1", [Workflow("a", "true")], make_runs(1))
    holder = "elsewhere.cern.ch:4242:0000beef"
    hold(client, holder, time.time() - STALE_SECONDS - 120)
    result = schedule(run_cli, db, tmp_path)
    assert result.code == 3, result               # unstable in Jenkins: a human is needed
    assert f"another scheduler ({holder}) holds the lease" in result.out + result.err
    assert f"'ecalautomation.py --db {db} schedule --break-lease'" in result.out + result.err
    # --break-lease names the holder, and the next cycle runs
    broken = run_cli("ecalautomation.py", "--db", db, "schedule", "--break-lease")
    assert broken.code == 0, broken
    assert f"broke the lease of database {db!r} held by {holder} since" in broken.out
    assert lease_of(client)["expires"] == 0
    result = schedule(run_cli, db, tmp_path)
    assert result.code == 0 and "skipping" not in result.out, result
    broken = run_cli("ecalautomation.py", "--db", db, "schedule", "--break-lease")
    assert broken.code == 0 and f"the lease of database {db!r} was not held" in broken.out


def test_break_lease_library(client):
    assert break_lease(client) is None
    hold(client, "h:1:x", time.time())
    assert break_lease(client)["holder"] == "h:1:x"
    assert lease_of(client)["expires"] == 0
