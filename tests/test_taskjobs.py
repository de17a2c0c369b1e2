"""Tasks of many jobs (ecaljenkins.taskjobs): job points, the roll-up into the
(run, task) rows, outputs per job; against the real influxd."""

import pytest

from ecaljenkins import taskjobs
from ecaljenkins.errors import InputError, NotFound
from ecaljenkins.schema import JobStatus, Status
from ecaljenkins.workflows import Workflow

from fixtures.influx import dump
from scheduling import FIRST_FILL, FIRST_RUN, make_campaign, make_runs, rows

R = FIRST_RUN
FILL_RUNS = [R, R + 1, R + 2]


@pytest.fixture
def camp(client):
    return make_campaign(client, "c1", [Workflow("reco", "r"), Workflow("calib", "c")],
                         make_runs(4))


def report(client, jobs, status, **kwargs):
    return taskjobs.report(client, "c1", "reco", jobs, status, **kwargs)


def row_status(camp, task="reco"):
    return {run: row["status"] for run, row in rows(camp, task).items()}


@pytest.mark.parametrize("statuses, expected", [
    ([], None),
    (["done", "done"], Status.DONE),
    (["done", "idle"], Status.RUNNING),
    (["failed", "running"], Status.RUNNING),
    (["failed", "idle", "done"], Status.RUNNING),
    (["done", "failed"], Status.FAILED),
    (["failed"], Status.FAILED),
])
def test_rolled_up_status(statuses, expected):
    assert taskjobs.rolled_up(statuses) == expected


def test_jobs_of_a_fill_roll_up_into_its_runs(client, camp):
    runs = taskjobs.task_runs(client, "c1", "reco", fill=FIRST_FILL)
    assert runs == FILL_RUNS
    jobs = {str(jid): runs for jid in range(3)}
    assert report(client, jobs, "idle", tags={"fill": FIRST_FILL}) == \
        {("reco", run): Status.RUNNING for run in runs}
    assert report(client, {"0": runs}, "running", tags={"fill": FIRST_FILL}) == {}
    report(client, {"0": runs}, "done", tags={"fill": FIRST_FILL}, fields={"output": "a,b"})
    report(client, {"2": runs}, "done", tags={"fill": FIRST_FILL}, fields={"output": "c"})
    assert row_status(camp)[R] == "running"      # job 1 still idle
    assert report(client, {"1": runs}, "failed", tags={"fill": FIRST_FILL}) == \
        {("reco", run): Status.FAILED for run in runs}
    row = camp.task_rows("reco", fields="status, reason, jobs")[0]
    assert (row["status"], row["reason"], row["jobs"]) == ("failed", "1 of 3 jobs failed: 1", 3)
    report(client, {"1": runs}, "idle", tags={"fill": FIRST_FILL})    # resubmitted
    assert row_status(camp)[R] == "running"
    report(client, {"1": runs}, "done", tags={"fill": FIRST_FILL}, fields={"output": "d"})
    assert row_status(camp) == {R: "done", R + 1: "done", R + 2: "done", R + 3: "new"}
    # jobs in id order, the failure gone from the reason, other runs untouched
    for run in runs:
        assert rows(camp, "reco")[run]["output"] == "a,b,d,c"
        assert rows(camp, "reco")[run]["reason"] == ""
    assert camp.get_output(task="reco") == {run: "a,b,d,c" for run in runs}
    assert taskjobs.outputs(client, "c1", "reco") == ["a,b", "d", "c"]
    jobs = taskjobs.read_jobs(client, "c1", "reco", {"fill": FIRST_FILL})
    assert [(job.jid, job.status, job.runs, job.failures) for job in jobs] == \
        [("0", "done", tuple(runs), 0), ("1", "done", tuple(runs), 1),
         ("2", "done", tuple(runs), 0)]
    assert [point["status"] for point in taskjobs.job_history(
        client, "c1", "reco", "1", {"fill": FIRST_FILL})] == ["idle", "failed", "idle", "done"]


def test_a_run_rolls_up_every_job_that_works_on_it(client, camp):
    report(client, {"0": [R]}, "done", tags={"run": R}, fields={"output": "run-level"})
    assert row_status(camp)[R] == "done"
    # a job of the whole fill joins: the run is running again, then done with both
    report(client, {"0": FILL_RUNS}, "running", tags={"fill": FIRST_FILL})
    assert row_status(camp)[R] == "running"
    report(client, {"0": FILL_RUNS}, "done", tags={"fill": FIRST_FILL}, fields={"output": "f"})
    assert row_status(camp)[R] == "done"
    assert camp.get_output(task="reco")[R] in ("run-level,f", "f,run-level")
    # one element per job: the fill's job once, though it covers three runs
    assert sorted(taskjobs.outputs(client, "c1", "reco")) == ["f", "run-level"]
    assert taskjobs.outputs(client, "c1", "reco", runs=[R + 1]) == ["f"]
    assert taskjobs.outputs(client, "c1", "reco", era="Run2022D") == []
    # the two groups of jobs are told apart by their tags
    assert [job.tags for job in taskjobs.read_jobs(client, "c1", "reco", {"run": R})] == \
        [{"run": str(R)}]
    assert len(taskjobs.read_jobs(client, "c1", "reco")) == 2


def test_outputs_of_runs_done_by_their_build(client, camp):
    camp.set_status("reco", [R + 3], "done", output="/eos/built.root")
    report(client, {"7": [R]}, "done", fields={"output": "/eos/job7.root"})
    assert taskjobs.outputs(client, "c1", "reco") == ["/eos/job7.root", "/eos/built.root"]
    assert taskjobs.outputs(client, "c1", "reco", runs=[R + 3]) == ["/eos/built.root"]


def test_roll_up_of_a_task_is_one_request_and_repairs_rows(client, camp):
    report(client, {str(j): [R + j] for j in range(4)}, "done", fields={"output": "o"})
    assert set(row_status(camp).values()) == {"done"}
    camp.set_status("reco", [R, R + 1], "failed")      # e.g. a build's own late report
    before = dict(client.stats)
    assert taskjobs.roll_up(client, "c1", "reco") == {("reco", R): Status.DONE,
                                                      ("reco", R + 1): Status.DONE}
    assert (client.stats["queries"] - before["queries"],
            client.stats["writes"] - before["writes"]) == (1, 1)
    before = dict(client.stats)
    assert taskjobs.roll_up(client, "c1", "reco") == {}       # nothing left to change
    assert client.stats["writes"] == before["writes"]
    assert taskjobs.roll_up(client, "c1", "calib") == {}      # a task without jobs


def test_roll_up_of_a_whole_campaign_is_one_request(client, camp):
    report(client, {"0": [R]}, "done", fields={"output": "o"})
    taskjobs.report(client, "c1", "calib", {"0": [R], "1": [R + 1]}, "running")
    camp.set_status("reco", [R], "new")
    camp.set_status("calib", [R, R + 1], "new")
    before = dict(client.stats)
    assert taskjobs.roll_up(client, "c1") == {("reco", R): Status.DONE,
                                              ("calib", R): Status.RUNNING,
                                              ("calib", R + 1): Status.RUNNING}
    assert (client.stats["queries"] - before["queries"],
            client.stats["writes"] - before["writes"]) == (1, 1)
    assert row_status(camp, "calib") == {R: "running", R + 1: "running", R + 2: "new",
                                         R + 3: "new"}


def test_a_stale_roll_up_never_writes_over_a_newer_row(client, camp):
    """Two jobs of a run end together: the earlier one's read saw the other running."""
    report(client, {"0": [R], "1": [R]}, "running")
    report(client, {"0": [R]}, "done")
    report(client, {"1": [R]}, "done")
    assert row_status(camp)[R] == "done"
    # the earlier job's roll-up, had it read before the other's report, computes
    # running for a row already running: it writes nothing
    stale = [taskjobs.Job("reco", "0", {}, (R,), JobStatus.DONE, 1, None, 0),
             taskjobs.Job("reco", "1", {}, (R,), JobStatus.RUNNING, 1, None, 0)]
    changes, points = taskjobs._row_changes({("reco", R): {"status": "running"}}, stale, {R},
                                            0.0, "c1")
    assert (changes, points) == ({}, [])


BAD = [
    ({"jobs": {"0": [R]}, "status": "queued"}, "'queued' is not a valid JobStatus"),
    ({"jobs": {"0": [R]}, "status": "done", "tags": {"jid": "x"}}, "job tag 'jid' is reserved"),
    ({"jobs": {"0": [R]}, "status": "done", "tags": {"bad-key": 1}}, "invalid job tag name"),
    ({"jobs": {"0": [R]}, "status": "done", "tags": {"group": 1}, "fields": {"group": "x"}},
     "field 'group' is also a tag"),
    ({"jobs": {"0": [R]}, "status": "done", "fields": {"runs": "x"}}, "field 'runs' is reserved"),
    ({"jobs": {"": [R]}, "status": "done"}, "invalid job id"),
    ({"jobs": {"0": []}, "status": "done"}, "job '0' works on no run"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_reports_write_nothing(client, camp, influxd, db, kwargs, message):
    before = dump(influxd, db)
    with pytest.raises((InputError, ValueError), match=message):
        taskjobs.report(client, "c1", "reco", **kwargs)
    assert dump(influxd, db) == before


def test_task_runs_checks_the_runs_have_the_task(client, camp):
    assert taskjobs.task_runs(client, "c1", "reco", runs=[R + 1, R]) == [R, R + 1]
    with pytest.raises(NotFound, match=f"run {R + 9} does not have task 'reco'"):
        taskjobs.task_runs(client, "c1", "reco", runs=[R, R + 9])
    with pytest.raises(NotFound, match="no run of fill 7 has task 'reco'"):
        taskjobs.task_runs(client, "c1", "reco", fill=7)
    with pytest.raises(NotFound, match="does not have task 'nope'"):
        taskjobs.task_runs(client, "c1", "nope", runs=[R])


def test_a_reprocessed_task_starts_its_jobs_afresh(client, camp):
    """After ``reprocess``, the jobs of the old attempt no longer speak for the runs:
    the rows stay new until the new build's jobs report, a job's failures count
    from the reset, and an old job the new split does not have is forgotten."""
    from ecaljenkins.jobctrl import reprocess
    report(client, {"0": [R]}, "failed")
    report(client, {"0": [R]}, "idle")
    report(client, {"0": [R]}, "done", fields={"output": "old0"})
    report(client, {"1": [R]}, "done", fields={"output": "old1"})
    assert rows(camp, "reco")[R]["output"] == "old0,old1"
    assert reprocess(camp, "reco", runs=[R]).reset == [R]
    # the whole campaign's roll-up (a scheduler cycle's) leaves the reset row new
    assert taskjobs.roll_up(client, "c1") == {}
    assert row_status(camp)[R] == "new"
    # a build to run again, not a row of jobs (the scheduler reconciles its build)
    assert camp.task_rows("reco", fields="jobs")[0]["jobs"] == 0
    assert taskjobs.read_jobs(client, "c1", "reco") == []
    assert taskjobs.outputs(client, "c1", "reco") == []
    # the new build splits the run into one job only, which fails once
    report(client, {"0": [R]}, "idle")
    assert row_status(camp)[R] == "running"
    report(client, {"0": [R]}, "failed")
    assert row_status(camp)[R] == "failed"
    assert [(job.jid, job.failures) for job in taskjobs.read_jobs(client, "c1", "reco")] \
        == [("0", 1)]
    report(client, {"0": [R]}, "done", fields={"output": "new0"})
    assert row_status(camp)[R] == "done"
    assert rows(camp, "reco")[R]["output"] == "new0"
    assert taskjobs.outputs(client, "c1", "reco") == ["new0"]
    # the other runs' jobs are not touched by the reset of R
    report(client, {"5": [R + 1]}, "done", fields={"output": "other"})
    assert taskjobs.outputs(client, "c1", "reco") == ["new0", "other"]
    # the whole history is still there
    assert len(taskjobs.job_history(client, "c1", "reco", "0")) == 6
