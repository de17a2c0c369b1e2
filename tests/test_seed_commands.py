"""Every command line of the original documentation page, run as written by a shell.

``../shared/seed/`` documents the reprocessing commands with placeholder names
(``db_name``, ``test_rereco``, ``campaign_name``, ``workflow1``...): they are run
here literally, through ``bash -c``, and checked against what InfluxDB then holds.
"""

import os
import sys
from pathlib import Path

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.influx import Influx
from ecaljenkins.registry import open_registry

from fixtures.influx import WRITER
from fixtures.leaks import run_recorded

BIN = Path(sys.executable).parent


#: the seed's placeholder workflows, defined as ECAL's real ones are in their catalogue
SEED_CATALOGUE = "".join(f"{task}:\n  command: echo {task}\n" for task in (
    "workflow1", "workflow2", "workflow3", "task1", "task2", "task3", "task4", "task5"))


@pytest.fixture
def seed_db(influxd, env, monkeypatch, tmp_path):
    """The database literally named ``db_name`` (fresh for each test), and a workflow
    catalogue defining the workflows the seed names."""
    catalogue = tmp_path / "workflows.yaml"
    catalogue.write_text(SEED_CATALOGUE)
    monkeypatch.setenv("ECAL_WORKFLOWS", str(catalogue))
    influxd.query('DROP DATABASE "db_name"')
    influxd.create_database("db_name")
    influxd.query(f'GRANT ALL ON "db_name" TO "{WRITER[0]}"')
    monkeypatch.delenv("ECAL_INFLUXDB_DB")
    return Influx.from_env("db_name")


def sh(line: str):
    """Run a documented command line through bash with the package's scripts on PATH."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    proc = run_recorded(["bash", "-c", line], env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok(line: str) -> str:
    proc = sh(line)
    assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
    return proc.stdout


def test_create_add_workflows_and_inject(seed_db):
    ok("ecalrunctrl.py --db 'db_name' create --campaign 'test_rereco'")
    assert "--kind" in ok("ecalrunctrl.py create --help")
    camp = RunCtrl(seed_db, "test_rereco").info()
    assert list(camp.rtypes) == ["all"] and camp.rtypes["all"].tasks == ()
    assert [f.text for f in camp.rtypes["all"].filters] == ["sequence == GLOBAL-RUN"]

    line = ("ecalrunctrl.py --db 'db_name' rtype-update --campaign 'test_rereco' "
            "--add workflow1 workflow2 workflow3 --type=all")
    # the same line for workflows defined nowhere is refused, naming the first one
    with_unknown = sh(line.replace("workflow1", "workflow9"))
    assert with_unknown.returncode == 2 and with_unknown.stderr.startswith(
        "ecalrunctrl.py: error: task 'workflow9' has no workflow definition"), with_unknown
    assert RunCtrl(seed_db, "test_rereco").info().active_tasks == set()
    proc = sh(line)
    assert proc.returncode == 0, proc.stderr
    camp = RunCtrl(seed_db, "test_rereco").info()
    assert camp.rtypes["all"].tasks == ("workflow1", "workflow2", "workflow3")

    registry = open_registry()
    era = registry.eras()[0]
    era_runs = registry.era(era)
    global_runs = [r for r in era_runs if r.sequence == "GLOBAL-RUN"]
    some = global_runs[:2]
    ok("ecalrunctrl.py --db 'db_name' inject --campaign 'test_rereco' --runs "
       + ",".join(str(r.number) for r in some))
    lo, hi = global_runs[2].number, global_runs[4].number
    ok(f"ecalrunctrl.py --db 'db_name' inject --campaign 'test_rereco' --range {lo},{hi}")
    out = ok(f"ecalrunctrl.py --db 'db_name' inject --campaign 'test_rereco' --era {era}")
    assert "already present" in out

    rows = seed_db.select("SELECT status FROM run WHERE campaign = 'test_rereco' GROUP BY task")
    runs = {row["time"] for row in rows}
    assert runs == {r.number for r in global_runs}
    assert len(rows) == 3 * len(global_runs)
    assert {row["status"] for row in rows} == {"new"}
    assert {row["task"] for row in rows} == {"workflow1", "workflow2", "workflow3"}


def test_deactivate_and_reactivate(seed_db):
    ok("ecalrunctrl.py --db 'db_name' create --campaign 'campaign_name'")
    ok("ecalrunctrl.py --db 'db_name' rtype-update --campaign 'campaign_name' "
       "--add task1 task2 task3 --type=all")
    ok("ecalrunctrl.py --db 'db_name' rtype-create --campaign 'campaign_name' "
       "--type stable_beams --filter 'sequence == GLOBAL-RUN' --filter 'stable_beams == true' "
       "--add task4 task5")

    # list all tasks of the campaign
    listing = ok("ecalrunctrl.py --db 'db_name' rtype-list --campaign 'campaign_name'")
    assert "task1,task2,task3" in listing and "task4,task5" in listing
    # remove active tasks of run type 'all'
    ok("ecalrunctrl.py --db 'db_name' rtype-update --campaign 'campaign_name' "
       "--remove task1,task2,task3 --type all")
    # remove active tasks of run type 'stable_beams'
    ok("ecalrunctrl.py --db 'db_name' rtype-update --campaign 'campaign_name' "
       "--remove task4,task5 --type stable_beams")
    # check that there are no active tasks left
    listing = ok("ecalrunctrl.py --db 'db_name' rtype-list --campaign 'campaign_name'")
    assert "no active task" in listing
    camp = RunCtrl(seed_db, "campaign_name").info()
    assert not camp.active and camp.active_tasks == set()

    # the history stays queryable: who removed what, when
    history = seed_db.select("SELECT * FROM rtype WHERE campaign = 'campaign_name' "
                             "AND rtype = 'all'")
    assert [h["removed"] for h in history] == ["", "", "task1,task2,task3"]

    # reactivate with --add
    ok("ecalrunctrl.py --db 'db_name' rtype-update --campaign 'campaign_name' "
       "--add task1 --type all")
    assert RunCtrl(seed_db, "campaign_name").info().active_tasks == {"task1"}
