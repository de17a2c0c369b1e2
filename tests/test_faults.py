"""Faults survived: influxd killed or failing, Jenkins refusing, the scheduler killed.

Every fault is real: a private influxd killed with SIGKILL and restarted, a
loopback proxy in front of influxd answering 500 or too slowly, the fake Jenkins
of ``jenkins_fake.py`` (through ``responses``, or over loopback HTTP for a
scheduler in another process), and schedulers run as subprocesses and killed
with SIGKILL at each step of their cycle.
"""

import csv
import http.client
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import unquote_plus, urlsplit

import pytest

from ecaljenkins import influx as influx_module
from ecaljenkins.campaign import RunCtrl
from ecaljenkins.errors import InfluxUnreachable
from ecaljenkins.executors import JenkinsExecutor
from ecaljenkins.influx import Influx
from ecaljenkins.localinflux import LocalInfluxd
from ecaljenkins.registry import CatalogRegistry
from ecaljenkins.scheduler.lease import LEASE_SECONDS
from ecaljenkins.scheduler.reconcile import GRACE_SECONDS
from ecaljenkins.workflows import Workflow

from fixtures.cli import MODULES
from fixtures.influx import dump
from fixtures.leaks import record_output, run_recorded
from jenkins_fake import TOKEN, USER
from scheduling import (FIRST_RUN, Clock, add_jobs, jenkins_scheduler, make_campaign, make_runs,
                        rows, statuses)

R = FIRST_RUN


def cli(script_args, env, timeout=120):
    """Run ``ecalautomation.py``/``ecalrunctrl.py`` in a subprocess with exactly ``env``."""
    script, *args = script_args
    return run_recorded([sys.executable, "-m", MODULES[script], *args], env=env,
                        timeout=timeout)


class InfluxProxy:
    """A loopback HTTP proxy in front of influxd that can fail on purpose.

    ``fail_first`` requests are answered 500 before it forwards; ``fail_all``
    answers 500 to everything; ``delay`` seconds are slept before forwarding;
    ``hook(method, path, body)`` runs before a request is forwarded (True: it is
    dropped unanswered). ``seen``
    lists (method, path) of every request.
    """

    def __init__(self, target: str):
        self.target = urlsplit(target)
        self.fail_first, self.fail_all, self.delay, self.hook = 0, False, 0.0, None
        self.seen: list[tuple[str, str]] = []
        self.failed = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append((self.command, self.path))
                if proxy.fail_all or proxy.failed < proxy.fail_first:
                    proxy.failed += 1
                    return self._send(500, b'{"error":"injected failure"}',
                                      "application/json")
                if proxy.delay:
                    time.sleep(proxy.delay)
                if proxy.hook and proxy.hook(self.command, self.path, body):
                    self.close_connection = True       # dropped: no answer
                    return
                conn = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port,
                                                  timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self._send(resp.status, data, resp.getheader("Content-Type") or "text/plain")

            def _send(self, status, data, content_type):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:   # the client went away (killed, or timed out)
                    self.close_connection = True

            do_GET = do_POST = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(influxd):
    server = InfluxProxy(influxd.url)
    yield server
    server.close()


# --- influxd killed during an injection -------------------------------------------------

def write_catalogue(path, count, era="Run2030A"):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["run_number", "fill_number", "era", "sequence", "start_time",
                         "end_time"])
        for i in range(count):
            writer.writerow([R + i, 9000 + i // 3, era, "GLOBAL-RUN", "2030-05-01T10:00:00",
                             "2030-05-01T11:00:00"])
    return path


def test_influxd_killed_during_injection_then_rerun_completes_it(tmp_path, monkeypatch):
    count, tasks = 300, ["a", "b", "c"]
    catalogue = write_catalogue(tmp_path / "runs.csv", count)
    with LocalInfluxd(admin_password="admin-Secret-pw0") as server:
        server.create_database("faults")
        client = Influx("faults", server.url, user=server.admin,
                        password=server.admin_password)
        ctrl = RunCtrl(client, "c1")
        ctrl.create()
        ctrl.update_rtype("all", add=tasks)
        # 98 points per request: 24 whole runs (4 points each), then half of the 25th
        monkeypatch.setattr(influx_module, "WRITE_BATCH", 98)
        requests_done = []

        def kill_after_first_request(done, total):
            requests_done.append(done)
            if len(requests_done) == 1:
                server.kill()

        runs = CatalogRegistry(catalogue).era("Run2030A")
        with pytest.raises(InfluxUnreachable):
            ctrl.inject(runs, progress=kill_after_first_request)
        assert requests_done == [98]
        server.start()
        assert len(ctrl.stored_runs()) == 24
        ctrl.set_status("a", [R], "done")          # a build ran meanwhile
        env = dict(os.environ, **server.env(db="faults"), ECAL_RUN_REGISTRY=str(catalogue))
        res = cli(["ecalrunctrl.py", "inject", "-c", "c1", "--era", "Run2030A"], env)
        assert res.returncode == 0, res
        assert f"{count - 24} run(s) injected, 0 matched no run type, 24 already present" \
            in res.stdout
        again = cli(["ecalrunctrl.py", "inject", "-c", "c1", "--era", "Run2030A"], env)
        assert f"0 run(s) injected, 0 matched no run type, {count} already present" \
            in again.stdout
        assert sorted(run.number for run in ctrl.stored_runs()) == [R + i for i in range(count)]
        for task in tasks:
            got = rows(ctrl, task)
            assert sorted(got) == [R + i for i in range(count)]
            expected = {R + i: ("new", 0) for i in range(count)}
            if task == "a":
                expected[R] = ("done", 0)
            assert {run: (row["status"], row["attempt"]) for run, row in got.items()} == expected
        counts = client.select("SELECT count(status) FROM run WHERE campaign = 'c1' "
                               "GROUP BY task")
        assert [c["count"] for c in counts] == [count] * len(tasks)


# --- influxd failing or slow under status, schedule and jobctrl ------------------------

@pytest.fixture
def camp(client):
    return make_campaign(client, "c1", [Workflow("reco", "true")], make_runs(3))


COMMANDS = {
    "status": ["ecalrunctrl.py", "status", "-c", "c1"],
    "dry-run": ["ecalautomation.py", "schedule", "--dry-run"],
    "schedule": ["ecalautomation.py", "schedule"],
    "jobctrl": ["ecalautomation.py", "-c", "c1", "jobctrl", "--task", "reco", "--run", str(R),
                "--done"],
}


@pytest.mark.parametrize("fault, words", [
    ("500", "failed: HTTP 500 injected failure"),
    ("slow", "did not answer within 0.5s"),
    ("down", "cannot reach InfluxDB at http://127.0.0.1:9"),
])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_influxdb_faults_are_one_line_exit_1_and_write_nothing(
        camp, env, influxd, db, proxy, loopback_jenkins, command, fault, words):
    add_jobs(loopback_jenkins, db, "c1", ["reco"])
    proxy.fail_all, proxy.delay = fault == "500", 2.0 if fault == "slow" else 0.0
    url = "http://127.0.0.1:9" if fault == "down" else proxy.url
    before = dump(influxd, db)
    res = cli(COMMANDS[command], dict(os.environ, ECAL_INFLUXDB_URL=url,
                                      ECAL_INFLUXDB_TIMEOUT="0.5", ECAL_REPORT_RETRY="0"))
    assert res.returncode == 1, res
    assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res
    assert "Traceback" not in res.stderr
    assert dump(influxd, db) == before
    assert loopback_jenkins.triggered() == []


def test_jobctrl_rides_out_a_short_outage_with_back_off(camp, env, proxy):
    proxy.fail_first = 3                   # three 500s: 0.5 + 1 + 2 s of back-off
    res = cli(COMMANDS["jobctrl"], dict(os.environ, ECAL_INFLUXDB_URL=proxy.url,
                                        ECAL_REPORT_RETRY="30"))
    assert res.returncode == 0, res
    assert proxy.failed == 3 and len(proxy.seen) > 3
    assert rows(camp, "reco")[R]["status"] == "done"


def test_jobctrl_gives_up_after_its_retry_window(camp, env, influxd, db, proxy):
    proxy.fail_all = True
    before = dump(influxd, db)
    res = cli(COMMANDS["jobctrl"], dict(os.environ, ECAL_INFLUXDB_URL=proxy.url,
                                        ECAL_REPORT_RETRY="1.5"))
    assert res.returncode == 1 and "HTTP 500" in res.stderr, res
    assert 2 <= proxy.failed <= 4          # retried with back-off, then stopped
    assert dump(influxd, db) == before


# --- Jenkins refusing a trigger ----------------------------------------------------------

@pytest.mark.parametrize("endpoint, error, words", [
    ("buildWithParameters", 401, "HTTP 401"),
    ("buildWithParameters", 403, "HTTP 403"),
    ("buildWithParameters", 409, "HTTP 409"),
    ("buildWithParameters", 500, "HTTP 500"),
    ("crumb", 500, "HTTP 500"),
    ("crumb", 403, "HTTP 403"),
])
def test_refused_trigger_names_its_job_and_the_rest_goes_on(client, db, jenkins, endpoint,
                                                            error, words):
    clock = Clock()
    ctrls = [make_campaign(client, name, [Workflow("a", "x"), Workflow("b", "y")],
                           make_runs(2)) for name in ("c1", "c2")]
    jobs = {name: add_jobs(jenkins, db, name, ["a", "b"]) for name in ("c1", "c2")}
    jenkins.fail(endpoint, error)          # once: the first trigger of the cycle (c1, a)
    report = jenkins_scheduler(client, clock).cycle()
    assert not report.failed and report.needs_attention
    errors = {c.campaign: c.refused for c in report.campaigns}
    (message,) = errors["c1"]
    assert jobs["c1"]["a"] in message and words in message and TOKEN not in message
    assert errors["c2"] == []
    assert {r: (v["status"], v["attempt"], v["trigger"])
            for r, v in rows(ctrls[0], "a").items()} == {R: ("new", 0, ""), R + 1: ("new", 0, "")}
    assert set(statuses(ctrls[0], "b").values()) == {"queued"}
    assert set(statuses(ctrls[1], "a").values()) == set(statuses(ctrls[1], "b").values()) \
        == {"queued"}
    clock.advance(600)
    assert not jenkins_scheduler(client, clock).cycle().failed
    triggered = [(i.job, i.params["RUN_NUMBER"]) for i in jenkins.triggered()]
    assert len(triggered) == len(set(triggered)) == 8      # every (run, task) exactly once


# --- the scheduler killed at every step of a cycle ----------------------------------------

def _contains(body: bytes, *words: str) -> bool:
    return all(word.encode() in body for word in words)


def _kill(proc_holder):
    os.kill(proc_holder["proc"].pid, signal.SIGKILL)


STEPS = ["intent", "trigger", "between trigger and record", "second trigger", "after record"]


@pytest.mark.parametrize("step", STEPS)
def test_scheduler_killed_at_each_step_then_every_run_is_built_once(
        client, db, env, proxy, loopback_jenkins, step):
    fake = loopback_jenkins
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x")], make_runs(3))
    job = add_jobs(fake, db, "c1", ["reco"])["reco"]
    holder = {}
    triggers = []

    def on_write(method, path, body):
        if path.startswith("/write") and (
                (step == "intent" and _contains(body, 'status="queued"')) or
                (step == "after record" and _contains(body, "lock", "expires=0"))):
            _kill(holder)                              # before the write lands
            return True
        return False

    def before_trigger(request):
        triggers.append(request)
        if step == "trigger" or (step == "second trigger" and len(triggers) == 2):
            _kill(holder)
            fake.drop()                                 # the trigger never reaches Jenkins

    def after_trigger(request):
        if step == "between trigger and record":
            _kill(holder)
            fake.drop()                                 # queued, but no answer

    proxy.hook = on_write
    fake.before["buildWithParameters"] = before_trigger
    fake.after["buildWithParameters"] = after_trigger
    holder["proc"] = subprocess.Popen(
        [sys.executable, "-m", "ecaljenkins.cli.automation", "schedule"],
        env=dict(os.environ, ECAL_INFLUXDB_URL=proxy.url), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    record_output(*holder["proc"].communicate(timeout=60))
    assert holder["proc"].returncode == -signal.SIGKILL
    proxy.hook = None
    fake.before.clear()
    fake.after.clear()
    # later cycles, once the dead scheduler's lease and the grace period are over
    clock = Clock(time.time() + LEASE_SECONDS + GRACE_SECONDS + 1)
    sched = jenkins_scheduler(client, clock, JenkinsExecutor())
    for _ in range(4):
        report = sched.cycle()
        assert report.skipped is None and not report.failed, report
        for item in fake.triggered(job):
            if item.waiting:
                fake.finish(job, fake.start(item.id), "SUCCESS")
        clock.advance(60)
    assert set(statuses(ctrl, "reco").values()) == {"done"}
    built = sorted(int(item.params["RUN_NUMBER"]) for item in fake.triggered(job))
    assert built == [R, R + 1, R + 2]                    # each run exactly once


def test_two_schedulers_started_together_trigger_each_run_once(
        client, db, env, loopback_jenkins, proxy):
    """The lease, not timing, keeps them apart: a scheduler that reads the campaign's
    runs is held there until the other one reads them too or exits. With the lease,
    the other one finds it taken and exits; without it, both would plan every run."""
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x")], make_runs(4))
    job = add_jobs(loopback_jenkins, db, "c1", ["reco"])["reco"]
    procs, reads, arrived = [], [], threading.Condition()

    def one_exited():
        return len(procs) == 2 and any(proc.poll() is not None for proc in procs)

    def hold_run_reads(method, path, body):
        if "FROM run WHERE" in unquote_plus(f"{path} {body.decode('utf-8', 'replace')}"):
            with arrived:
                reads.append(path)
                arrived.notify_all()
                while len(reads) < 2 and not one_exited():
                    arrived.wait(0.05)
        return False

    proxy.hook = hold_run_reads
    for _ in range(2):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ecaljenkins.cli.automation", "schedule"],
            env=dict(os.environ, ECAL_INFLUXDB_URL=proxy.url), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=60) for proc in procs]
    record_output(*(text for output in outputs for text in output))
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sum("skipping this cycle" in out for out, _ in outputs) == 1, outputs
    built = sorted(int(item.params["RUN_NUMBER"]) for item in loopback_jenkins.triggered(job))
    assert built == [R + i for i in range(4)]
    assert set(statuses(ctrl, "reco").values()) == {"queued"}


# --- a build that dies without reporting --------------------------------------------------

def test_aborted_build_after_its_running_report_is_failed_then_retried(client, db, jenkins):
    clock = Clock()
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x", retry_delay=60)], make_runs(1))
    job = add_jobs(jenkins, db, "c1", ["reco"])["reco"]
    sched = jenkins_scheduler(client, clock)
    sched.cycle()
    (item,) = jenkins.triggered(job)
    number = jenkins.start(item.id)
    from ecaljenkins.cli import automation
    assert automation.main(["-c", "c1", "jobctrl", "--task", "reco", "--run", str(R),
                            "--id", str(number), "--running"]) == 0
    jenkins.finish(job, number, "ABORTED")                  # the agent died: no report
    clock.advance(30)
    sched.cycle()
    row = rows(ctrl, "reco")[R]
    assert (row["status"], row["attempt"]) == ("failed", 1)
    assert row["reason"] == f"Jenkins build #{number} ABORTED without a report from the workflow"
    clock.advance(61)
    sched.cycle()
    assert (rows(ctrl, "reco")[R]["status"], rows(ctrl, "reco")[R]["attempt"]) == ("queued", 2)
    retry = jenkins.triggered(job)[-1]
    jenkins.finish(job, jenkins.start(retry.id), "SUCCESS")
    clock.advance(30)
    sched.cycle()
    assert rows(ctrl, "reco")[R]["status"] == "done"
    assert len(jenkins.triggered(job)) == 2


def test_local_build_killed_once_is_failed_then_retried_and_done(run_cli, db, client, tmp_path):
    mark = tmp_path / "killed-once"
    command = f"if [ ! -e {mark} ]; then touch {mark}; kill -9 $PPID; fi; echo ok"
    ctrl = make_campaign(client, "c1", [Workflow("a", command, retry_delay=0)], make_runs(1))
    first = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                    "--log-dir", str(tmp_path / "logs"))
    assert first.code == 0, first
    row = rows(ctrl, "a")[R]
    assert (row["status"], row["attempt"]) == ("failed", 1)
    second = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                     "--log-dir", str(tmp_path / "logs"))
    assert second.code == 0, second
    row = rows(ctrl, "a")[R]
    assert (row["status"], row["attempt"]) == ("done", 2)
