"""The htcondor executor against the session's real pool (tests/fixtures/condor.py).

Builds are submitted by a real scheduler cycle, run the real wrapper inside the
pool's jobs (which report to the session's influxd) and are reconciled from
what the schedd says. Nothing is mocked; where a test needs a job that cannot
report, its interpreter is ``/bin/true`` or ``/bin/false`` instead of Python.
"""

import itertools
import stat
import time

import pytest

from ecaljenkins.condor import TIMEOUT_ATTR, TRIGGER_ATTR, HTCondorExecutor, quote_arguments
from ecaljenkins.executors import FINISHED, BuildRequest
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.settings import Settings
from ecaljenkins.workflows import Workflow

from fixtures.influx import WRITER
from fixtures.leaks import record_output
from scheduling import FIRST_RUN, make_campaign, make_runs, rows

R = FIRST_RUN
WAIT = 90   # seconds a job gets to end (about 2 s is typical)
_names = itertools.count()


class Crash(Exception):
    """The scheduler process dies."""


class Dying:
    """``executor``, except that the scheduler dies in ``start``: after submitting the
    job (``submitted``) or before."""

    def __init__(self, executor, submitted):
        self.executor, self.submitted = executor, submitted

    def __getattr__(self, name):
        return getattr(self.executor, name)

    def start(self, request):
        if self.submitted:
            self.executor.start(request)
        raise Crash()


@pytest.fixture
def condor(condor_pool, influxd, db, env):
    """A function making an htcondor executor on the pool, reporting to ``db``; every
    job of ``db`` is removed at the end, so none holds a slot of the next test."""
    settings = Settings.from_env()
    made = []

    def make(python=None, **kwargs):
        executor = HTCondorExecutor(log_dir=condor_pool.make_dir(f"logs-{next(_names)}"),
                                    python=python or condor_pool.python(), settings=settings,
                                    **kwargs)
        made.append(executor)
        return executor
    yield make
    condor_pool.schedd().act(condor_pool.htcondor.JobAction.Remove, f'EcalDb == "{db}"')


def scheduler(client, executor, **kwargs):
    return Scheduler(client, executor, lease_settle=0, **kwargs)


def jobs(pool, db, history=True):
    """Every job ad of ``db``: the queue's, then the history's."""
    projection = ["ClusterId", "JobStatus", TRIGGER_ATTR, "EcalRuns", "Args", "Arguments",
                  "Environment", "Env", "AcctGroup", "Requirements", TIMEOUT_ATTR,
                  "PeriodicRemove"]
    # the queue first: a job leaving it before the history is read is in the history
    queued = {(ad["ClusterId"], ad["ProcId"]): ad for ad in
              pool.schedd().query(f'EcalDb == "{db}"', [*projection, "ProcId"])}
    ads = {}
    if history:
        ads = {(ad["ClusterId"], ad["ProcId"]): ad for ad in
               pool.schedd().history(f'EcalDb == "{db}"', [*projection, "ProcId"])}
    return list({**ads, **queued}.values())   # a job in both (it just left): once


def logs(executor):
    """The build logs and job outputs of ``executor``, for a failure's message."""
    return {path.name: path.read_text(errors="replace")[-2000:]
            for path in executor.log_dir.rglob("*.*") if path.suffix in (".log", ".out")}


def wait_until(what, predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s: {what() if callable(what) else what}")


def cycle_until(sched, ctrl, task, wanted, timeout=WAIT):
    """Run cycles until every row of ``task`` has a status of ``wanted``."""
    def settled():
        sched.cycle()
        stored = rows(ctrl, task)
        return stored if all(row["status"] in wanted for row in stored.values()) else None
    return wait_until(f"{task} rows {wanted}", settled, timeout)


def wait_status(pool, cluster, status):
    return wait_until(f"job {cluster} JobStatus {status}", lambda: [
        ad for ad in pool.schedd().query(f"ClusterId == {cluster}", ["JobStatus"])
        if ad["JobStatus"] == status])


def test_arguments_quoting_keeps_quotes_and_dollars_literal():
    assert quote_arguments(["-c", "echo \"it's\" $HOME $(x)"]) == \
        "\"'-c' 'echo \"\"it''s\"\" $(DOLLAR)HOME $(DOLLAR)(x)'\""


def test_each_build_is_a_job_running_the_wrapper_which_reports(condor_pool, condor, client,
                                                               db):
    command = "echo \"run $RUN_NUMBER of $TASK: it's $((1 + 2))\"; echo to-stderr >&2"
    ctrl = make_campaign(client, "c1", [Workflow("reco", command)], make_runs(2))
    executor = condor()
    report = scheduler(client, executor).cycle()
    assert not report.failed, report.campaigns[0].errors
    triggered = report.campaigns[0].triggered
    assert len(triggered) == 2
    queued = rows(ctrl, "reco")
    ads = {ad[TRIGGER_ATTR]: ad for ad in jobs(condor_pool, db, history=False)}
    # the cluster id is recorded as the queue id, and the job carries the trigger id
    assert {row["trigger"]: row["queue_id"] for row in queued.values()} == \
        {trigger: ad["ClusterId"] for trigger, ad in ads.items()}
    assert all(row["status"] in ("queued", "running", "done") for row in queued.values())
    done = wait_until(lambda: f"both builds reported done: {rows(ctrl, 'reco')}, "
                      f"{logs(executor)}", lambda: (
        lambda stored: stored if all(r["status"] == "done" for r in stored.values())
        else None)(rows(ctrl, "reco")))
    for run, row in done.items():
        assert row["build"] == row["queue_id"]   # the wrapper reports the cluster id
        log = executor.log_dir / db / "c1" / "reco" / f"{run}-1.log"
        assert row["log"] == str(log)
        assert f"run {run} of reco: it's 3" in log.read_text()
        assert "to-stderr" in log.read_text()
    # credentials never in the job's arguments or environment; the settings file is
    # the job user's alone
    password = WRITER[1]
    for ad in jobs(condor_pool, db):
        assert password not in repr(ad)
    settings = executor.pool.settings_file()
    info = settings.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == condor_pool.job_uid
    assert password in settings.read_text()


def test_a_build_submitted_before_a_crash_is_found_by_its_trigger_not_submitted_again(
        condor_pool, condor, client, db):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "true")], make_runs(1))
    executor = condor()
    dying = Dying(executor, submitted=True)
    with pytest.raises(Crash):
        scheduler(client, dying).cycle()
    intent = rows(ctrl, "reco")[R]
    assert intent["status"] == "queued" and intent["queue_id"] == 0
    final = cycle_until(scheduler(client, executor), ctrl, "reco", {"done"})
    ads = jobs(condor_pool, db)
    assert len(ads) == 1 and ads[0][TRIGGER_ATTR] == intent["trigger"]
    assert final[R]["queue_id"] == ads[0]["ClusterId"] and final[R]["attempt"] == 1


@pytest.mark.parametrize("python, status, reason", [
    ("/bin/true", "done", "exited with code 0 without a report from the workflow"),
    ("/bin/false", "failed", "exited with code 1 without a report from the workflow"),
])
def test_a_job_ending_without_a_report_is_judged_by_its_exit_code(
        condor_pool, condor, client, db, python, status, reason):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "true", max_retries=0)],
                         make_runs(1))
    sched = scheduler(client, condor(python=python))
    sched.cycle()
    cluster = rows(ctrl, "reco")[R]["queue_id"]
    final = cycle_until(sched, ctrl, "reco", {status})
    assert final[R]["reason"] == f"HTCondor job {cluster}.0 {reason}"


def test_builds_ended_without_a_report_are_read_from_the_history_in_one_query(
        condor_pool, condor, client, db):
    """Each history query is a process of the schedd (~0.3 s): one per cycle for all
    the builds no longer queued, each judged by its own job's exit code."""
    interpreter = condor_pool.make_dir(f"bin-{next(_names)}") / "exits"
    interpreter.write_text(f'#!/bin/sh\ncase "$*" in *"--runs {R + 1} "*) exit 3;; esac\n')
    interpreter.chmod(0o755)
    ctrl = make_campaign(client, "c1", [Workflow("reco", "true", max_retries=0)],
                         make_runs(4))
    executor = condor(python=str(interpreter))
    sched = scheduler(client, executor)
    sched.cycle()
    clusters = {run: row["queue_id"] for run, row in rows(ctrl, "reco").items()}
    wait_until("every job out of the queue", lambda: len(jobs(condor_pool, db)) == 4
               and not jobs(condor_pool, db, history=False))
    before = executor.pool.history_reads
    report = sched.cycle()
    assert executor.pool.history_reads - before == 1
    assert report.campaigns[0].reconciled == {"done": 3, "failed": 1}
    final = rows(ctrl, "reco")
    for run, row in final.items():
        code = 3 if run == R + 1 else 0
        assert row["status"] == ("failed" if code else "done")
        assert row["reason"] == (f"HTCondor job {clusters[run]}.0 exited with code {code} "
                                 "without a report from the workflow")
    sched.cycle()   # nothing in flight: the history is not read
    assert executor.pool.history_reads - before == 1


@pytest.mark.parametrize("tool, status, reason", [
    ("condor_hold", 5, "held (by the test{}); removed"),
    ("condor_rm", 3, "removed: by the test{}"),
], ids=["held", "removed"])
def test_a_held_or_removed_job_fails_with_the_reason(condor_pool, condor, client, db, tool,
                                                      status, reason):
    """A held job is removed too, so it does not wait in the queue for ever."""
    ctrl = make_campaign(client, "c1", [Workflow("reco", "sleep 600", max_retries=0)],
                         make_runs(1))
    sched = scheduler(client, condor())
    sched.cycle()
    cluster = rows(ctrl, "reco")[R]["queue_id"]
    wait_status(condor_pool, cluster, 2)
    done = condor_pool.command(tool, "-reason", "by the test", str(cluster))
    record_output(done.stdout, done.stderr)
    wait_until(f"job {cluster} {tool}", lambda: [
        ad for ad in jobs(condor_pool, db) if ad["JobStatus"] == status])
    final = cycle_until(sched, ctrl, "reco", {"failed"})
    # the daemons may append to the reason (the user who acted)
    head, tail = reason.split("{}")
    assert final[R]["reason"].startswith(f"HTCondor job {cluster}.0 {head}")
    assert final[R]["reason"].endswith(tail)
    wait_until("no job left in the queue", lambda: not jobs(condor_pool, db, history=False))


def test_the_timeout_is_a_periodic_removal_by_the_schedd(condor_pool, condor, db):
    """A 3-second timeout (workflows count in minutes, from 1: the request is made
    by hand) on a job that would sleep 10 minutes."""
    sleeper = condor_pool.make_dir(f"bin-{next(_names)}") / "sleeper"
    sleeper.write_text("#!/bin/sh\nexec sleep 600\n")
    sleeper.chmod(0o755)
    executor = condor(python=str(sleeper))
    request = BuildRequest(db, "c1", "reco", (R,), "a" * 32, 1, "true", timeout_minutes=0.05)
    cluster = executor.start(request)
    ad = jobs(condor_pool, db, history=False)[0]
    assert ad[TIMEOUT_ATTR] == 3 and TIMEOUT_ATTR in str(ad["PeriodicRemove"])

    def ended():
        executor.new_cycle()
        fact = executor.locate(request.job, cluster, 0, request.trigger_id)
        return fact if fact.state == FINISHED else None
    fact = wait_until("the job removed at its timeout", ended)
    assert fact.result == "FAILURE"
    assert fact.message == f"HTCondor job {cluster}.0 removed: killed at its timeout of 0.05 min"


def test_a_vanished_job_is_submitted_again_once_then_lost(condor_pool, condor, client, db):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "true", max_retries=0)],
                         make_runs(1))
    executor = condor()
    dying = Dying(executor, submitted=False)
    with pytest.raises(Crash):
        scheduler(client, dying, grace=0).cycle()
    report = scheduler(client, executor, grace=0).cycle()
    assert any("triggered again, once" in w for w in report.campaigns[0].warnings)
    relaunched = rows(ctrl, "reco")[R]
    assert relaunched["relaunched"] == 1 and relaunched["attempt"] == 1
    cycle_until(scheduler(client, executor, grace=0), ctrl, "reco", {"done"})
    assert len(jobs(condor_pool, db)) == 1
    # lost a second time: failed
    ctrl2 = make_campaign(client, "c2", [Workflow("reco", "true", max_retries=0)],
                          make_runs(1))
    with pytest.raises(Crash):
        scheduler(client, dying, grace=0).cycle("c2")
    with pytest.raises(Crash):
        scheduler(client, dying, grace=0).cycle("c2")
    scheduler(client, executor, grace=0).cycle("c2")
    lost = rows(ctrl2, "reco")[R]
    assert lost["status"] == "failed" and lost["reason"].startswith("lost:")


def test_max_in_flight_node_as_accounting_group_or_machine(condor_pool, condor, client, db):
    ctrl = make_campaign(client, "c1", [
        Workflow("reco", "sleep 600", max_in_flight=1, node="group_ecal.calib"),
        Workflow("pinned", "true", node="no-such-machine")], make_runs(3))
    sched = scheduler(client, condor())
    sched.cycle()
    assert sorted(row["status"] for row in rows(ctrl, "reco").values()) == \
        ["new", "new", "queued"]
    ads = {ad["EcalRuns"]: ad for ad in jobs(condor_pool, db, history=False)
           if ad.get("AcctGroup") == "group_ecal.calib"}
    assert list(ads) == [str(R)]
    pinned = [ad for ad in jobs(condor_pool, db, history=False) if "no-such-machine"
              in str(ad["Requirements"])]
    assert len(pinned) == 3
    # no machine of that name: the jobs stay idle, the rows queued
    time.sleep(3)
    sched.cycle()
    assert {row["status"] for row in rows(ctrl, "pinned").values()} == {"queued"}
    assert sorted(row["status"] for row in rows(ctrl, "reco").values())[:2] == ["new", "new"]


def test_schedule_command_with_the_htcondor_executor(condor_pool, client, db, run_cli,
                                                     tmp_path):
    make_campaign(client, "c1", [Workflow("reco", "true")], make_runs(1))
    logs = condor_pool.make_dir(f"cli-logs-{next(_names)}")
    extra = {**condor_pool.env(), "ECAL_CONDOR_PYTHON": condor_pool.python(),
             "ECAL_LOG_DIR": str(logs)}
    try:
        res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "htcondor",
                      extra_env=extra)
        assert res.code == 0, res.err
        assert "1 build(s) triggered (reco: 1)" in res.out
        bad = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "htcondor",
                      "--schedd", "no-such-schedd", extra_env=extra)
        assert bad.code == 2 and bad.err == ("ecalautomation.py: error: no schedd named "
                                             "'no-such-schedd' in the HTCondor pool of "
                                             "CONDOR_CONFIG\n")
    finally:
        condor_pool.schedd().act(condor_pool.htcondor.JobAction.Remove, f'EcalDb == "{db}"')


def test_cancel_removes_the_build_job(condor_pool, condor, client, db):
    from ecaljenkins.cancel import cancel
    ctrl = make_campaign(client, "c1", [Workflow("reco", "sleep 600")], make_runs(2))
    executor = condor()
    scheduler(client, executor).cycle()
    clusters = [row["queue_id"] for row in rows(ctrl, "reco").values()]
    wait_until("one job running", lambda: any(
        ad["JobStatus"] == 2 for ad in jobs(condor_pool, db, history=False)))
    summary = cancel(ctrl, lambda: executor, "reco", "failed")
    assert not summary.errors, summary.errors
    assert sum(summary.builds.values()) == 2 and "stopped" in summary.builds
    assert {row["status"] for row in rows(ctrl, "reco").values()} == {"failed"}
    wait_until("the jobs removed", lambda: not jobs(condor_pool, db, history=False))
    assert {ad["ClusterId"] for ad in jobs(condor_pool, db)} == set(clusters)
