"""The pure half of the scheduler: plan() and decide(), rows in, decisions out."""

import ast
from pathlib import Path

import pytest

import ecaljenkins.scheduler

from ecaljenkins.campaign import Campaign, RunType
from ecaljenkins.executors import Fact
from ecaljenkins.scheduler.plan import Build, plan
from ecaljenkins.scheduler.reconcile import decide
from ecaljenkins.scheduler.state import CampaignState, FillEnd, Row
from ecaljenkins.scheduler.waits import (BackOff, Cap, Dependency, Exhausted, GroupNotReady,
                                         GroupOpen, Inactive, Limit, NoDefinition)
from ecaljenkins.workflows import Workflow

NOW = 1_800_000_000.0


def row(run, status="new", attempt=0, fill=1, era="E", updated=NOW - 10_000, queue_id=None,
        build=None, trigger=None, relaunched=None):
    return Row(run, status, attempt, fill, era, updated, queue_id, build, trigger, relaunched)


def state(rows: dict, tasks=None, kind="rereco"):
    active = tuple(tasks if tasks is not None else rows)
    camp = Campaign("c", kind, "", 0, {"all": RunType("all", (), active)})
    return CampaignState(camp, {task: sorted(r, key=lambda x: x.run) for task, r in rows.items()})


def wfs(*workflows):
    return {wf.task: wf for wf in workflows}


def runs_of(result, task):
    return [b.runs for b in result.tasks[task].builds]


def reasons(result, task):
    return {w.run: type(w) for w in result.tasks[task].waiting}


def test_new_rows_are_ready_and_done_or_in_flight_are_not():
    st = state({"a": [row(1), row(2, "done"), row(3, "queued", trigger="t3"),
                      row(4, "running", trigger="t4"), row(5)]})
    result = plan(st, wfs(Workflow("a", "x")), NOW)
    assert runs_of(result, "a") == [(1,), (5,)]
    assert result.tasks["a"].counts == {"new": 2, "done": 1, "queued": 1, "running": 1}
    assert result.tasks["a"].waiting == []
    assert [b.attempt(b.rows[0]) for b in result.tasks["a"].builds] == [1, 1]


def test_dependency_must_be_done_for_the_same_run():
    st = state({"reco": [row(1, "done"), row(2, "running", trigger="x"),
                         row(3, "failed", attempt=1)],
                "calib": [row(1), row(2), row(3), row(4)]})
    result = plan(st, wfs(Workflow("reco", "x", max_retries=0),
                          Workflow("calib", "y", depends_on=("reco",))), NOW)
    assert runs_of(result, "calib") == [(1,)]
    waits = {w.run: w for w in result.tasks["calib"].waiting}
    assert waits[3] == Dependency(3, "reco", "failed")
    assert {run: type(w) for run, w in waits.items()} == {2: Dependency, 3: Dependency,
                                                         4: Dependency}
    assert str(waits[2]) == "dependency not done: reco is running"
    assert str(waits[4]) == "dependency not done: reco is missing for this run"
    assert reasons(result, "reco") == {3: Exhausted}


def test_failed_rows_retry_after_a_doubling_back_off_then_give_up():
    wf = Workflow("a", "x", max_retries=2, retry_delay=60)
    rows = [row(1, "failed", attempt=1, updated=NOW - 59),    # waits 60 s
            row(2, "failed", attempt=1, updated=NOW - 60),    # ready
            row(3, "failed", attempt=2, updated=NOW - 119),   # waits 120 s
            row(4, "failed", attempt=2, updated=NOW - 120),   # ready: last retry
            row(5, "failed", attempt=3, updated=NOW - 10**6)]  # no retry left
    result = plan(state({"a": rows}), wfs(wf), NOW)
    assert runs_of(result, "a") == [(2,), (4,)]
    assert [b.attempt(b.rows[0]) for b in result.tasks["a"].builds] == [2, 3]
    waits = {w.run: w for w in result.tasks["a"].waiting}
    assert waits[1] == BackOff(1, NOW + 1)
    assert waits[3] == BackOff(3, NOW + 1)
    assert waits[5] == Exhausted(5, 3)
    assert str(waits[1]).startswith("back-off until 2027-01-15 08:00:01 UTC")
    assert str(waits[5]) == "retries exhausted (3 attempts)"


def test_back_off_keeps_doubling_past_the_second_attempt():
    """retry_delay after the first failure, then twice as long after each one."""
    wf = Workflow("a", "x", max_retries=5, retry_delay=60)
    delays = {1: 60, 2: 120, 3: 240, 4: 480, 5: 960}
    rows = []
    for attempt, delay in delays.items():
        rows += [row(10 * attempt, "failed", attempt=attempt, updated=NOW - delay + 1),
                 row(10 * attempt + 1, "failed", attempt=attempt, updated=NOW - delay)]
    result = plan(state({"a": rows}), wfs(wf), NOW)
    assert runs_of(result, "a") == [(10 * attempt + 1,) for attempt in delays]
    assert [b.attempt(b.rows[0]) for b in result.tasks["a"].builds] == [2, 3, 4, 5, 6]
    assert result.tasks["a"].waiting == [BackOff(10 * attempt, NOW + 1)
                                         for attempt in delays]


def test_zero_retries_means_one_attempt():
    result = plan(state({"a": [row(1, "failed", attempt=1)]}),
                  wfs(Workflow("a", "x", max_retries=0)), NOW)
    assert reasons(result, "a") == {1: Exhausted}


def test_cap_counts_builds_in_flight():
    rows = [row(1, "queued", trigger="t1"), row(2, "running", trigger="t2")] + \
        [row(run) for run in range(3, 9)]
    result = plan(state({"a": rows}), wfs(Workflow("a", "x", max_in_flight=4)), NOW)
    assert runs_of(result, "a") == [(3,), (4,)]
    waits = [w for w in result.tasks["a"].waiting]
    assert [w.run for w in waits] == [5, 6, 7, 8]
    assert {type(w) for w in waits} == {Cap} and waits[0] == Cap(5, 2, 4)
    assert str(waits[0]) == "cap reached (max_in_flight 4, 2 already in flight)"


def test_fill_group_waits_for_every_run_then_one_build():
    wf = Workflow("calib", "x", depends_on=("reco",), group_by="fill")
    st = state({"reco": [row(1, "done", fill=10), row(2, "done", fill=10),
                         row(3, "done", fill=20), row(4, "running", fill=20, trigger="t")],
                "calib": [row(1, fill=10), row(2, fill=10), row(3, fill=20), row(4, fill=20)]})
    result = plan(st, wfs(Workflow("reco", "r"), wf), NOW)
    assert runs_of(result, "calib") == [(1, 2)]
    waits = {w.run: w for w in result.tasks["calib"].waiting}
    assert waits[3] == GroupNotReady(3, "fill", 20, 1)
    assert isinstance(waits[4], Dependency)
    assert str(waits[3]) == ("rest of its group not ready: 1 run(s) of fill 20 still on "
                                 "their way")


def test_a_group_build_covers_its_done_and_exhausted_runs_and_one_flight_per_trigger():
    wf = Workflow("calib", "x", group_by="era", max_retries=0, max_in_flight=2)
    st = state({"calib": [row(1, "done", era="A"), row(2, era="A"),
                          row(3, "failed", attempt=1, era="A"),
                          row(4, "queued", era="B", trigger="g"),
                          row(5, "queued", era="B", trigger="g"),
                          row(6, era="C"), row(7, era="D")]})
    result = plan(st, wfs(wf), NOW)
    # era B is one build in flight, so one slot is left: era A goes whole, era C waits
    assert runs_of(result, "calib") == [(1, 2, 3)]
    assert reasons(result, "calib") == {6: Cap, 7: Cap}


def test_prompt_campaign_keeps_the_newest_fill_open():
    wf = Workflow("calib", "x", group_by="fill")
    rows = {"calib": [row(1, fill=10), row(2, fill=10), row(3, fill=11)]}
    prompt = plan(state(rows, kind="prompt"), wfs(wf), NOW)
    assert runs_of(prompt, "calib") == [(1, 2)]
    wait = prompt.tasks["calib"].waiting[0]
    assert wait == GroupOpen(3, "fill", 11)
    assert str(wait) == "group still open: fill 11 holds the newest run and may grow"
    rereco = plan(state(rows), wfs(wf), NOW)
    assert runs_of(rereco, "calib") == [(1, 2), (3,)]


def test_the_newest_fill_group_closes_once_the_registry_said_the_fill_is_over():
    fill, era = Workflow("calib", "x", group_by="fill"), Workflow("mon", "y", group_by="era")
    rows = {"calib": [row(1, fill=10), row(2, fill=11), row(3, fill=11)],
            "mon": [row(1, fill=10), row(2, fill=11), row(3, fill=11)]}
    st = state(rows, kind="prompt")
    assert plan(st, wfs(fill, era), NOW).open_fill == 11
    why = {FillEnd(11, "2022-08-02T03:00:00Z"): None,
           FillEnd(10, "2022-08-02T03:00:00Z"): "holds the newest run and may grow",
           FillEnd(11, None): "has not ended",
           FillEnd(11, "2022-08-02T03:00:00Z", (4, 5)): "has ended, but run(s) 4, 5 of it "
                                                         "still open",
           FillEnd(11, None, error="HTTP 503"): "holds the newest run; whether it ended is "
                                                 "unknown (HTTP 503)"}
    for fill_end, expected in why.items():
        st.fill_end = fill_end
        result = plan(st, wfs(fill, era), NOW)
        assert runs_of(result, "mon") == []     # an era group of the newest run always waits
        assert {str(w) for w in result.tasks["mon"].waiting} == \
            {"group still open: era E holds the newest run and may grow"}
        if expected is None:
            assert runs_of(result, "calib") == [(1,), (2, 3)] and result.open_fill is None
        else:
            assert runs_of(result, "calib") == [(1,)] and result.open_fill == 11
            assert {str(w) for w in result.tasks["calib"].waiting} == \
                {f"group still open: fill 11 {expected}"}


def test_inactive_and_undefined_tasks_are_not_scheduled():
    st = state({"gone": [row(1), row(2, "done")], "nodef": [row(1), row(2, "failed")],
                "a": [row(1)]}, tasks=["a", "nodef"])
    result = plan(st, wfs(Workflow("a", "x"), Workflow("gone", "y")), NOW)
    assert runs_of(result, "a") == [(1,)]
    assert result.tasks["gone"].builds == [] and reasons(result, "gone") == {1: Inactive}
    assert reasons(result, "nodef") == {1: NoDefinition, 2: NoDefinition}
    assert str(result.tasks["nodef"].waiting[0]) == "inactive: no workflow definition"


def test_budget_keeps_the_oldest_runs_across_tasks():
    st = state({"a": [row(r) for r in (1, 4, 6)], "b": [row(r) for r in (2, 3, 5)]})
    result = plan(st, wfs(Workflow("a", "x"), Workflow("b", "y")), NOW, budget=3)
    assert runs_of(result, "a") == [(1,)] and runs_of(result, "b") == [(2,), (3,)]
    assert reasons(result, "a") == {4: Limit, 6: Limit}
    assert str(result.tasks["b"].waiting[0]) == "trigger limit of this cycle (3 builds)"


# --- decide: what a build in flight becomes --------------------------------------------

QUEUED = row(7, "queued", attempt=1, queue_id=12, trigger="t", updated=NOW - 30)


@pytest.mark.parametrize("fact, status, fields, event", [
    (Fact("building", build=5, url="u/5/"), "running", {"build": 5, "url": "u/5/"}, False),
    (Fact("finished", build=5, url="u/5/", result="SUCCESS"), "done",
     {"build": 5, "url": "u/5/",
      "reason": "Jenkins build #5 SUCCESS without a report from the workflow"}, True),
    (Fact("finished", build=5, url="u/5/", result="ABORTED"), "failed",
     {"build": 5, "url": "u/5/",
      "reason": "Jenkins build #5 ABORTED without a report from the workflow"}, True),
    (Fact("cancelled", queue_id=12), "new", {"attempt": 0, "queue_id": 0, "trigger": ""}, False),
])
def test_decide_transitions(fact, status, fields, event):
    decision = decide("a", (QUEUED,), fact, NOW)
    assert [(c.row.run, c.status, c.fields, c.event) for c in decision.changes] == \
        [(7, status, fields, event)]
    assert not decision.relaunch and decision.error is None


def test_decide_leaves_what_is_known_alone():
    assert decide("a", (QUEUED,), Fact("waiting", queue_id=12), NOW).changes == []
    running = QUEUED._replace(status="running", build=5)
    assert decide("a", (running,), Fact("building", build=5, url="u"), NOW).changes == []


def test_decide_records_the_queue_id_of_an_intent_found_in_the_queue():
    intent = QUEUED._replace(queue_id=0)
    decision = decide("a", (intent,), Fact("waiting", queue_id=40), NOW)
    assert [(c.status, c.fields) for c in decision.changes] == [("queued", {"queue_id": 40})]


def test_decide_relaunches_a_lost_build_once_after_the_grace_period():
    fresh = decide("a", (QUEUED,), Fact("absent"), NOW, grace=300)
    assert fresh.changes == [] and not fresh.relaunch
    old = QUEUED._replace(updated=NOW - 301)
    lost = decide("a", (old,), Fact("absent"), NOW, grace=300)
    assert lost.relaunch and lost.changes == [] and "triggered again, once" in lost.warning
    again = decide("a", (old._replace(relaunched=1),), Fact("absent"), NOW, grace=300)
    assert not again.relaunch
    assert [(c.status, c.event) for c in again.changes] == [("failed", True)]


def test_decide_reports_executor_errors_without_changing_anything():
    decision = decide("a", (QUEUED,), Fact("unknown", message="Jenkins down"), NOW)
    assert decision.changes == [] and decision.error == "a run(s) 7: Jenkins down"


def test_relaunch_keeps_the_attempt_number():
    build = Build("a", (QUEUED,), relaunch=True)
    assert build.attempt(QUEUED) == 1 and Build("a", (QUEUED,)).attempt(QUEUED) == 2


# --- the stages' layering ------------------------------------------------------------

STAGES = ["clock", "state", "waits", "plan", "report", "lease", "fetch", "reconcile", "trigger",
          "cycle"]


@pytest.mark.parametrize("module", STAGES)
def test_each_scheduler_module_imports_only_the_ones_before_it(module):
    source = (Path(ecaljenkins.scheduler.__file__).parent / f"{module}.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.level == 1}
    assert imported <= set(STAGES[:STAGES.index(module)]), imported


def test_every_scheduler_module_has_a_place_in_the_layering():
    package = Path(ecaljenkins.scheduler.__file__).parent
    assert sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__") == sorted(STAGES)
