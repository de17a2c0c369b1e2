"""Benchmark of a scheduler cycle at scale: 10,000 runs x 20 tasks = 200,000 (run, task) rows.

Starts a private influxd, fills a campaign (chains of dependent tasks, fill- and
era-grouped ones, a mix of statuses), then times a dry-run cycle (read + plan,
what every cron cycle pays) and reports the InfluxDB requests it made, which
must not depend on the number of runs. Run: ``python bench/bench_scheduler.py
[RUNS] [TASKS]``.
"""

import sys
import time

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.influx import Influx
from ecaljenkins.localinflux import LocalInfluxd
from ecaljenkins.registry import Run
from ecaljenkins.scheduler import Scheduler, plan, read_state
from ecaljenkins.workflows import Workflow


def workflows(count: int) -> list[Workflow]:
    """Chains of four: reco -> two run-level steps -> a fill- or era-grouped calibration."""
    result = []
    for i in range(count):
        link = i % 4
        depends = (f"task{i - 1:02d}",) if link else ()
        group = {3: "fill", 2: "run"}.get(link, "run") if i % 8 != 7 else "era"
        result.append(Workflow(f"task{i:02d}", "true", depends_on=depends, group_by=group,
                               max_in_flight=200 if link == 0 else None, retry_delay=60))
    return result


def runs(count: int) -> list[Run]:
    return [Run.from_attrs({"run_number": 300000 + i, "fill_number": 7000 + i // 6,
                            "era": f"Run2024{'ABCDEFGH'[i * 8 // count]}",
                            "sequence": "GLOBAL-RUN", "start_time": "2024-05-01T00:00:00",
                            "end_time": "2024-05-01T01:00:00"}) for i in range(count)]


def main(n_runs: int = 10_000, n_tasks: int = 20) -> None:
    with LocalInfluxd() as server:
        server.create_database("bench")
        client = Influx("bench", server.url, user=server.admin, password=server.admin_password,
                        timeout=600)
        ctrl = RunCtrl(client, "bench")
        ctrl.create()
        flows = workflows(n_tasks)
        ctrl.update_rtype("all", add=[wf.task for wf in flows],
                          definitions={wf.task: wf.to_json() for wf in flows})
        started = time.perf_counter()
        ctrl.inject(runs(n_runs))
        print(f"injected {n_runs} runs x {n_tasks} tasks in {time.perf_counter() - started:.1f}s")
        numbers = list(range(300000, 300000 + n_runs))
        ctrl.set_status("task00", numbers[: n_runs // 2], "done")
        ctrl.set_status("task00", numbers[n_runs // 2: n_runs // 2 + 150], "running")
        ctrl.set_status("task01", numbers[: n_runs // 4], "done")
        ctrl.set_status("task01", numbers[n_runs // 4: n_runs // 4 + 500], "failed", attempt=1)

        camp = ctrl.info()
        defs = {wf.task: wf for wf in flows}
        for label, func in (("read_state", lambda: read_state(client, camp)),):
            before = client.stats["queries"]
            started = time.perf_counter()
            state = func()
            print(f"{label}: {time.perf_counter() - started:.2f}s, "
                  f"{client.stats['queries'] - before} query, "
                  f"{sum(map(len, state.rows.values()))} rows")
        started = time.perf_counter()
        result = plan(state, defs, time.time(), budget=500)
        waiting = sum(len(tp.waiting) for tp in result.tasks.values())
        print(f"plan: {time.perf_counter() - started:.2f}s, {len(result.builds)} builds, "
              f"{waiting} waiting")
        before = dict(client.stats)
        started = time.perf_counter()
        Scheduler(client, dry_run=True).cycle()
        print(f"dry-run cycle: {time.perf_counter() - started:.2f}s, "
              f"{client.stats['queries'] - before['queries']} queries, "
              f"{client.stats['writes'] - before['writes']} writes")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
