"""Tasks of many jobs on the session's real pool: a build submits a cluster and ends,
each job reports by its id, the scheduler resubmits failed jobs and rolls up."""

import itertools
import re
import sys
import time

import pytest

from ecaljenkins import taskjobs
from ecaljenkins.condor import CondorPool
from ecaljenkins.condorjobs import JobSpec, check, submit
from ecaljenkins.executors import LocalExecutor
from ecaljenkins.jobctrl import reprocess
from ecaljenkins.report import render_report
from ecaljenkins.status import campaign_status
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.settings import Settings
from ecaljenkins.workflows import Workflow

from fixtures.leaks import run_recorded
from scheduling import FIRST_RUN, make_campaign, make_runs, rows

R = FIRST_RUN
WAIT = 120
_names = itertools.count()

SCRIPT = '''
import pathlib
from ecaljenkins import Handler
from ecaljenkins.condorjobs import JobSpec

HERE = pathlib.Path(__file__).parent

class Split(Handler):
    def add_arguments(self, parser):
        parser.add_argument("--chunk", type=int)

    def jobs(self, runs):
        return [JobSpec(f"{run}-{chunk}", (run,), ("--chunk", str(chunk)))
                for run in runs for chunk in range(3)]

    def process_job(self, jid, runs):
        if SLEEP:
            import time
            time.sleep(600)
        marker = HERE / f"failed-once-{jid}"
        if FAILING and jid.endswith("-1") and (ALWAYS or not marker.exists()):
            marker.write_text("x")
            raise RuntimeError(f"chunk {self.args.chunk} broke")
        out = HERE / f"{jid}.out"
        out.write_text(f"run {runs[0]} chunk {self.args.chunk}")
        self.register_output(runs[0], str(out))

if __name__ == "__main__":
    raise SystemExit(Split(task="split").run())
'''


@pytest.fixture
def many(condor_pool, influxd, db, env, monkeypatch):
    """A function writing the task's script (failing chunk 1 of each run once, or
    always; or its jobs sleeping) in a directory the jobs share; builds run here (local executor) with
    the pool's CONDOR_CONFIG, the jobs on the pool."""
    def make(always=False, sleep=False):
        directory = condor_pool.make_dir(f"many-{next(_names)}")
        script = directory / "split.py"
        script.write_text(f"FAILING = True\nALWAYS = {always}\nSLEEP = {sleep}\n" + SCRIPT)
        monkeypatch.setenv("ECAL_CONDOR_PYTHON", condor_pool.python())
        monkeypatch.setenv("ECAL_LOG_DIR", str(condor_pool.make_dir(f"many-logs-{next(_names)}")))
        return f"{sys.executable} {script}", directory
    yield make
    condor_pool.schedd().act(condor_pool.htcondor.JobAction.Remove, f'EcalDb == "{db}"')


def cycle_until(sched, ctrl, wanted, timeout=WAIT, reason=None):
    """Cycle until every row is in a ``wanted`` status (with ``reason``, when given: a
    row is also failed for a moment between a job's failure and its resubmission)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sched.cycle()
        stored = rows(ctrl, "split")
        if all(row["status"] in wanted and reason in (None, row.get("reason"))
               for row in stored.values()):
            return stored
        time.sleep(0.5)
    raise AssertionError(f"rows not {wanted} within {timeout}s: {rows(ctrl, 'split')}")


def test_a_task_of_many_jobs_resubmits_the_failed_one_and_rolls_up(many, client, db,
                                                                  tmp_path):
    command, directory = many()
    ctrl = make_campaign(client, "c1", [Workflow("split", command, max_retries=2,
                                                 retry_delay=0)], make_runs(2))
    sched = Scheduler(client, LocalExecutor(log_dir=tmp_path), lease_settle=0)
    report = sched.cycle()
    assert not report.failed, report.campaigns[0].errors
    assert rows(ctrl, "split")[R]["status"] in ("running", "done"), \
        [path.read_text() for path in tmp_path.rglob("*.log")]
    jobs = taskjobs.read_jobs(client, "c1", "split")
    assert sorted(job.jid for job in jobs) == sorted(f"{run}-{c}" for run in (R, R + 1)
                                                     for c in range(3))
    # the build ended; its rows are its jobs' (running while any is idle or running)
    final = cycle_until(sched, ctrl, {"done"})
    for run in (R, R + 1):
        assert final[run]["output"] == ",".join(str(directory / f"{run}-{c}.out")
                                                for c in range(3))
    history = taskjobs.job_history(client, "c1", "split", f"{R}-1")
    assert [point["status"] for point in history] == \
        ["idle", "running", "failed", "idle", "running", "done"]
    # status and the report show the jobs per (run, task)
    doc = campaign_status(ctrl)
    assert doc["jobs"] == {"split": {str(R): {"done": 3, "resubmitted": 1},
                                     str(R + 1): {"done": 3, "resubmitted": 1}}}
    assert "<h2>Jobs of the tasks of many jobs</h2>" in render_report(ctrl)
    ids = [point["condor_id"] for point in history if point["status"] == "idle"]
    assert len(set(ids)) == 2     # resubmitted: another cluster
    assert history[2]["reason"] == "chunk 1 broke"


def test_a_job_out_of_retries_fails_its_run_for_good(many, client, db, tmp_path):
    command, _ = many(always=True)
    ctrl = make_campaign(client, "c1", [Workflow("split", command, max_retries=1,
                                                 retry_delay=0)], make_runs(1))
    sched = Scheduler(client, LocalExecutor(log_dir=tmp_path), lease_settle=0)
    cycle_until(sched, ctrl, {"failed"}, reason=f"job {R}-1 failed 2 times: out of retries")
    sched.cycle()
    assert rows(ctrl, "split")[R]["status"] == "failed"   # the build is not started again
    history = taskjobs.job_history(client, "c1", "split", f"{R}-1")
    assert [point["status"] for point in history].count("idle") == 2
    # reprocessed: a fresh build, whose jobs get their retries again
    assert reprocess(ctrl, "split").reset == [R]
    cycle_until(sched, ctrl, {"failed"}, reason=f"job {R}-1 failed 2 times: out of retries")
    history = taskjobs.job_history(client, "c1", "split", f"{R}-1")
    assert [point["status"] for point in history].count("idle") == 4


def test_jobs_ended_without_a_report_are_read_from_the_history_in_one_query(
        condor_pool, client, db, env):
    """Jobs whose interpreter exits without reporting: the next check finds them all
    in the history with one query and judges each by its own exit code."""
    interpreter = condor_pool.make_dir(f"exits-{next(_names)}") / "exits"
    interpreter.write_text(f'#!/bin/sh\ncase "$*" in *"--jid {R}-1") exit 3;; esac\n')
    interpreter.chmod(0o755)
    workflow = Workflow("split", "true", max_retries=0)
    ctrl = make_campaign(client, "c1", [workflow], make_runs(2))
    pool = CondorPool(log_dir=condor_pool.make_dir(f"exits-logs-{next(_names)}"),
                      python=str(interpreter), settings=Settings.from_env())
    specs = [JobSpec(f"{run}-{chunk}", (run,)) for run in (R, R + 1) for chunk in range(2)]
    cluster = submit(pool, client, "c1", "split", ["/bin/true"], specs)
    try:
        def ended():
            return not condor_pool.schedd().query(f"ClusterId == {cluster}", ["ProcId"])
        deadline = time.monotonic() + WAIT
        while not ended() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert ended(), f"jobs of cluster {cluster} still queued after {WAIT}s"
        warnings = []
        checked = check(client, "c1", {"split": workflow}, lambda: pool, time.time(),
                        warnings)
        assert pool.history_reads == 1 and not warnings
        assert (checked.silent, checked.exhausted) == (4, 1)
        statuses = {job.jid: job.status for job in taskjobs.read_jobs(client, "c1", "split")}
        assert statuses == {f"{R}-0": "done", f"{R}-1": "failed", f"{R + 1}-0": "done",
                            f"{R + 1}-1": "done"}
        assert {run: row["status"] for run, row in rows(ctrl, "split").items()} == \
            {R: "failed", R + 1: "done"}
    finally:
        condor_pool.schedd().act(condor_pool.htcondor.JobAction.Remove,
                                 f"ClusterId == {cluster}")


def test_cancel_removes_the_jobs_and_the_scheduler_leaves_them(many, client, db, tmp_path,
                                                               condor_pool, run_cli):
    """The build that submitted the jobs is over: cancel (any executor) removes the
    jobs from the schedd, and the scheduler does not resubmit them."""
    command, _ = many(sleep=True)
    ctrl = make_campaign(client, "c1", [Workflow("split", command, max_retries=2,
                                                 retry_delay=0)], make_runs(1))
    sched = Scheduler(client, LocalExecutor(log_dir=tmp_path), lease_settle=0)
    sched.cycle()
    assert rows(ctrl, "split")[R]["status"] == "running"

    def queued():
        return list(condor_pool.schedd().query(f'EcalDb == "{db}"', ["ClusterId"]))
    assert len(queued()) == 3
    res = run_cli("ecalrunctrl.py", "--db", db, "cancel", "-c", "c1", "--executor", "local")
    assert res.code == 0, res.err
    assert res.out.strip() == ("campaign 'c1': 0 build(s) cancelled; 3 HTCondor job(s) "
                               "removed; 1 (run, task) set to failed"), res.out
    assert queued() == []
    for _ in range(2):   # the removed jobs are not checked, failed, resubmitted
        sched.cycle()
    row = rows(ctrl, "split")[R]
    assert (row["status"], row["reason"]) == ("failed", "cancelled by writer")
    assert queued() == [] and taskjobs.read_jobs(client, "c1", "split") == []
    for chunk in range(3):   # submitted once, maybe started, never failed
        statuses = [point["status"] for point in
                    taskjobs.job_history(client, "c1", "split", f"{R}-{chunk}")]
        assert statuses in (["idle"], ["idle", "running"]), statuses


def test_demo_with_the_htcondor_executor(condor_pool, tmp_path):
    """``make demo DEMO_ARGS='--executor htcondor'``, shortened: its own pool beside the
    session's, demo-split's jobs on it, one failing once and resubmitted."""
    workdir = condor_pool.make_dir(f"demo-{next(_names)}")
    proc = run_recorded([sys.executable, "-m", "ecaljenkins.demo", "--executor", "htcondor",
                         "--runs", "3", "--workdir", str(workdir)], timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    out = proc.stdout
    history = out[out.index("$ condor_history"):out.index("# Nothing is left to start")]
    jobs = [line.split() for line in history.splitlines()[1:]]
    assert all(len(job) == 4 and job[0].isdigit() for job in jobs)
    by_job = {}
    for cluster, _, job, code in jobs:
        by_job.setdefault(job, []).append((int(cluster), code))
    resubmitted = {job: runs for job, runs in by_job.items() if len(runs) > 1}
    assert len(by_job) == 9 and len(resubmitted) == 1   # 3 runs x 3 chunks, one failed once
    (job, attempts), = resubmitted.items()
    assert job.endswith("-1") and [code for _, code in attempts] == ["1", "0"]
    final = out[out.index("# Nothing is left to start"):]
    assert re.search(r"^demo-split +0 +0 +0 +3 +0 +3 ", final, re.M)
    run = job.split("/")[-1].split("-")[0]
    assert re.search(rf"^demo-split +{run} +0 +0 +3 +0 +1$", final, re.M)


def test_a_cycle_reads_the_submit_descriptions_only_to_resubmit(client, influxd, db):
    """~1.5 kB a job: a cycle whose jobs wait (here: one failed, its back-off not over)
    reads their cluster ids, not their descriptions, and needs no schedd."""
    from ecaljenkins.condorjobs import JobSpec, _report_idle, check
    from ecaljenkins.influx import Influx
    from fixtures.influx import WRITER
    wf = Workflow("split", "s", max_retries=2, retry_delay=600)
    make_campaign(client, "c1", [wf], make_runs(1))
    _report_idle(client, "c1", "split", [(JobSpec("0", (R,)), {"executable": "/bin/true"},
                                          "7.0")])
    taskjobs.report(client, "c1", "split", {"0": [R]}, "failed")
    queries = []

    class Recording(Influx):
        def query(self, q, **kwargs):
            queries.append(q)
            return super().query(q, **kwargs)

    recording = Recording.from_settings(influxd.settings(*WRITER, db=db))
    checked = check(recording, "c1", {"split": wf}, None, time.time(), [])
    assert (checked.waiting, checked.resubmitted) == (frozenset({("split", R)}), 0)
    assert any("condor_id" in q for q in queries)
    assert not any("submit" in q for q in queries), queries
