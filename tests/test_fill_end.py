"""A prompt campaign closes the fill group of its newest run as soon as the run registry
says that fill ended (a run catalogue, or the OMS fake of tests/oms_fake.py, counted),
instead of waiting for the next fill's first run."""

import pytest

from ecaljenkins.cli.automation import main as automation
from ecaljenkins.registry import CatalogRegistry, OmsRegistry, Run
from ecaljenkins.scheduler.waits import GroupOpen
from ecaljenkins.settings import Settings
from ecaljenkins.workflows import Workflow

from oms_fake import CLIENT_ID, CLIENT_SECRET, OmsFake, oms_run
from scheduling import (FIRST_FILL, FIRST_RUN, Clock, add_jobs, jenkins_scheduler,
                        make_campaign, statuses, write_catalogue)

R, F = FIRST_RUN, FIRST_FILL
CALIB = Workflow("calib", "calib.sh", group_by="fill")


def run(number: int, fill: int, closed: bool = True, sequence: str = "GLOBAL-RUN") -> Run:
    return Run.from_attrs({"run_number": number, "fill_number": fill, "era": "Run2022C",
                           "sequence": sequence, "start_time": "2022-07-17T06:00:00",
                           "end_time": "2022-07-17T07:00:00" if closed else None})


def built(report, task: str = "calib") -> list[tuple[int, ...]]:
    return [t.build.runs for t in report.triggered if t.build.task == task]


def open_waits(report, task: str = "calib") -> list[str]:
    return [str(w) for w in report.plan.tasks[task].waiting if isinstance(w, GroupOpen)]


# --- the run catalogue --------------------------------------------------------------------

def catalogue_scheduler(client, path, runs):
    """A scheduler whose run registry is a catalogue file of ``runs``."""
    write_catalogue(path, runs)
    return jenkins_scheduler(client, Clock(), registry=CatalogRegistry(path))


def test_a_fill_the_catalogue_ended_is_built_in_the_same_cycle(client, db, jenkins, tmp_path):
    ctrl = make_campaign(client, "p", [CALIB], [run(R, F)], kind="prompt")
    add_jobs(jenkins, db, "p", ["calib"])
    # fill F's last run closed; fill F+1 has begun, its first run still open
    sched = catalogue_scheduler(client, tmp_path / "runs.csv",
                                [run(R, F), run(R + 1, F), run(R + 2, F + 1, closed=False)])
    report = sched.cycle().campaigns[0]
    assert report.fetched == 1 and report.errors == [] and report.warnings == []
    assert built(report) == [(R, R + 1)]
    assert statuses(ctrl, "calib") == {R: "queued", R + 1: "queued"}


def test_a_fill_that_goes_on_keeps_its_group_open_and_says_why(client, db, jenkins, tmp_path,
                                                                 capsys, monkeypatch):
    ctrl = make_campaign(client, "p", [CALIB], [run(R, F)], kind="prompt")
    add_jobs(jenkins, db, "p", ["calib"])
    path = tmp_path / "runs.csv"                          # no later fill: F may go on
    report = catalogue_scheduler(client, path, [run(R, F), run(R + 1, F)]).cycle().campaigns[0]
    assert built(report) == [] and report.warnings == []
    assert open_waits(report) == ["group still open: fill 8000 has not ended"] * 2
    assert statuses(ctrl, "calib") == {R: "new", R + 1: "new"}
    monkeypatch.setenv("ECAL_RUN_REGISTRY", str(path))
    assert automation(["--db", db, "schedule", "--dry-run", "-v"]) == 0
    assert "group still open: fill 8000 has not ended" in capsys.readouterr().out


def test_a_newest_run_without_a_fill_is_built_at_once(client, db, jenkins, tmp_path):
    make_campaign(client, "p", [CALIB], [run(R, F), run(R + 1, 0)], kind="prompt")
    add_jobs(jenkins, db, "p", ["calib"])
    sched = catalogue_scheduler(client, tmp_path / "runs.csv", [run(R, F), run(R + 1, 0)])
    report = sched.cycle().campaigns[0]
    # a run without a fill is a group of its own: it can never grow, nothing to ask
    assert sorted(built(report)) == [(R,), (R + 1,)]


# --- CMS OMS -----------------------------------------------------------------------------

OMS = Settings(oms_client_id=CLIENT_ID, oms_client_secret=CLIENT_SECRET)
ENDED, GOING = 7966, 8118   # fills of the fake: 7966 ended, 8118 goes on


@pytest.fixture
def oms(jenkins):
    """The OMS fake answering through the Jenkins fake's mock (one ``responses`` mock)."""
    return OmsFake(jenkins.mock)


def oms_campaign(client, db, jenkins, oms, runs, first, workflows=(CALIB,)):
    """Prompt campaign ``p`` holding run ``first`` of the registry ``runs`` (OMS records)."""
    oms.resources["runs"] = runs
    registry = OmsRegistry(settings=OMS)
    ctrl = make_campaign(client, "p", list(workflows), registry.runs([first]), kind="prompt")
    add_jobs(jenkins, db, "p", [wf.task for wf in workflows])
    return ctrl, jenkins_scheduler(client, Clock(), registry=registry)


def fill_queries(oms) -> list[list]:
    return [[p for p in query if p[0].startswith("filter")] for query in oms.queries("fills")]


def test_oms_ended_fill_is_built_in_the_same_cycle_with_one_fill_request(client, db, jenkins,
                                                                        oms):
    runs = [oms_run(355862, ENDED), oms_run(355863, ENDED, "LOCAL-RUN", end=None),
            oms_run(355864, ENDED), oms_run(355870, 7967, end=None)]
    ctrl, sched = oms_campaign(client, db, jenkins, oms, runs, 355862)
    report = sched.cycle().campaigns[0]
    # the open local run of the fill is no run the campaign would take: it holds nothing
    assert report.fetched == 1 and report.errors == [] and report.warnings == []
    assert built(report) == [(355862, 355864)]
    assert fill_queries(oms) == [[("filter[fill_number][EQ]", str(ENDED))]]
    report = sched.cycle().campaigns[0]      # the group is queued: nothing more to ask
    assert built(report) == [] and len(fill_queries(oms)) == 1


def test_oms_fill_going_on_waits_one_request_per_cycle_for_two_tasks(client, db, jenkins, oms):
    runs = [oms_run(357538, GOING), oms_run(357540, GOING, end=None)]
    other = Workflow("eflow", "eflow.sh", group_by="fill")
    ctrl, sched = oms_campaign(client, db, jenkins, oms, runs, 357538, (CALIB, other))
    for cycle in (1, 2):
        report = sched.cycle().campaigns[0]
        assert built(report) == [] and built(report, "eflow") == []
        assert open_waits(report) == open_waits(report, "eflow") == \
            ["group still open: fill 8118 has not ended"]
        assert len(fill_queries(oms)) == cycle            # one per cycle, not per task or run
    oms.resources["fills"][1] = dict(oms.resources["fills"][1], end_time="2022-08-02T03:00:00Z")
    report = sched.cycle().campaigns[0]
    # ended, but its run 357540 is still open: the group would grow
    assert open_waits(report) == ["group still open: fill 8118 has ended, but run(s) 357540 "
                                  "of it still open"]
    oms.resources["runs"][1] = oms_run(357540, GOING)
    report = sched.cycle().campaigns[0]
    assert report.fetched == 1 and len(fill_queries(oms)) == 4
    assert built(report) == built(report, "eflow") == [(357538, 357540)]
    assert statuses(ctrl, "calib") == {357538: "queued", 357540: "queued"}


def test_no_fill_request_unless_a_group_waits_only_for_its_fill(client, db, jenkins, oms):
    runs = [oms_run(355862, ENDED), oms_run(355864, ENDED)]
    reco = Workflow("reco", "reco.sh")
    calib = Workflow("calib", "calib.sh", depends_on=("reco",), group_by="fill")
    ctrl, sched = oms_campaign(client, db, jenkins, oms, runs, 355862, (reco, calib))
    report = sched.cycle().campaigns[0]
    # calib waits for reco, not for its fill: the registry is not asked about the fill
    assert sorted(built(report, "reco")) == [(355862,), (355864,)] and built(report) == []
    assert oms.queries("fills") == []
    ctrl.set_status("reco", [355862, 355864], "done")
    report = sched.cycle().campaigns[0]
    assert built(report) == [(355862, 355864)] and len(fill_queries(oms)) == 1


def test_a_registry_error_leaves_the_group_open_with_a_warning(client, db, jenkins, oms):
    runs = [oms_run(355862, ENDED), oms_run(355864, ENDED)]
    reco = Workflow("reco", "reco.sh")
    ctrl, sched = oms_campaign(client, db, jenkins, oms, runs, 355862, (reco, CALIB))
    oms.fail("fills", 503, {"errors": [{"status": "503", "title": "Service Unavailable"}]})
    report = sched.cycle().campaigns[0]
    assert report.errors == [] and report.fetched == 1
    assert sorted(built(report, "reco")) == [(355862,), (355864,)]     # the cycle went on
    assert built(report) == []
    assert report.warnings == ["campaign 'p': cannot tell whether fill 7966 ended (OMS failed "
                               "on fills (HTTP 503: Service Unavailable)): its group stays open"]
    assert open_waits(report) == [
        "group still open: fill 7966 holds the newest run; whether it ended is unknown (OMS "
        "failed on fills (HTTP 503: Service Unavailable))"] * 2
    report = sched.cycle().campaigns[0]                 # OMS answers again
    assert built(report) == [(355862, 355864)] and report.warnings == []
