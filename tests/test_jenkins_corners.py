"""Jenkins as it really answers (tests/jenkins_fake.py), and the scheduler surviving it.

Each corner comes from the Jenkins 2.440 source: queue items forgotten 5 minutes
after they left the queue (``Queue.leftItems``), a job listing only its newest
100 builds (``Job.getNewBuilds``; ``allBuilds`` only through ``tree=``), 303 to
the waiting item for an identical trigger (``ParametersDefinitionProperty``),
Jetty's 8 kB URL limit, the queue item classes and the actions of a build.
"""

import jenkins as python_jenkins
import pytest
import requests

from ecaljenkins.errors import JenkinsRefused
from ecaljenkins.executors import (BUILDING, CANCELLED, FINISHED, WAITING, BuildRequest,
                                   JenkinsExecutor)
from ecaljenkins.jenkins_server import connect_jenkins
from ecaljenkins.names import job_name
from ecaljenkins.settings import Settings
from ecaljenkins.workflows import Workflow

from jenkins_fake import LEFT_ITEM_SECONDS, MAX_URL, TOKEN, URL, USER, parse_tree
from scheduling import FIRST_RUN, add_jobs, jenkins_scheduler, make_campaign, make_runs, rows

R = FIRST_RUN
CADENCE = 600   # the scheduler's cron: every 10 minutes
SETTINGS = Settings(jenkins_url=URL, jenkins_user=USER, jenkins_api_token=TOKEN)


@pytest.fixture
def clock(jenkins):
    """The scheduler's clock, shared with the fake Jenkins (its queue retention)."""
    from scheduling import Clock
    shared = Clock()
    jenkins.clock = shared
    return shared


def old_job(jenkins, db, campaign, task):
    """A job rendered before TRIGGER_ID existed: identical triggers are possible."""
    name = job_name(db, campaign, task)
    jenkins.add_job(name, params={"RUN_NUMBER": "", "RUNS": "", "CAMPAIGN": campaign,
                                  "DB": db, "TASK": task})
    return name


# --- the fake itself ----------------------------------------------------------------------

def test_fake_forgets_left_items_after_five_minutes(jenkins, clock):
    name = "ecal-db-c-task"
    jenkins.add_job(name, params={"RUN_NUMBER": ""})
    server = connect_jenkins(SETTINGS)
    started, cancelled = (server.build_job(name, {"RUN_NUMBER": str(r)}) for r in (1, 2))
    number = jenkins.start(started)
    server.cancel_queue(cancelled)
    clock.advance(LEFT_ITEM_SECONDS - 1)
    assert server.get_queue_item(started)["executable"]["number"] == number
    assert server.get_queue_item(cancelled)["cancelled"] is True
    clock.advance(1)
    for qid in (started, cancelled):
        with pytest.raises(python_jenkins.JenkinsException, match="does not exist"):
            server.get_queue_item(qid)
    assert server.get_build_info(name, number)["queueId"] == started   # the build stays


def test_fake_lists_the_newest_100_builds_and_all_builds_only_through_tree(jenkins):
    name = "ecal-db-c-task"
    jenkins.add_job(name, params={"RUN_NUMBER": ""})
    server = connect_jenkins(SETTINGS)
    for run in range(130):
        jenkins.start(server.build_job(name, {"RUN_NUMBER": str(run)}))
    info = server.get_job_info(name)
    assert [b["number"] for b in info["builds"]] == list(range(130, 30, -1))
    assert "allBuilds" not in info and "allBuilds" not in server.get_job_info(name, depth=2)
    tree = server.get_info(f"job/{name}", "?tree=allBuilds[number,queueId]{100,}")
    assert [b["number"] for b in tree["allBuilds"]] == list(range(30, 0, -1))
    assert set(tree) == {"_class", "allBuilds"}
    assert set(tree["allBuilds"][0]) == {"_class", "number", "queueId"}
    tree = server.get_info(f"job/{name}", "?tree=builds[actions[parameters[value]]]{0,1}")
    (build,) = tree["builds"]
    assert {"_class": "hudson.model.ParametersAction",
            "parameters": [{"_class": "hudson.model.StringParameterValue", "value": "129"}]} \
        in build["actions"]
    assert {} in build["actions"]
    assert parse_tree("a[b,c[d]]{2},e") == {
        "a": ({"b": (None, None), "c": ({"d": (None, None)}, None)}, (2, 3)),
        "e": (None, None)}


def test_fake_answers_an_identical_trigger_303_and_long_urls_414(jenkins):
    name = "ecal-db-c-task"
    jenkins.add_job(name, params={"RUN_NUMBER": "", "RUNS": ""})
    server = connect_jenkins(SETTINGS)
    qid = server.build_job(name, {"RUN_NUMBER": "1"})
    with pytest.raises(python_jenkins.NotFoundException):
        server.build_job(name, {"RUN_NUMBER": "1"})
    assert len(jenkins.triggered()) == 1
    assert len(jenkins.endpoint_calls("buildWithParameters")) == 2
    assert jenkins.calls[-1].url == f"{URL}queue/item/{qid}/"   # the 303 followed: 404
    with pytest.raises(requests.HTTPError, match="414"):
        server.build_job(name, {"RUNS": "x" * MAX_URL})
    jenkins.add_job("plain")
    with pytest.raises(python_jenkins.JenkinsException, match=r"\[500\]"):
        server.build_job("plain", {"RUN_NUMBER": "1"})


# --- the executor ------------------------------------------------------------------------

def request_for(job: str, runs=(R,), trigger: str = "t-1", grouped: bool = False):
    return BuildRequest("db", "c", job.rsplit("-", 1)[1], tuple(runs), trigger, 1, "true",
                        grouped=grouped)


def test_identical_trigger_is_the_item_already_queued(jenkins):
    name = old_job(jenkins, "db", "c", "task")
    executor = JenkinsExecutor(settings=SETTINGS)
    qid = executor.start(request_for(name, trigger="t-1"))
    assert executor.start(request_for(name, trigger="t-2")) == qid   # TRIGGER_ID dropped
    assert len(jenkins.triggered(name)) == 1


def test_runs_of_an_era_group_go_in_the_body(jenkins):
    name = job_name("db", "c", "calib")
    jenkins.add_job(name, params={"RUNS": "", "TRIGGER_ID": ""})
    runs = range(300000, 301500)
    qid = JenkinsExecutor(settings=SETTINGS).start(request_for(name, runs, grouped=True))
    assert jenkins.queue[qid].params["RUNS"] == ",".join(map(str, runs))
    (call,) = jenkins.endpoint_calls("buildWithParameters")
    assert len(call.url) < 200 and "300000" in call.body


@pytest.mark.parametrize("status", [500, 400])
def test_a_job_without_parameters_refuses_the_trigger(jenkins, status):
    jenkins.add_job("ecal-db-c-plain")
    jenkins.unparameterized_status = status
    with pytest.raises(JenkinsRefused) as err:
        JenkinsExecutor(settings=SETTINGS).start(request_for("ecal-db-c-plain"))
    assert err.value.status == status and "ecal-db-c-plain" in str(err.value)


def test_queue_states_as_they_come(jenkins, clock):
    name = job_name("db", "c", "task")
    jenkins.add_job(name, params={"RUN_NUMBER": "", "TRIGGER_ID": ""})
    executor = JenkinsExecutor(settings=SETTINGS)
    qid = executor.start(request_for(name))
    for change in (lambda: jenkins.quiet(qid, 5), lambda: jenkins.block(qid, "Build #3 is "
                   "already in progress"), lambda: jenkins.starve(qid, "no agent online"),
                   lambda: jenkins.leave(qid)):         # left, executable still null
        change()
        executor.new_cycle()
        assert executor.locate(name, qid, 0, "t-1") == (WAITING, qid, 0, "", "", "")
    number = jenkins.start(qid)
    jenkins.builds[(name, number)].result = "FAILURE"   # set while the build still runs
    assert executor.locate(name, qid, 0, "t-1").state == BUILDING
    assert executor.locate(name, 0, number, "t-1").state == BUILDING
    jenkins.finish(name, number, "FAILURE")
    assert executor.locate(name, 0, number, "t-1")[:3] == (FINISHED, 0, number)


def test_only_the_parameters_action_names_a_build(jenkins):
    """A build whose other actions carry parameters (here a trigger plugin's record of
    the build that started it) is not taken for the build of those parameters."""
    name = job_name("db", "c", "task")
    jenkins.add_job(name, params={"RUN_NUMBER": "", "TRIGGER_ID": ""})
    executor = JenkinsExecutor(settings=SETTINGS)
    foreign = {"_class": "hudson.plugins.parameterizedtrigger.CapturedEnvironmentAction",
               "parameters": [{"name": "TRIGGER_ID", "value": "t-other"}]}
    number = jenkins.start(executor.start(request_for(name, trigger="t-1")),
                           actions=[{}, foreign, {}])
    assert executor.locate(name, 0, 0, "t-1")[:3] == (BUILDING, 0, number)
    assert executor.locate(name, 0, 0, "t-other").state == "absent"
    listings = [c.url for c in jenkins.endpoint_calls("job")]
    assert listings and all("tree=builds%5B" in url or "tree=builds[" in url
                            for url in listings)
    assert not any("depth" in url for url in listings)


# --- the scheduler at its real cadence ----------------------------------------------------

def test_cancelled_item_forgotten_before_the_next_cycle_is_new_again(client, db, jenkins,
                                                                      clock):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x", max_retries=0)], make_runs(1))
    job = add_jobs(jenkins, db, "c1", ["reco"])["reco"]
    jenkins_scheduler(client, clock).cycle()
    (first,) = jenkins.triggered(job)
    jenkins.cancel(first.id)
    clock.advance(CADENCE)                     # Jenkins has forgotten the item
    report = jenkins_scheduler(client, clock).cycle()
    assert not report.failed
    assert any("cancelled" in w for w in report.campaigns[0].warnings)
    first_again, second = jenkins.triggered(job)
    row = rows(ctrl, "reco")[R]
    assert (row["status"], row["attempt"], row["relaunched"], row["queue_id"]) == \
        ("queued", 1, 0, second.id)            # no retry charged, not "lost"


def test_unreported_build_is_found_by_its_queue_id(client, db, jenkins, clock):
    """The queue forgot the item, the job does not declare TRIGGER_ID: the queue id
    recorded at the trigger finds the build."""
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x")], make_runs(1))
    job = old_job(jenkins, db, "c1", "reco")
    jenkins_scheduler(client, clock).cycle()
    (item,) = jenkins.triggered(job)
    number = jenkins.start(item.id)            # the wrapper never reports
    jenkins.finish(job, number, "SUCCESS")
    clock.advance(CADENCE)
    assert not jenkins_scheduler(client, clock).cycle().failed
    row = rows(ctrl, "reco")[R]
    assert (row["status"], row["build"]) == ("done", number)
    assert len(jenkins.triggered(job)) == 1


def test_unreported_build_beyond_the_newest_100_is_not_triggered_twice(client, db, jenkins,
                                                                       clock):
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x")], make_runs(130))
    job = add_jobs(jenkins, db, "c1", ["reco"])["reco"]
    jenkins_scheduler(client, clock).cycle()
    items = jenkins.triggered(job)
    assert len(items) == 130
    numbers = {int(i.params["RUN_NUMBER"]): jenkins.start(i.id) for i in items}
    clock.advance(CADENCE)                     # none reported; the queue forgot them all
    assert not jenkins_scheduler(client, clock).cycle().failed
    got = rows(ctrl, "reco")
    assert {run: (row["status"], row["build"]) for run, row in got.items()} == \
        {run: ("running", number) for run, number in numbers.items()}
    assert len(jenkins.triggered(job)) == 130
    job_reads = [c.url for c in jenkins.endpoint_calls("job")]
    assert len(job_reads) == 2 and "allBuilds" in job_reads[1]


def test_a_trigger_whose_answer_was_lost_is_found_in_the_queue(client, db, jenkins, clock):
    """Jenkins queued it, the answer never came, the job does not declare TRIGGER_ID: the
    relaunch is identical, Jenkins answers 303 to the waiting item, which is recorded."""
    ctrl = make_campaign(client, "c1", [Workflow("reco", "x")], make_runs(1))
    job = old_job(jenkins, db, "c1", "reco")
    jenkins.fail("buildWithParameters", requests.exceptions.ReadTimeout("timed out"),
                 done=True)
    jenkins_scheduler(client, clock).cycle()
    (item,) = jenkins.triggered(job)
    assert rows(ctrl, "reco")[R]["queue_id"] == 0
    clock.advance(CADENCE)
    report = jenkins_scheduler(client, clock).cycle()
    assert not report.failed, report.campaigns[0].errors
    assert (rows(ctrl, "reco")[R]["status"], rows(ctrl, "reco")[R]["queue_id"]) == \
        ("queued", item.id)
    assert len(jenkins.triggered(job)) == 1


def test_an_era_group_of_a_thousand_runs_is_one_build(client, db, jenkins, clock):
    ctrl = make_campaign(client, "c1", [Workflow("calib", "x", group_by="era")],
                         make_runs(1000))
    job = add_jobs(jenkins, db, "c1", ["calib"])["calib"]
    report = jenkins_scheduler(client, clock).cycle()
    assert not report.failed, report.campaigns[0].errors
    (item,) = jenkins.triggered(job)
    assert item.params["RUNS"].split(",") == [str(R + i) for i in range(1000)]
    assert {row["queue_id"] for row in rows(ctrl, "calib").values()} == {item.id}
