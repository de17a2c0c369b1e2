"""HTCondor figures of ``make bench`` (docs/performance.md), against a private pool.

* builds: 1,000 trivial builds submitted by one scheduler cycle through the
  ``htcondor`` executor (one job each), then reconciled by the next cycle (one
  queue read, every (run, task) updated): builds per second for each;
* jobs: a task of many jobs with 10,000 jobs in flight (one cluster), and the time
  of a scheduler cycle checking them (their reports, the queue, the roll-up).

The jobs' interpreter is a script that sleeps: nothing reports, so what is timed
is the scheduler's and the schedd's work, not the jobs'. Loopback only; the pool
and the influxd are private and stopped at the end.

Run: ``python bench/condor_bench.py [--builds 1000] [--jobs 10000]``.
"""

from __future__ import annotations

import argparse
import sys
import time

from ecaljenkins import localcondor
from ecaljenkins.campaign import RunCtrl
from ecaljenkins.condor import CondorPool, HTCondorExecutor
from ecaljenkins.condorjobs import JobSpec, submit
from ecaljenkins.influx import Influx
from ecaljenkins.localinflux import LocalInfluxd
from ecaljenkins.registry import Run
from ecaljenkins.scheduler import Scheduler
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


def _sleeper(pool: localcondor.LocalCondor) -> str:
    """A job interpreter that never reports: the jobs stay in flight."""
    path = pool.make_dir("bench-bin") / "sleeper"
    path.write_text("#!/bin/sh\nexec sleep 3600\n")
    path.chmod(0o755)
    return str(path)


def measure_builds(pool, server, n_builds: int, python: str, log) -> tuple[float, float]:
    server.query("CREATE DATABASE bench_builds")
    client = Influx("bench_builds", server.url, user=server.admin,
                    password=server.admin_password)
    _campaign(client, "builds", Workflow("reco", "true", timeout_minutes=60), n_builds)
    executor = HTCondorExecutor(log_dir=pool.make_dir("bench-builds"), python=python,
                                settings=server.settings(db="bench_builds"))
    sched = Scheduler(client, executor, lease_settle=0, max_triggers=n_builds)
    started = time.perf_counter()
    report = sched.cycle()
    submit_s = time.perf_counter() - started
    triggered = len(report.campaigns[0].triggered)
    log(f"  {triggered} builds submitted in {submit_s:.1f}s")
    started = time.perf_counter()
    report = sched.cycle()
    reconcile_s = time.perf_counter() - started
    log(f"  reconciled in {reconcile_s:.1f}s: {dict(report.campaigns[0].reconciled)}")
    executor.pool.remove('EcalCampaign == "builds"', "removing the benchmark's builds")
    return triggered / submit_s, triggered / reconcile_s


def measure_jobs(pool, server, n_jobs: int, python: str, log) -> tuple[float, float]:
    server.query("CREATE DATABASE bench_jobs")
    client = Influx("bench_jobs", server.url, user=server.admin,
                    password=server.admin_password)
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
    parser.add_argument("--jobs", type=int, default=10000)
    args = parser.parse_args(argv)
    problem = localcondor.missing()
    if problem:
        print(f"HTCondor figures not measured: {problem}", file=sys.stderr)
        return 0
    localcondor.ensure_rootfs()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
    with LocalInfluxd(admin_password="bench-pw") as server, localcondor.LocalCondor() as pool:
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
    print(f"| jobs of a task submitted (one cluster of {args.jobs}) | "
          f"{jobs_submitted:,.0f} jobs/s |")
    print(f"| scheduler cycle with {args.jobs} jobs in flight | {cycle_s:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
