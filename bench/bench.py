"""The benchmark at the scale of a data-taking year (``make bench``, docs/performance.md).

For each size (runs x 20 tasks) it starts from an empty database on a private
influxd and measures, side by side with the pattern each one replaces:

* inject: ``RunCtrl.inject`` of all the runs in one call, against one point per
  write request (timed on a sample of points, extrapolated per point);
* one dry-run scheduler cycle of a campaign midway through the year, against
  (a) the floor: the same InfluxQL statements sent with plain ``requests`` and
  decoded with ``json``, nothing else, and (b) the per-run pattern of the
  existing CMS scripts: one query per run (timed on a sample, extrapolated);

then the history of a long-lived campaign: a dry-run cycle of 50,000 runs of which
the 1,000 newest can still change, beside a campaign of those 1,000 runs alone
(the low-water mark, docs/schema.md); then triggering: builds per second through the real Jenkins executor against a
local Jenkins answering with a fixed latency, with and without max_in_flight
caps; then encoding 200,000 points to line protocol, ``schema.Point`` against
influxdb-client's public ``Point.to_line_protocol()``; then the start-up of the
build-side commands (``ecalautomation.py jobctrl --help``, ``run --help``)
beside a bare ``python -c pass``, the median of several starts. Timings are the
best of ``--repeat`` attempts. Loopback only.

Run: ``python bench/bench.py [--sizes 1000,10000,50000] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import jenkins
import requests

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.executors import JenkinsExecutor
from ecaljenkins.influx import Influx, gc_paused
from ecaljenkins.localinflux import LocalInfluxd
from ecaljenkins.names import quote_str
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.scheduler.state import definitions, rebuild_mark
from ecaljenkins.schema import ROW_FIELDS, new_run_point, runinfo_point

from latency_jenkins import LatencyJenkins
from synthetic import progress_lines, runs, workflows

CAMPAIGN = "year2024"
#: runs of the campaigns the triggering benchmark starts builds for
TRIGGER_RUNS = 1000
#: max_in_flight of every task in the capped triggering benchmark
TRIGGER_CAP = 20


def record_queries(client: Influx) -> list[str]:
    """The URL of every query the client sends from now on, for the floor to replay."""
    sent: list[str] = []

    def hook(resp, *args, **kwargs):
        if "/query?" in resp.request.url:
            sent.append(resp.request.url)

    client.session.hooks["response"].append(hook)
    return sent


@dataclass
class SizeResult:
    runs: int
    tasks: int
    rows: int = 0
    inject_s: float = 0.0
    inject_writes: int = 0
    inject_points: int = 0
    per_point_s: float = 0.0
    per_point_sample: int = 0
    cycle_s: float = 0.0
    cycle_queries: int = 0
    plan_builds: int = 0
    plan_waiting: int = 0
    peak_mb: float = 0.0
    floor_s: float = 0.0
    naive_s: float = 0.0
    naive_sample: int = 0
    statuses: dict = field(default_factory=dict)

    @property
    def per_point_total_s(self) -> float:
        return self.per_point_s * self.inject_points

    @property
    def inject_speedup(self) -> float:
        return self.per_point_total_s / self.inject_s

    @property
    def cycle_over_floor(self) -> float:
        return self.cycle_s / self.floor_s

    @property
    def naive_over_cycle(self) -> float:
        return self.naive_s / self.cycle_s


def _client(server: LocalInfluxd, db: str) -> Influx:
    server.create_database(db)
    return Influx(db, server.url, user=server.admin, password=server.admin_password,
                  timeout=600)


def _best(repeat: int, *funcs) -> list[float]:
    """The shortest wall time of each function over ``repeat`` rounds.

    The functions take turns within a round, so that a compared pair sees the
    same load of the machine (other processes, influxd's caches).
    """
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for index, func in enumerate(funcs):
            started = time.perf_counter()
            func()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def _campaign(client: Influx, name: str, flows) -> RunCtrl:
    ctrl = RunCtrl(client, name)
    ctrl.create("rereco", "benchmark: a synthetic data-taking year")
    ctrl.update_rtype("all", add=[wf.task for wf in flows],
                      definitions={wf.task: wf.to_json() for wf in flows})
    return ctrl


def measure_size(server: LocalInfluxd, n_runs: int, n_tasks: int, args,
                 log) -> SizeResult:
    result = SizeResult(n_runs, n_tasks)
    flows = workflows(n_tasks)
    year = runs(n_runs)
    client = _client(server, f"bench_{n_runs}")
    ctrl = _campaign(client, CAMPAIGN, flows)

    log(f"[{n_runs}] inject {n_runs} runs x {n_tasks} tasks")
    before = client.stats["writes"]
    started = time.perf_counter()
    summary = ctrl.inject(year)
    result.inject_s = time.perf_counter() - started
    result.inject_writes = client.stats["writes"] - before
    result.inject_points = summary.points
    if len(summary.injected) != n_runs:
        raise SystemExit(f"bench: injected {len(summary.injected)} of {n_runs} runs")

    log(f"[{n_runs}] one point per write request, on {args.point_sample} points")
    result.per_point_sample = args.point_sample
    result.per_point_s = per_point_inject(server, n_runs, year, flows, args.point_sample)

    log(f"[{n_runs}] move the campaign midway through its year")
    lines, result.statuses = progress_lines(CAMPAIGN, [run.number for run in year], flows,
                                            time.time())
    client.write(lines)
    numbers = [run.number for run in year]
    del lines, year   # the timings below see the heap of a scheduler, not of the set-up
    result.rows = sum(result.statuses.values())

    settle(server, log)
    scheduler = Scheduler(client, dry_run=True)
    sent = record_queries(client)
    before = client.stats["queries"]
    report = scheduler.cycle(CAMPAIGN)
    result.cycle_queries = client.stats["queries"] - before
    statements = list(sent)
    client.session.hooks["response"].clear()
    done = report.campaigns[0]
    if done.errors or done.plan is None:
        raise SystemExit(f"bench: the dry-run cycle failed: {done.errors}")
    result.plan_builds = len(done.plan.builds)
    result.plan_waiting = sum(len(tp.waiting) for tp in done.plan.tasks.values())
    del report, done
    log(f"[{n_runs}] dry-run cycles and the floor: the cycle's {len(statements)} queries "
        "with plain requests + json")
    result.cycle_s, result.floor_s = _best(args.repeat, lambda: scheduler.cycle(CAMPAIGN),
                                           lambda: bare_queries(server, statements))

    tracemalloc.start()
    scheduler.cycle(CAMPAIGN)
    result.peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()

    sample = min(n_runs, args.run_sample)
    log(f"[{n_runs}] per-run queries on {sample} runs")
    result.naive_sample = sample
    result.naive_s = per_run_cycle(client, numbers, sample)
    server.query(f'DROP DATABASE "{client.db}"')
    return result


def per_point_inject(server: LocalInfluxd, n_runs: int, year, flows, sample: int) -> float:
    """Seconds per point when each point of an injection is its own write request."""
    client = _client(server, f"bench_{n_runs}_per_point")
    now = time.time()
    points = (new_run_point("perpoint", wf.task, run.number, run.fill, run.era, now)
              for run in year for wf in flows)
    chosen = [point for point, _ in zip(points, range(sample))]
    started = time.perf_counter()
    for point in chosen:
        client.write([point])
    elapsed = time.perf_counter() - started
    server.query(f'DROP DATABASE "{client.db}"')
    return elapsed / len(chosen)


def bare_queries(server: LocalInfluxd, urls: list[str]) -> int:
    """The database's own cost: the same query requests, sent and decoded, nothing else.

    Each chunk is decoded as it arrives, while influxd prepares the next one,
    as the library does: buffering the whole answer first is slower on two cores.
    Python's cycle collector is paused, as in the cycle: its cost is not the
    database's.
    """
    session = requests.Session()
    session.trust_env = False
    session.auth = (server.admin, server.admin_password)
    rows = 0
    with gc_paused():
        for url in urls:
            with session.get(url, timeout=600, stream=True) as resp:
                resp.raise_for_status()
                for line in resp.iter_lines(chunk_size=1 << 18, delimiter=b"\n"):
                    if line:
                        for res in json.loads(line).get("results", ()):
                            rows += sum(len(s.get("values", ()))
                                        for s in res.get("series", ()))
    return rows


def settle(server: LocalInfluxd, log, limit: float = 120.0) -> None:
    """Wait (at most ``limit`` seconds) until influxd is done storing what was written.

    After a large write influxd spends a while snapshotting its cache to disk
    and compacting files; reads made meanwhile compete with it. A scheduler
    runs long after an injection, so the cycle is timed on a quiet server.
    """
    stat = f"/proc/{server.proc.pid}/stat"

    def cpu_seconds() -> float:
        with open(stat) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    started = time.monotonic()
    used = cpu_seconds()
    while time.monotonic() - started < limit:
        time.sleep(1.0)
        now = cpu_seconds()
        if now - used < 0.05:
            log(f"influxd quiet after {time.monotonic() - started:.0f}s")
            return
        used = now
    log(f"influxd still busy after {limit:g}s: timing anyway")


def per_run_cycle(client: Influx, numbers: list[int], sample: int) -> float:
    """Seconds to read a campaign's state one run at a time, as the CMS scripts do.

    Timed on ``sample`` runs spread over the campaign and extrapolated to all of
    them; only reading is counted, so this is a lower bound of such a cycle.
    """
    step = max(len(numbers) // sample, 1)
    chosen = numbers[::step][:sample]
    where = f"campaign = {quote_str(CAMPAIGN)}"
    started = time.perf_counter()
    client.query(f"SELECT * FROM campaign WHERE {where}; SELECT * FROM rtype WHERE {where}; "
                 f"SELECT * FROM workflow WHERE {where}")
    for run in chosen:
        client.query(f"SELECT {', '.join(ROW_FIELDS)} FROM run WHERE {where} "
                     f"AND time = {run} GROUP BY task")
    return (time.perf_counter() - started) / len(chosen) * len(numbers)


#: runs of the long-lived campaign of the history benchmark, and how many can still change
HISTORY_RUNS = 50_000
HISTORY_ACTIVE = 1_000


@dataclass
class HistoryResult:
    runs: int
    active: int
    cycle_s: float
    small_cycle_s: float
    queries: int
    small_queries: int
    rows_read: int
    peak_mb: float

    @property
    def history_over_small(self) -> float:
        return self.cycle_s / self.small_cycle_s


def measure_history(server: LocalInfluxd, n_tasks: int, args, log) -> HistoryResult:
    """A dry-run cycle of a campaign of HISTORY_RUNS runs whose oldest are all done,
    beside one of its HISTORY_ACTIVE newest runs alone, in the same state.

    Both have their low-water mark as the cycle before would have stored it,
    long after the writes of the set-up.
    """
    flows = workflows(n_tasks)
    year = runs(HISTORY_RUNS)
    client = _client(server, "bench_history")
    log(f"[history] inject {HISTORY_RUNS} runs, and their {HISTORY_ACTIVE} newest "
        "in a campaign of their own")
    _campaign(client, "history", flows).inject(year)
    _campaign(client, "recent", flows).inject(year[-HISTORY_ACTIVE:])
    old = [run.number for run in year[:-HISTORY_ACTIVE]]
    log(f"[history] {len(old)} runs done, the {HISTORY_ACTIVE} newest in flight or new")
    client.write([f'run,campaign=history,task={wf.task} status="done",attempt=1i {run}'
                  for run in old for wf in flows])
    newest = [run.number for run in year[-HISTORY_ACTIVE:]]
    now = time.time()
    for name in ("history", "recent"):
        lines, _ = progress_lines(name, newest, flows, now)
        client.write([line for line in lines if 'status="done"' not in line])
    del year, old
    settle(server, log)
    time.sleep(1.1)   # the server's clock (whole seconds) past the set-up's writes
    for name in ("history", "recent"):
        camp = RunCtrl(client, name).info()
        rebuild_mark(client, camp, definitions(camp, dict, []), settle=0)
    scheduler = Scheduler(client, dry_run=True)
    queries = {}
    for name in ("history", "recent"):
        before = client.stats["queries"]
        report = scheduler.cycle(name).campaigns[0]
        if report.errors or report.plan is None:
            raise SystemExit(f"bench: the history cycle failed: {report.errors}")
        queries[name] = client.stats["queries"] - before
        if name == "history":
            rows_read = sum(sum(tp.counts.values()) for tp in report.plan.tasks.values())
    log("[history] dry-run cycles of both")
    cycle_s, small_s = _best(args.repeat, lambda: scheduler.cycle("history"),
                             lambda: scheduler.cycle("recent"))
    tracemalloc.start()
    scheduler.cycle("history")
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    server.query('DROP DATABASE "bench_history"')
    return HistoryResult(HISTORY_RUNS, HISTORY_ACTIVE, cycle_s, small_s, queries["history"],
                         queries["recent"], rows_read, peak_mb)


def history_table(r: HistoryResult) -> str:
    return _table([
        ["history", "runs", "rows read", "cycle s", "queries", "note"],
        [f"{r.runs} runs, {r.runs - r.active} done", f"{r.runs:,}", f"{r.rows_read:,}",
         f"{r.cycle_s:.3f}", str(r.queries), f"peak {r.peak_mb:.1f} MB; rows from the "
         "low-water mark on"],
        [f"its {r.active} newest alone", f"{r.active:,}", "", f"{r.small_cycle_s:.3f}",
         str(r.small_queries), f"history_over_small {r.history_over_small:.2f}"],
    ])


def history_line(r: HistoryResult) -> str:
    return (f"bench-history: runs={r.runs} active={r.active} cycle_s={r.cycle_s:.3f} "
            f"small_cycle_s={r.small_cycle_s:.3f} "
            f"history_over_small={r.history_over_small:.2f} queries={r.queries} "
            f"peak_mb={r.peak_mb:.0f}")


@dataclass
class TriggerResult:
    label: str
    builds: int
    cycle_s: float
    jenkins_requests: int
    writes: int

    @property
    def per_second(self) -> float:
        return self.builds / self.cycle_s


def measure_triggering(server: LocalInfluxd, n_tasks: int, latency: float,
                       log) -> list[TriggerResult]:
    """One real cycle per campaign (500 builds at most), through the Jenkins executor."""
    results = []
    client = _client(server, "bench_trigger")
    year = runs(TRIGGER_RUNS)
    with LatencyJenkins(latency) as fake:
        for label, cap in (("no cap", None), (f"max_in_flight {TRIGGER_CAP}", TRIGGER_CAP)):
            name = "capped" if cap else "uncapped"
            _campaign(client, name, workflows(n_tasks, cap)).inject(year)
            log(f"[trigger] one cycle of campaign {name!r} ({label}), "
                f"Jenkins latency {latency * 1000:g} ms")
            server_jenkins = jenkins.Jenkins(fake.url, username="bench", password="bench",
                                             timeout=30)
            scheduler = Scheduler(client, JenkinsExecutor(server_jenkins), lease_settle=0)
            asked = sum(fake.requests.values())
            writes = client.stats["writes"]
            started = time.perf_counter()
            report = scheduler.cycle(name)
            elapsed = time.perf_counter() - started
            done = report.campaigns[0]
            if done.errors:
                raise SystemExit(f"bench: the triggering cycle failed: {done.errors[0]}")
            results.append(TriggerResult(label, len(done.triggered), elapsed,
                                         sum(fake.requests.values()) - asked,
                                         client.stats["writes"] - writes))
    server.query('DROP DATABASE "bench_trigger"')
    return results


#: runs whose injection points the encoding benchmark encodes (x 20 tasks, + runinfo)
ENCODED_RUNS = 10_000
#: starts of each command timed by the start-up benchmark (the median is kept)
STARTS = 15


def measure_encoding(repeat: int, log) -> tuple[int, float, float]:
    """Points, and seconds to encode them: (count, schema.Point, influxdb-client).

    The points ``RunCtrl.inject`` writes for ENCODED_RUNS runs (a ``run`` point
    per task, a ``runinfo`` point per run), through this project's encoder and through
    influxdb-client's public one, which the tests hold it to.
    """
    from influxdb_client import Point as ClientPoint
    year = runs(ENCODED_RUNS)
    ours = []
    for run in year:
        ours += [new_run_point(CAMPAIGN, f"task{i:02d}", run.number, run.fill, run.era, 1.7e9)
                 for i in range(20)]
        ours.append(runinfo_point(CAMPAIGN, run.number, run.fill, run.era, ["all"], run.attrs))
    theirs = [ClientPoint.from_dict({"measurement": p.measurement, "tags": dict(p.tags),
                                     "fields": p.fields, "time": p.time}) for p in ours]
    log(f"encoding {len(ours):,} points, both encoders")
    own_s, client_s = _best(repeat, lambda: [p.to_line_protocol() for p in ours],
                            lambda: [p.to_line_protocol() for p in theirs])
    return len(ours), own_s, client_s


def _command(*args: str) -> list[str]:
    """``ecalautomation.py ARGS`` as installed beside this Python (else ``-m``)."""
    script = os.path.join(os.path.dirname(sys.executable), "ecalautomation.py")
    if os.path.exists(script):
        return [script, *args]
    return [sys.executable, "-m", "ecaljenkins.cli.automation", *args]


def measure_startup(log) -> dict[str, float]:
    """Median seconds from exec to exit of each command, over STARTS starts."""
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "ecalautomation.py jobctrl --help": _command("jobctrl", "--help"),
                "ecalautomation.py run --help": _command("run", "--help"),
                "ecalautomation.py schedule --help": _command("schedule", "--help")}
    log(f"start-up: {STARTS} starts of each of {len(commands)} commands")
    times = {name: [] for name in commands}
    for _ in range(STARTS):
        for name, argv in commands.items():   # in turns: each sees the same load
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def encoding_table(points: int, own_s: float, client_s: float) -> str:
    return _table([
        ["encoding", "points", "s", "us per point", "note"],
        ["schema.Point", f"{points:,}", f"{own_s:.2f}", f"{own_s / points * 1e6:.2f}",
         "this project's encoder (what Influx.write sends)"],
        ["influxdb_client.Point", f"{points:,}", f"{client_s:.2f}",
         f"{client_s / points * 1e6:.2f}", "its public to_line_protocol(), the same lines"],
    ])


def startup_table(startup: dict[str, float]) -> str:
    bare = startup["python -c pass"]
    return _table([["start-up", "median ms", "x python", "note"]] + [
        [name, f"{seconds * 1000:.0f}", f"{seconds / bare:.1f}",
         f"median of {STARTS} starts" if name == "python -c pass" else ""]
        for name, seconds in startup.items()])


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 or i == len(row) - 1 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def size_table(results: list[SizeResult]) -> str:
    def row(label, fmt, note=""):
        return [label, *(fmt(r) for r in results), note]

    rows = [
        ["runs x tasks", *(f"{r.runs}x{r.tasks}" for r in results), "note"],
        row("(run, task) rows", lambda r: f"{r.rows:,}",
            "statuses: " + ", ".join(f"{k} {v * 100 / results[-1].rows:.0f}%"
                                     for k, v in sorted(results[-1].statuses.items()))),
        row("inject s", lambda r: f"{r.inject_s:.2f}", "RunCtrl.inject, all runs, one call"),
        row("inject write requests", lambda r: f"{r.inject_writes}"),
        row("inject points", lambda r: f"{r.inject_points:,}"),
        row("one point per request s", lambda r: f"{r.per_point_total_s:.1f}",
            "extrapolated: points x time per point, timed on "
            f"{results[0].per_point_sample:,} points"),
        row("inject_speedup", lambda r: f"{r.inject_speedup:.0f}x"),
        row("cycle s", lambda r: f"{r.cycle_s:.3f}", "dry-run Scheduler.cycle, library call"),
        row("cycle us per row", lambda r: f"{r.cycle_s / r.rows * 1e6:.2f}",
            "flat = cost linear in runs"),
        row("cycle queries", lambda r: f"{r.cycle_queries}", "Influx.stats['queries']"),
        row("planned builds / waiting", lambda r: f"{r.plan_builds}/{r.plan_waiting:,}",
            "500 triggers per cycle at most"),
        row("peak_mb", lambda r: f"{r.peak_mb:.1f}",
            "tracemalloc peak of one cycle (Python allocations, MB = 10^6 bytes)"),
        row("floor s", lambda r: f"{r.floor_s:.3f}",
            "the cycle's queries: plain requests, json.loads per chunk"),
        row("cycle_over_floor", lambda r: f"{r.cycle_over_floor:.2f}"),
        row("per-run cycle s", lambda r: f"{r.naive_s:.1f}",
            "one query per run, reading only: timed on at most "
            f"{max(r.naive_sample for r in results):,} runs, extrapolated"),
        row("naive_over_cycle", lambda r: f"{r.naive_over_cycle:.0f}x"),
    ]
    return _table(rows)


def trigger_table(results: list[TriggerResult], latency: float) -> str:
    rows = [["triggering", "builds", "cycle s", "builds/s", "Jenkins requests",
             "InfluxDB writes", "note"]]
    for r in results:
        rows.append([r.label, str(r.builds), f"{r.cycle_s:.2f}", f"{r.per_second:.0f}",
                     str(r.jenkins_requests), str(r.writes),
                     f"{latency * 1000:g} ms per Jenkins request: at most "
                     f"{1 / latency:.0f} sequential requests/s"])
    return _table(rows)


def final_line(result: SizeResult, encoding: tuple[int, float, float],
               startup: dict[str, float]) -> str:
    return (f"bench: runs={result.runs} tasks={result.tasks} cycle_s={result.cycle_s:.3f} "
            f"floor_s={result.floor_s:.3f} cycle_over_floor={result.cycle_over_floor:.2f} "
            f"naive_over_cycle={result.naive_over_cycle:.0f} "
            f"queries_per_campaign={result.cycle_queries} "
            f"inject_speedup={result.inject_speedup:.0f} peak_mb={result.peak_mb:.0f} "
            f"encode_speedup={encoding[2] / encoding[1]:.1f} "
            f"python_ms={startup['python -c pass'] * 1000:.0f} "
            f"jobctrl_help_ms={startup['ecalautomation.py jobctrl --help'] * 1000:.0f} "
            f"run_help_ms={startup['ecalautomation.py run --help'] * 1000:.0f}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None,
                        help="comma-separated numbers of runs [1000,10000,50000]")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per run [20]")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1000,10000, smaller samples, two attempts per timing")
    parser.add_argument("--repeat", type=int, default=None,
                        help="attempts per timing, the best is kept [5; --quick: 2]")
    parser.add_argument("--latency", type=float, default=0.005,
                        help="seconds the local Jenkins takes per request [0.005]")
    args = parser.parse_args(argv)
    sizes = args.sizes or ("1000,10000" if args.quick else "1000,10000,50000")
    try:
        args.sizes = [int(size) for size in sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: numbers of runs separated by commas, not {sizes!r}")
    if any(size < 10 or size > 200_000 for size in args.sizes) or not 4 <= args.tasks <= 40:
        parser.error("sizes from 10 to 200000 runs, 4 to 40 tasks")
    args.repeat = args.repeat or (2 if args.quick else 5)
    args.point_sample = 500 if args.quick else 2000
    args.run_sample = 200 if args.quick else 1000
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"{time.perf_counter() - started:7.1f}s {message}", file=sys.stderr, flush=True)

    with LocalInfluxd() as server:
        sizes = [measure_size(server, n, args.tasks, args, log) for n in args.sizes]
        history = measure_history(server, args.tasks, args, log)
        triggering = measure_triggering(server, args.tasks, args.latency, log)
    encoding = measure_encoding(args.repeat, log)
    startup = measure_startup(log)
    print(size_table(sizes))
    print()
    print(trigger_table(triggering, args.latency))
    print()
    print(encoding_table(*encoding))
    print()
    print(startup_table(startup))
    print()
    print(history_table(history))
    print()
    print(final_line(next((r for r in sizes if r.runs == 10_000), sizes[-1]), encoding,
                     startup))
    print(history_line(history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
