"""``make demo``, shortened to the first 6 runs of Run2022G, run as a user runs it.

The demo starts its own influxd and stops it at the end, so what it did is
checked from what it printed and left in its work directory: the transcript
of commands, the final status, the logs of every build (named by attempt),
the rendered jobs (validated again here) and the report.
"""

import re
import sys
import xml.etree.ElementTree as ET

import pytest

from ecaljenkins import demo, jobs
from ecaljenkins.workflows import load_catalogue

from fixtures.leaks import run_recorded

DB, CAMPAIGN = demo.DB, demo.CAMPAIGN
RUNS = [362433, 362440, 362444, 362449, 362454, 362458]   # the first 6 of Run2022G
KEPT = RUNS[:5]                                            # 362458 is a local run
FILL_8490 = RUNS[:4]                                       # demo-calib's first group


def comments(out: str) -> str:
    """The ``#`` lines of the transcript as one text (they are wrapped)."""
    return " ".join(line[2:] for line in out.splitlines() if line.startswith("# "))


def task_line(block: str, task: str) -> list[str]:
    return next(line.split() for line in block.splitlines() if line.startswith(task + " "))


@pytest.fixture(scope="module")
def shortened(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo") / "out"
    proc = run_recorded([sys.executable, "-m", "ecaljenkins.demo", "--runs", "6",
                         "--workdir", str(workdir)], timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    return proc.stdout, workdir


def test_demo_transcript_shows_each_command(shortened):
    out, workdir = shortened
    commands = [line[2:] for line in out.splitlines() if line.startswith("$ ecal")]
    schedule = (f"ecalautomation.py --db {DB} schedule --executor local --jobs 4 "
                f"--log-dir {workdir}/logs")
    status = f"ecalrunctrl.py --db {DB} status --campaign {CAMPAIGN}"
    assert commands == [
        f"ecalrunctrl.py --db {DB} create --campaign {CAMPAIGN} "
        "--description 'make demo: Run2022G'",
        f"ecalrunctrl.py --db {DB} rtype-update --campaign {CAMPAIGN} "
        "--add demo-reco demo-calib",
        f"ecalrunctrl.py --db {DB} inject --campaign {CAMPAIGN} "
        f"--runs {','.join(map(str, RUNS))}",
        schedule,            # demo-reco of every run
        schedule,            # demo-calib of each fill: the fill of 362440 fails
        status,
        schedule,            # after the back-off, the retry
        status,
        f"ecalrunctrl.py --db {DB} report --campaign {CAMPAIGN} -o {workdir}/report.html"]
    assert "$ export ECAL_INFLUXDB_PASSWORD=...    #" in out
    assert f"ECAL_DEMO_FAIL_ONCE={KEPT[1]}" in out
    assert f"campaign '{CAMPAIGN}': 5 run(s) injected, 1 matched no run type" in out
    cycles = [line for line in out.splitlines() if line.startswith(f"campaign '{CAMPAIGN}': ")
              and "triggered" in line]
    assert [line.split(": ", 1)[1].split(";")[0] for line in cycles] == [
        "5 build(s) triggered (demo-reco: 5)", "2 build(s) triggered (demo-calib: 2)",
        "1 build(s) triggered (demo-calib: 1)"]


def test_demo_ends_with_every_run_done_after_exactly_one_retry(shortened):
    out, workdir = shortened
    *_, failing, final = out.split(f"$ ecalrunctrl.py --db {DB} status")
    # the failure, as the user sees it before the retry: the whole fill's build
    log = f"{workdir}/logs/{DB}/{CAMPAIGN}/demo-calib/{FILL_8490[0]}-1.log"
    failures = [line.split() for line in failing.splitlines() if line.startswith("3624")]
    assert [(f[:3], f[-1]) for f in failures] == [([str(run), "demo-calib", "1"], log)
                                                 for run in FILL_8490]
    # the reason is the Handler's exception, not just its exit code
    assert all(" ".join(f[3:-1]).startswith("RuntimeError: run 3624") and
               "simulated failure of the first attempt" in " ".join(f) for f in failures)
    # the end: every run done for both tasks, nothing failed
    final = final.split("$ ecalrunctrl.py")[0]
    for task in ("demo-reco", "demo-calib"):
        new, queued, running, done, failed, total = task_line(final, task)[1:7]
        assert (new, queued, running, done, failed, total) == ("0", "0", "0", "5", "0", "5")
    assert "failure(s)" not in final
    # exactly one retry: the runs of the failing run's fill, at attempt 2
    retried = re.findall(r"retried: (\S+) run\(s\) ([\d,]+), done at attempt (\d+)",
                         comments(out))
    assert retried == [("demo-calib", ",".join(map(str, FILL_8490)), "2")]
    logs = workdir / "logs" / DB / CAMPAIGN
    assert sorted(p.name for p in (logs / "demo-reco").iterdir()) == \
        [f"{run}-1.log" for run in KEPT]
    assert sorted(p.name for p in (logs / "demo-calib").iterdir()) == \
        [f"{FILL_8490[0]}-1.log", f"{FILL_8490[0]}-2.log", f"{KEPT[4]}-1.log"]
    assert f"RuntimeError: run {KEPT[1]}: simulated failure" in \
        (logs / "demo-calib" / f"{FILL_8490[0]}-1.log").read_text()


def test_demo_workflows_read_their_dependency_outputs(shortened):
    _, workdir = shortened
    data = workdir / "data" / CAMPAIGN
    assert sorted(p.name for p in (data / "demo-reco").glob("*.txt")) == \
        [f"{run}.txt" for run in KEPT]
    calib = (data / "demo-calib" / f"{FILL_8490[0]}.txt").read_text().splitlines()
    assert calib[0] == f"runs {','.join(map(str, FILL_8490))}"
    assert re.fullmatch(r"constant \d\.\d{5}", calib[1])


def test_demo_jobs_are_validated_and_run_the_catalogue_commands(shortened):
    out, workdir = shortened
    path = workdir / "jobs" / DB / f"{CAMPAIGN}.yaml"
    assert f"jobs written to {path} (2 job(s), validated)" in out
    catalogue = load_catalogue()
    validated = jobs.validate(path)
    assert sorted(validated) == sorted(jobs.job_name(DB, CAMPAIGN, task)
                                       for task in ("demo-reco", "demo-calib"))
    for task in ("demo-reco", "demo-calib"):
        xml = ET.fromstring(validated[jobs.job_name(DB, CAMPAIGN, task)])
        assert xml.findtext("builders/hudson.tasks.Shell/command") == \
            jobs.build_command(catalogue[task])


def test_demo_writes_the_report(shortened):
    out, workdir = shortened
    html = (workdir / "report.html").read_text()
    assert f"wrote the report of campaign '{CAMPAIGN}' to '{workdir}/report.html'" in out
    assert CAMPAIGN in html and all(str(run) in html for run in KEPT)


def test_demo_empties_only_a_directory_it_made(tmp_path):
    made = demo.prepare_workdir(tmp_path / "out")
    (made / "logs").mkdir()
    (made / "report.html").write_text("old")
    assert demo.prepare_workdir(made) == made
    assert sorted(p.name for p in made.iterdir()) == [demo.STAMP]
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    proc = run_recorded([sys.executable, "-m", "ecaljenkins.demo", "--workdir", str(foreign)],
                        timeout=120)
    assert proc.returncode == 2 and "is not empty and was not made by the demo" in proc.stderr
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize("args, message", [
    (["--era", "Run2022Z"], "unknown era 'Run2022Z'"),
    (["--runs", "0"], "invalid --runs 0"),
])
def test_demo_bad_input(tmp_path, args, message):
    proc = run_recorded([sys.executable, "-m", "ecaljenkins.demo", *args,
                         "--workdir", str(tmp_path / "out")], timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc
    assert not (tmp_path / "out").exists()
