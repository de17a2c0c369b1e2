"""What an operator expects besides scheduling (issue 11): inject --dry-run and its guard,
pause/resume, cancel, runs --json details and history, against the real influxd."""

import csv
import json

from ecaljenkins.campaign import CONFIRM_ABOVE, RunCtrl
from ecaljenkins.workflows import Workflow

from fixtures.influx import dump
from scheduling import make_campaign, make_runs

R = 355100


def write_catalogue(path, runs):
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["run_number", "fill_number", "era", "sequence", "start_time", "end_time"])
        for run in runs:
            out.writerow([run.number, run.fill, run.era, run.sequence, run.start_time,
                          run.end_time or ""])


def test_inject_dry_run_writes_nothing_and_says_what_it_would_do(run_cli, client, influxd, db):
    make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], [])
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", "355100,355200",
                  "--dry-run")
    assert res.code == 0, res
    assert dump(influxd, db) == before
    assert "run(s) would be injected" in res.out and "dry run: nothing written" in res.out


def test_a_very_large_injection_needs_yes(run_cli, client, influxd, db, tmp_path):
    runs = make_runs(CONFIRM_ABOVE + 1, first=400000)
    write_catalogue(tmp_path / "runs.csv", runs)
    extra = {"ECAL_RUN_REGISTRY": str(tmp_path / "runs.csv")}
    ctrl = make_campaign(client, "c1", [Workflow("a", "x")], [])
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", "400000,410000",
                  extra_env=extra)
    assert res.code == 2, res
    assert f"{CONFIRM_ABOVE + 1} runs would be injected" in res.err and "--yes" in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert dump(influxd, db) == before
    res = run_cli("ecalrunctrl.py", "inject", "-c", "c1", "--range", "400000,410000", "--yes",
                  extra_env=extra)
    assert res.code == 0, res
    assert len(ctrl.task_rows(task="a")) == CONFIRM_ABOVE + 1
