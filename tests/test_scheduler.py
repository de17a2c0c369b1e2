"""The scheduler cycle against a real influxd and the fake Jenkins of tests/jenkins_fake.py."""

import pytest
import requests

from ecaljenkins.cli import automation
from ecaljenkins.executors import JenkinsExecutor
from ecaljenkins.scheduler import Scheduler
from ecaljenkins.scheduler.lease import Lease
from ecaljenkins.scheduler.reconcile import GRACE_SECONDS
from ecaljenkins.scheduler.waits import NoDefinition
from ecaljenkins.workflows import Workflow

from jenkins_fake import TOKEN, URL
from scheduling import (FIRST_RUN, Clock, add_jobs, jenkins_scheduler, make_campaign, make_runs,
                        rows, statuses, write_catalogue)

R = FIRST_RUN


class Crash(Exception):
    """The scheduler process dies."""


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def chain(client, db, jenkins):
    """Campaign c1: reco per run (1 retry after 60 s), calib per fill after reco; 6 runs."""
    ctrl = make_campaign(client, "c1", [
        Workflow("reco", "reco.sh", max_retries=1, retry_delay=60),
        Workflow("calib", "calib.sh", depends_on=("reco",), group_by="fill")], make_runs(6))
    return ctrl, add_jobs(jenkins, db, "c1", ["reco", "calib"])


def queue_ids(jenkins, job):
    return {int(item.params["RUN_NUMBER"] or item.params["RUNS"].split(",")[0]): item.id
            for item in jenkins.triggered(job)}


def test_triggers_each_ready_run_once_with_its_parameters(chain, client, db, jenkins, clock):
    ctrl, jobs = chain
    sched = jenkins_scheduler(client, clock)
    report = sched.cycle()
    assert not report.failed and report.skipped is None
    items = jenkins.triggered(jobs["reco"])
    assert [item.params["RUN_NUMBER"] for item in items] == [str(R + i) for i in range(6)]
    first = items[0].params
    assert first["CAMPAIGN"] == "c1" and first["DB"] == db and first["TASK"] == "reco"
    assert first["RUNS"] == "" and len(first["TRIGGER_ID"]) == 32
    assert jenkins.triggered(jobs["calib"]) == []
    stored = rows(ctrl, "reco")
    assert {r: (v["status"], v["queue_id"], v["attempt"]) for r, v in stored.items()} == \
        {item_run: ("queued", qid, 1) for item_run, qid in queue_ids(jenkins, jobs["reco"]).items()}
    assert len({v["trigger"] for v in stored.values()}) == 6
    # a second cycle in a row, and a second scheduler: nothing is triggered twice
    clock.advance(600)
    sched.cycle()
    jenkins_scheduler(client, clock).cycle()
    assert len(jenkins.triggered()) == 6
    assert rows(ctrl, "reco") == stored


def test_fill_group_is_one_build_once_every_run_is_done(chain, client, jenkins, clock):
    ctrl, jobs = chain
    sched = jenkins_scheduler(client, clock)
    sched.cycle()
    reco = queue_ids(jenkins, jobs["reco"])
    for run in (R, R + 1, R + 2, R + 3):   # fill 8000 complete, fill 8001 not
        number = jenkins.start(reco[run])
        jenkins.finish(jobs["reco"], number, "SUCCESS")
    clock.advance(60)
    sched.cycle()
    items = jenkins.triggered(jobs["calib"])
    assert [(item.params["RUNS"], item.params["RUN_NUMBER"]) for item in items] == \
        [(f"{R},{R + 1},{R + 2}", "")]
    calib = rows(ctrl, "calib")
    assert {calib[r]["trigger"] for r in (R, R + 1, R + 2)} == {items[0].params["TRIGGER_ID"]}
    assert {calib[r]["status"] for r in (R, R + 1, R + 2)} == {"queued"}
    assert {calib[r]["status"] for r in (R + 3, R + 4, R + 5)} == {"new"}
    # the group's build reports for all its runs
    number = jenkins.start(items[0].id)
    jenkins.finish(jobs["calib"], number, "FAILURE")
    clock.advance(60)
    sched.cycle()
    calib = rows(ctrl, "calib")
    assert {calib[r]["status"] for r in (R, R + 1, R + 2)} == {"failed"}
    assert calib[R]["reason"] == f"Jenkins build #{number} FAILURE without a report from " \
                                 "the workflow"


def test_reconciles_every_jenkins_outcome(chain, client, jenkins, clock):
    ctrl, jobs = chain
    job = jobs["reco"]
    sched = jenkins_scheduler(client, clock)
    sched.cycle()
    qid = queue_ids(jenkins, job)
    running = jenkins.start(qid[R])
    results = {}
    for run, result in ((R + 1, "SUCCESS"), (R + 2, "FAILURE"), (R + 3, "ABORTED"),
                        (R + 4, "NOT_BUILT")):
        results[run] = jenkins.start(qid[run])
        jenkins.finish(job, results[run], result)
    jenkins.cancel(qid[R + 5])
    clock.advance(30)
    report = sched.cycle()
    got = rows(ctrl, "reco")
    assert (got[R]["status"], got[R]["build"], got[R]["url"]) == \
        ("running", running, f"{URL}job/{job}/{running}/")
    assert got[R + 1]["status"] == "done"
    for run, result in ((R + 2, "FAILURE"), (R + 3, "ABORTED"), (R + 4, "NOT_BUILT")):
        assert (got[run]["status"], got[run]["build"], got[run]["attempt"]) == \
            ("failed", results[run], 1)
        assert got[run]["reason"] == (f"Jenkins build #{results[run]} {result} without a "
                                      "report from the workflow")
    # the cancelled item went back to new, and was triggered again in the same cycle
    assert (got[R + 5]["status"], got[R + 5]["attempt"]) == ("queued", 1)
    assert len(jenkins.triggered(job)) == 7
    assert report.campaigns[0].reconciled == {"running": 1, "done": 1, "failed": 3, "new": 1}
    events = client.select("SELECT run, status, reason FROM job WHERE campaign = 'c1'")
    assert sorted((e["run"], e["status"]) for e in events) == [
        (R + 1, "done"), (R + 2, "failed"), (R + 3, "failed"), (R + 4, "failed")]
    # the failures retry after their back-off (60 s), then give up
    clock.advance(61)
    sched.cycle()
    retried = rows(ctrl, "reco")
    assert all((retried[r]["status"], retried[r]["attempt"]) == ("queued", 2)
               for r in (R + 2, R + 3, R + 4))
    for run in (R + 2, R + 3, R + 4):
        item = [i for i in jenkins.triggered(job) if i.params["RUN_NUMBER"] == str(run)][-1]
        jenkins.finish(job, jenkins.start(item.id), "FAILURE")
    clock.advance(10_000)
    sched.cycle()
    clock.advance(10_000)
    sched.cycle()
    final = rows(ctrl, "reco")
    assert all((final[r]["status"], final[r]["attempt"]) == ("failed", 2)
               for r in (R + 2, R + 3, R + 4))
    assert len(jenkins.triggered(job)) == 10


def test_stale_queued_is_triggered_again_once_then_failed(client, db, jenkins, clock):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x", max_retries=0)], make_runs(1))
    job = add_jobs(jenkins, db, "c1", ["reco"])["reco"]
    sched = jenkins_scheduler(client, clock)
    # the trigger's answer is lost: the intent stays, without a queue id, and Jenkins
    # never queued it
    lost = requests.exceptions.ReadTimeout("read timed out")
    jenkins.fail("buildWithParameters", lost)
    sched.cycle()
    first = rows(ctrl, "reco")[R]
    assert (first["status"], first["queue_id"]) == ("queued", 0)
    clock.advance(GRACE_SECONDS / 2)
    sched.cycle()
    assert rows(ctrl, "reco")[R]["status"] == "queued" and len(jenkins.triggered()) == 0
    clock.advance(GRACE_SECONDS)
    jenkins.fail("buildWithParameters", lost)
    report = sched.cycle()
    assert any("triggered again, once" in w for w in report.campaigns[0].warnings)
    row = rows(ctrl, "reco")[R]
    assert (row["status"], row["attempt"], row["relaunched"], row["queue_id"]) == \
        ("queued", 1, 1, 0)
    assert row["trigger"] != first["trigger"]
    clock.advance(2 * GRACE_SECONDS)
    sched.cycle()
    row = rows(ctrl, "reco")[R]
    assert row["status"] == "failed" and row["reason"].startswith("lost")
    assert jenkins.triggered(job) == []


@pytest.mark.parametrize("where", ["queue", "build"])
def test_crash_between_trigger_and_record_makes_no_duplicate(client, db, jenkins, clock, where):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x")], make_runs(2))
    job = add_jobs(jenkins, db, "c1", ["reco"])["reco"]

    class CrashAfterTrigger(JenkinsExecutor):
        def start(self, request):
            super().start(request)
            raise Crash()

    with pytest.raises(Crash):
        jenkins_scheduler(client, clock, CrashAfterTrigger()).cycle()
    (item,) = jenkins.triggered(job)
    assert rows(ctrl, "reco")[R]["queue_id"] == 0     # the intent: queued, no queue id
    if where == "build":                               # it started, the queue forgot it
        number = jenkins.start(item.id)
        jenkins.forget(item.id)
    sched = jenkins_scheduler(client, clock)
    clock.advance(30)
    sched.cycle()
    got = rows(ctrl, "reco")
    if where == "queue":
        assert (got[R]["status"], got[R]["queue_id"]) == ("queued", item.id)
    else:
        assert (got[R]["status"], got[R]["build"]) == ("running", number)
    # run R+1 had its intent written but was never triggered: after the grace period
    # it is triggered, once; run R never again
    assert got[R + 1]["status"] == "queued" and len(jenkins.triggered()) == 1
    clock.advance(GRACE_SECONDS + 1)
    sched.cycle()
    sched.cycle()
    runs = [i.params["RUN_NUMBER"] for i in jenkins.triggered(job)]
    assert runs.count(str(R)) == 1
    assert runs.count(str(R + 1)) == 1


def test_refused_trigger_rolls_back_and_the_other_tasks_go_on(client, db, jenkins, clock):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], make_runs(3))
    jobs = add_jobs(jenkins, db, "c1", ["a", "b"])
    jenkins.fail("buildWithParameters", 500)        # the first trigger (task a) only
    report = jenkins_scheduler(client, clock).cycle()
    assert report.needs_attention and not report.failed    # the cycle worked: unstable
    (error,) = report.campaigns[0].refused
    assert jobs["a"] in error and "HTTP 500" in error and TOKEN not in error
    assert {r: (v["status"], v["attempt"], v["trigger"]) for r, v in rows(ctrl, "a").items()} \
        == {R + i: ("new", 0, "") for i in range(3)}
    assert set(statuses(ctrl, "b").values()) == {"queued"}
    assert jenkins.triggered(jobs["a"]) == [] and len(jenkins.triggered(jobs["b"])) == 3
    clock.advance(600)
    assert not jenkins_scheduler(client, clock).cycle().failed
    assert len(jenkins.triggered(jobs["a"])) == 3 and len(jenkins.triggered()) == 6


def test_missing_job_fails_its_campaign_only(client, db, jenkins, clock):
    make_campaign(client, "c1", [Workflow("a", "x")], make_runs(2))
    other = make_campaign(client, "c2", [Workflow("a", "x")], make_runs(2))
    add_jobs(jenkins, db, "c2", ["a"])              # c1's job was never pushed
    report = jenkins_scheduler(client, clock).cycle()
    refused = {c.campaign: c.refused for c in report.campaigns}
    assert "HTTP 404" in refused["c1"][0] and refused["c2"] == []
    assert set(statuses(other, "a").values()) == {"queued"}


def test_jenkins_down_marks_nothing_queued(client, db, jenkins, clock, capsys):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x"), Workflow("b", "y")], make_runs(3))
    add_jobs(jenkins, db, "c1", ["a", "b"])
    jenkins.fail("*", requests.exceptions.ConnectionError("refused"), times=None)
    before = {t: rows(ctrl, t) for t in ("a", "b")}
    code = automation.main(["--db", db, "schedule"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot connect" in err and TOKEN not in err
    for task in ("a", "b"):
        assert {r: (v["status"], v["attempt"], v["updated"], v["trigger"] or "")
                for r, v in rows(ctrl, task).items()} == \
            {r: (v["status"], v["attempt"], v["updated"], "") for r, v in before[task].items()}
    assert jenkins.triggered() == []


def test_trigger_timeout_keeps_the_intent_for_the_next_cycle(client, db, jenkins, clock):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x")], make_runs(2))
    job = add_jobs(jenkins, db, "c1", ["a"])["a"]
    jenkins.fail("buildWithParameters", requests.exceptions.ReadTimeout("read timed out"))
    sched = jenkins_scheduler(client, clock)
    report = sched.cycle()
    assert "is unknown: the next cycle looks for it" in report.campaigns[0].errors[0]
    got = rows(ctrl, "a")
    # run R may have been queued (unknown): kept as an intent; run R+1 was not sent
    assert (got[R]["status"], got[R]["queue_id"]) == ("queued", 0)
    assert (got[R + 1]["status"], got[R + 1]["trigger"]) == ("new", "")
    clock.advance(60)
    sched.cycle()
    assert [i.params["RUN_NUMBER"] for i in jenkins.triggered(job)] == [str(R + 1)]
    clock.advance(GRACE_SECONDS)
    sched.cycle()
    assert sorted(i.params["RUN_NUMBER"] for i in jenkins.triggered(job)) == [str(R),
                                                                            str(R + 1)]


def test_cap_and_trigger_limit(client, db, jenkins, clock):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x", max_in_flight=3)], make_runs(8))
    job = add_jobs(jenkins, db, "c1", ["a"])["a"]
    sched = jenkins_scheduler(client, clock, max_triggers=2)
    sched.cycle()
    assert len(jenkins.triggered(job)) == 2
    sched.cycle()
    assert len(jenkins.triggered(job)) == 3          # capped at 3 in flight
    first = jenkins.triggered(job)[0]
    jenkins.finish(job, jenkins.start(first.id), "SUCCESS")
    sched.cycle()
    assert len(jenkins.triggered(job)) == 4
    assert list(statuses(ctrl, "a").values()).count("done") == 1


def test_queries_per_campaign_do_not_grow_with_runs(client, db, jenkins, clock):
    workflows = [Workflow("reco", "x"), Workflow("calib", "y", depends_on=("reco",),
                                                 group_by="fill")]
    make_campaign(client, "small", workflows, make_runs(10))
    make_campaign(client, "large", workflows, make_runs(200, first=360000))
    add_jobs(jenkins, db, "small", ["reco", "calib"])
    add_jobs(jenkins, db, "large", ["reco", "calib"])
    sched = jenkins_scheduler(client, clock)
    costs = {}
    for name in ("small", "large", "small", "large"):   # a first and a second cycle
        before = dict(client.stats)
        sched.cycle(name)
        costs.setdefault(name, []).append(
            (client.stats["queries"] - before["queries"], client.stats["writes"] - before["writes"]))
        clock.advance(60)
    assert costs["small"] == costs["large"]
    # config + lease (read, read back) + the mark + the campaign's rows + where the next
    # mark's group starts + the jobs of tasks of many jobs (none here); lease, 2 writes,
    # the mark, lease release
    assert costs["small"][0] == (7, 5)


def test_a_second_scheduler_skips_while_the_lease_is_held(client, db, jenkins, clock):
    make_campaign(client, "c1", [Workflow("a", "x")], make_runs(2))
    add_jobs(jenkins, db, "c1", ["a"])
    other = Lease(client, "host-b:42:cafe", seconds=600, settle=0, clock=clock)
    assert other.acquire() is None
    report = jenkins_scheduler(client, clock).cycle()
    assert "another scheduler (host-b:42:cafe) holds the lease" in report.skipped
    assert jenkins.triggered() == []
    clock.advance(601)                                # the holder died: its lease expires
    assert jenkins_scheduler(client, clock).cycle().skipped is None
    assert len(jenkins.triggered()) == 2


def test_prompt_campaign_fetches_new_closed_runs(client, db, jenkins, clock, tmp_path,
                                                 monkeypatch):
    runs = make_runs(6) + make_runs(1, first=R + 6, closed=False)
    write_catalogue(tmp_path / "runs.csv", runs)
    monkeypatch.setenv("ECAL_RUN_REGISTRY", str(tmp_path / "runs.csv"))
    ctrl = make_campaign(client, "prompt", [Workflow("a", "x")], runs[:2], kind="prompt")
    job = add_jobs(jenkins, db, "prompt", ["a"])["a"]
    dry = Scheduler(client, dry_run=True, clock=clock).cycle()
    assert dry.campaigns[0].fetched == 4 and len(statuses(ctrl, "a")) == 2
    report = jenkins_scheduler(client, clock).cycle()
    assert report.campaigns[0].fetched == 4
    assert sorted(statuses(ctrl, "a")) == [R + i for i in range(6)]   # not the open run
    assert len(jenkins.triggered(job)) == 6
    clock.advance(600)
    assert jenkins_scheduler(client, clock).cycle().campaigns[0].fetched == 0


def test_workflow_definition_falls_back_to_the_catalogue(client, db, jenkins, clock, tmp_path,
                                                         monkeypatch):
    ctrl = make_campaign(client, "c1", [Workflow("a", "x")], make_runs(1))
    ctrl.update_rtype("all", add=["b", "c"], backfill=True)   # no definitions recorded
    (tmp_path / "wf.yaml").write_text("b:\n  command: echo b\n")
    monkeypatch.setenv("ECAL_WORKFLOWS", str(tmp_path / "wf.yaml"))
    report = Scheduler(client, dry_run=True, clock=clock).cycle()
    (cycle,) = report.campaigns
    assert cycle.warnings == ["task 'b' has no recorded workflow definition: using the "
                              "catalogue's"]
    assert [b.runs for b in cycle.plan.tasks["b"].builds] == [(R,)]
    assert cycle.plan.tasks["c"].waiting == [NoDefinition(R)]


def test_jenkins_down_while_builds_are_in_flight_changes_nothing(chain, client, jenkins, clock):
    ctrl, jobs = chain
    sched = jenkins_scheduler(client, clock)
    sched.cycle()
    before = rows(ctrl, "reco")
    jenkins.fail("*", requests.exceptions.ConnectionError("refused"), times=None)
    clock.advance(GRACE_SECONDS * 10)
    report = sched.cycle()
    (error,) = report.campaigns[0].errors
    assert error.startswith("6 (run, task) in flight not checked: Jenkins ")
    assert "cannot connect" in error and TOKEN not in error
    assert rows(ctrl, "reco") == before


def test_a_page_that_is_not_json_is_a_jenkins_error(chain, client, jenkins, clock):
    ctrl, jobs = chain
    sched = jenkins_scheduler(client, clock)
    sched.cycle()
    jenkins.fail("queue_item", 200, times=None)      # an HTML page with status 200
    errors = sched.cycle().campaigns[0].errors
    assert len(errors) == 6 and all("the answer is not JSON" in error for error in errors)
    assert set(statuses(ctrl, "reco").values()) == {"queued"}


def test_a_group_of_one_run_is_still_given_as_runs(client, db, jenkins, clock):
    make_campaign(client, "c1", [Workflow("calib", "x", group_by="fill")], make_runs(1))
    job = add_jobs(jenkins, db, "c1", ["calib"])["calib"]
    jenkins_scheduler(client, clock).cycle()
    (item,) = jenkins.triggered(job)
    assert (item.params["RUNS"], item.params["RUN_NUMBER"]) == (str(R), "")


def test_schedule_exits_3_when_jenkins_refused_builds(client, db, jenkins, capsys):
    """Unstable in Jenkins, not failed: the cycle worked, a job is missing or disabled."""
    from ecaljenkins.cli.automation import main
    make_campaign(client, "c1", [Workflow("a", "x")], make_runs(1))
    add_jobs(jenkins, db, "c1", ["a"])
    jenkins.fail("buildWithParameters", 409)
    assert main(["--db", db, "schedule"]) == 3
    assert "ecalautomation.py: needs attention: " in capsys.readouterr().err
    assert main(["--db", db, "schedule"]) == 0
