"""HTCondor figures of ``make bench`` (docs/performance.md), against a private pool.

* builds: 1,000 trivial builds submitted by one scheduler cycle through the
  ``htcondor`` executor (one job each), then reconciled by the next cycle (one
  queue read, every (run, task) updated): builds per second for each;
* finished builds: 1,000 trivial builds that really run to completion on a pool of
  ``--slots`` slots without reporting (their interpreter is ``exit 0``): submitted by
  one cycle, run by the pool (the pool's rate, not ours), then reconciled by ONE cycle
  that finds them all in the schedd's history and sets them done by their exit code;
* jobs: a task of many jobs with 10,000 jobs in flight (one cluster), and the time
  of a scheduler cycle checking them (their reports, the queue, the roll-up).

Except for the finished builds, the jobs' interpreter is a script that sleeps:
nothing reports, so what is timed is the scheduler's and the schedd's work, not
the jobs'. Loopback only; the pools and the influxd are private and stopped at
the end.

Run: ``python bench/condor_bench.py [--builds 1000] [--slots 32] [--jobs 10000]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import NamedTuple

from ecaljenkins import localcondor
from ecaljenkins.campaign import RunCtrl
from ecaljenkins.condor import CondorPool, HTCondorExecutor
from ecaljenkins.condorjobs import JobSpec, submit
from ecaljenkins.influx import Influx
from ecaljenkins.localinflux import LocalInfluxd
from ecaljenkins.registry import Run
from ecaljenkins.scheduler import CampaignReport, Scheduler
from ecaljenkins.workflows import Workflow

FIRST_RUN = 355100


def _runs(count: int) -> list[Run]:
    return [Run.from_attrs({"run_number": FIRST_RUN + i, "fill_number": 8000 + i // 3,
                            "era": "Run2022C", "sequence": "GLOBAL-RUN",
                            "start_time": "2022-07-17T06:00:00",
                            "end_time": "2022-07-17T07:00:00"}) for i in range(count)]


def _campaign(client: Influx, name: str, workflow: Workflow, runs: int) -> RunCtrl:
    ctrl = RunCtrl(client, name)
    ctrl.create("rereco")
    ctrl.update_rtype("all", add=[workflow.task],
                      definitions={workflow.task: workflow.to_json()})
    ctrl.inject(_runs(runs))
    return ctrl


def _interpreter(pool: localcondor.LocalCondor, name: str, body: str) -> str:
    """A job interpreter that never reports (the wrapper never runs): ``body``."""
    path = pool.make_dir(f"bench-bin-{name}") / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _sleeper(pool: localcondor.LocalCondor) -> str:
    """The jobs stay in flight."""
    return _interpreter(pool, "sleeper", "exec sleep 3600")


def _client(server, db: str) -> Influx:
    server.query(f"CREATE DATABASE {db}")
    return Influx(db, server.url, user=server.admin, password=server.admin_password)


def _builds(pool, server, campaign: str, workflow: Workflow, n_builds: int,
            python: str) -> tuple[RunCtrl, HTCondorExecutor, Scheduler]:
    """A campaign of ``n_builds`` builds (database ``bench_<campaign>``), an htcondor
    executor on ``pool`` and a scheduler that submits them all in one cycle."""
    db = f"bench_{campaign}"
    client = _client(server, db)
    ctrl = _campaign(client, campaign, workflow, n_builds)
    executor = HTCondorExecutor(log_dir=pool.make_dir(db), python=python,
                                settings=server.settings(db=db))
    return ctrl, executor, Scheduler(client, executor, lease_settle=0, max_triggers=n_builds)


def _timed_cycle(sched: Scheduler) -> tuple[CampaignReport, float]:
    """The one campaign's report of a cycle, and the cycle's seconds."""
    started = time.perf_counter()
    report = sched.cycle()
    return report.campaigns[0], time.perf_counter() - started


def measure_builds(pool, server, n_builds: int, python: str, log) -> tuple[float, float]:
    _, executor, sched = _builds(pool, server, "builds",
                                 Workflow("reco", "true", timeout_minutes=60), n_builds, python)
    report, submit_s = _timed_cycle(sched)
    triggered = len(report.triggered)
    log(f"  {triggered} builds submitted in {submit_s:.1f}s")
    report, reconcile_s = _timed_cycle(sched)
    log(f"  reconciled in {reconcile_s:.1f}s: {dict(report.reconciled)}")
    executor.pool.remove('EcalCampaign == "builds"', "removing the benchmark's builds")
    return triggered / submit_s, triggered / reconcile_s


class Finished(NamedTuple):
    """Builds per second submitted and reconciled, jobs per second the pool ran, and
    the history queries of the reconciling cycle."""

    submitted: float
    pool_rate: float
    reconciled: float
    history_reads: int


def measure_finished(server, n_builds: int, slots: int, log,
                     timeout: float = 900.0) -> Finished:
    """Builds that ran to completion without a report, reconciled from the history.

    A pool of its own, so that no sleeper of the other measurements holds a slot;
    it fails loudly unless the reconciling cycle set every row done.
    """
    with localcondor.LocalCondor(cpus=slots) as pool:
        ctrl, executor, sched = _builds(pool, server, "finished", Workflow("reco", "true"),
                                        n_builds, _interpreter(pool, "exit0", "exit 0"))
        started = time.perf_counter()
        report, submit_s = _timed_cycle(sched)
        if len(report.triggered) != n_builds:
            raise SystemExit(f"finished builds: {len(report.triggered)} submitted, not "
                             f"{n_builds}: {report.errors[:3]}")
        log(f"  {n_builds} builds submitted in {submit_s:.1f}s to {slots} slots")
        deadline = time.monotonic() + timeout
        while executor.pool.schedd.query('EcalCampaign == "finished"', ["ClusterId"]):
            if time.monotonic() > deadline:
                raise SystemExit(f"finished builds: the pool did not run them within "
                                 f"{timeout:g}s")
            time.sleep(0.2)
        ran_s = time.perf_counter() - started
        log(f"  the pool ran them all {ran_s:.1f}s after the first submission")
        reads = executor.pool.history_reads
        report, reconcile_s = _timed_cycle(sched)
        reads = executor.pool.history_reads - reads
        reconciled = dict(report.reconciled)
        log(f"  reconciled from the history in {reconcile_s:.2f}s ({reads} history "
            f"queries): {reconciled}")
    statuses = ctrl.status_counts()["reco"]
    if reconciled != {"done": n_builds} or statuses != {"done": n_builds}:
        raise SystemExit(f"finished builds: the reconciling cycle set {reconciled}, "
                         f"the rows are {statuses}, not {n_builds} done")
    return Finished(n_builds / submit_s, n_builds / ran_s, n_builds / reconcile_s, reads)


def measure_jobs(pool, server, n_jobs: int, python: str, log) -> tuple[float, float]:
    client = _client(server, "bench_jobs")
    runs = 100
    workflow = Workflow("split", "true", max_retries=2)
    _campaign(client, "jobs", workflow, runs)
    condor = CondorPool(log_dir=pool.make_dir("bench-jobs"), python=python,
                        settings=server.settings(db="bench_jobs"))
    specs = [JobSpec(f"{FIRST_RUN + i % runs}-{i}", (FIRST_RUN + i % runs,))
             for i in range(n_jobs)]
    started = time.perf_counter()
    cluster = submit(condor, client, "jobs", "split", "/bin/true", specs)
    submit_s = time.perf_counter() - started
    log(f"  {n_jobs} jobs submitted as cluster {cluster} in {submit_s:.1f}s")
    sched = Scheduler(client, HTCondorExecutor(log_dir=condor.log_dir, python=python,
                                               settings=server.settings(db="bench_jobs")),
                      lease_settle=0)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        sched.cycle()
        times.append(time.perf_counter() - started)
    log(f"  cycles with {n_jobs} jobs in flight: "
        + ", ".join(f"{t:.2f}s" for t in times))
    condor.remove(f"ClusterId == {cluster}", "removing the benchmark's jobs")
    return n_jobs / submit_s, min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=32,
                        help="slots of the pool running the finished builds")
    parser.add_argument("--jobs", type=int, default=10000)
    args = parser.parse_args(argv)
    problem = localcondor.missing()
    if problem:
        print(f"HTCondor figures not measured: {problem}", file=sys.stderr)
        return 0
    localcondor.ensure_rootfs()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
    with LocalInfluxd(admin_password="bench-pw") as server:
        log(f"HTCondor: {args.builds} builds running to completion without a report")
        finished = measure_finished(server, args.builds, args.slots, log)
        with localcondor.LocalCondor() as pool:
            python = _sleeper(pool)
            log(f"HTCondor: {args.builds} builds through the htcondor executor")
            submitted, reconciled = measure_builds(pool, server, args.builds, python, log)
            log(f"HTCondor: a task of {args.jobs} jobs")
            jobs_submitted, cycle_s = measure_jobs(pool, server, args.jobs, python, log)
    print("| HTCondor (private single-node pool) | measured |")
    print("|---|---|")
    print(f"| builds submitted by a cycle ({args.builds}, one job each) | "
          f"{submitted:,.0f} builds/s |")
    print(f"| builds reconciled by the next cycle | {reconciled:,.0f} builds/s |")
    print(f"| builds run to completion ({args.builds}, no report): submitted | "
          f"{finished.submitted:,.0f} builds/s |")
    print(f"| ... run by the pool ({args.slots} slots; the pool's rate, not ours) | "
          f"{finished.pool_rate:,.1f} jobs/s |")
    print(f"| ... reconciled from the history by one cycle ({finished.history_reads} "
          f"history queries) | {finished.reconciled:,.0f} builds/s |")
    print(f"| jobs of a task submitted (one cluster of {args.jobs}) | "
          f"{jobs_submitted:,.0f} jobs/s |")
    print(f"| scheduler cycle with {args.jobs} jobs in flight | {cycle_s:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
