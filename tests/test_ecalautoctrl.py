"""ECAL's scripts, written as they are against ``ecalautoctrl``, run on ecaljenkins.

The scripts below import from ``ecalautoctrl`` the way ECAL's workflows do: a
submitter creates a task's jobs, each job reports from its own process as an
HTCondor payload does, a check stage resubmits the failed ones, an analysis
reads the outputs back by era and by runs. They run against the real influxd,
in a campaign the scheduler works on at the same time.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import responses

from ecalautoctrl import JobCtrl, QueryOMS, RunCtrl
from ecaljenkins.errors import AlreadyExists, ConfigError, InputError, NotFound, RegistryError
from ecaljenkins.jobctrl import reprocess
from ecaljenkins.workflows import Workflow

from fixtures.influx import WRITER, dump
from oms_fake import ACCESS_TOKEN, AUDIENCE, CLIENT_ID, CLIENT_SECRET
from fixtures.leaks import run_recorded
from scheduling import (FIRST_FILL, FIRST_RUN, Clock, add_jobs, jenkins_scheduler,
                        make_campaign, make_runs, statuses)

R = FIRST_RUN
FILL_RUNS = [R, R + 1, R + 2]
EOS = "/eos/cms/store/group/dpg_ecal/alca_ecalcalib/automation_prompt/phisym"

# --- the scripts, as ECAL writes them ---------------------------------------------------

#: the start of the submit and check stages: the task's group of jobs from the arguments
STAGE = """
import argparse
from ecalautoctrl import JobCtrl

parser = argparse.ArgumentParser()
parser.add_argument('--campaign')
parser.add_argument('--db')
parser.add_argument('--fill', type=int)
parser.add_argument('--runs')
parser.add_argument('--njobs', type=int)
args = parser.parse_args()
"""

SUBMIT = STAGE + """
jctrl = JobCtrl(task='phisym-reco', campaign=args.campaign,
                tags={'fill': args.fill, 'group': args.runs}, dbname=args.db)
if not jctrl.task_exist():
    jctrl.create_task(jids=[str(i) for i in range(args.njobs)])
print(' '.join(jctrl.get_idle()))
"""

PAYLOAD = """
import argparse
import sys
from ecalautoctrl import JobCtrl

parser = argparse.ArgumentParser()
parser.add_argument('--jid', dest='jid', default='0', type=str)
parser.add_argument('--campaign')
parser.add_argument('--db')
parser.add_argument('--fill')
parser.add_argument('--runs')
parser.add_argument('--fail', action='store_true')
args = parser.parse_args()

jctrl = JobCtrl(task='phisym-reco', campaign=args.campaign,
                tags={'fill': args.fill, 'group': args.runs}, dbname=args.db)
jctrl.running(jid=args.jid)
if args.fail:
    jctrl.failed(jid=args.jid, fields={'exit': 'segfault'})
    sys.exit(1)
outputs = ['EOS/%s/phisymreco_nano_%s.root' % (run, args.jid) for run in args.runs.split(',')]
jctrl.done(jid=args.jid, fields={'output': ','.join(outputs)})
""".replace("EOS", EOS)

CHECK = STAGE + """
jctrl = JobCtrl(task='phisym-reco', campaign=args.campaign,
                tags={'fill': args.fill, 'group': args.runs}, dbname=args.db)
resubmit = []
for jid in jctrl.get_failed():
    if jctrl.get_nretries(jid) < 3:
        jctrl.idle(jid)
        resubmit.append(jid)
print(' '.join(resubmit))
"""

READ = """
import json
import sys
from ecalautoctrl import RunCtrl

rctrl = RunCtrl(dbname=sys.argv[1], campaign=sys.argv[2])
by_era = rctrl.getOutput(era='Run2022C', process='phisym-reco')
files = set()
for out in by_era:
    files.update(out.split(','))
by_runs = rctrl.getOutput(process='phisym-reco', runs=sys.argv[3].split(','))
print(json.dumps({'by_era': by_era, 'types': sorted({type(o).__name__ for o in by_era}),
                  'files': sorted(files), 'by_runs': list(by_runs)}))
"""


@pytest.fixture
def scripts(tmp_path):
    folder = tmp_path / "phisym"
    folder.mkdir()
    for name, text in (("submit", SUBMIT), ("payload", PAYLOAD), ("check", CHECK),
                       ("read", READ)):
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def ecal_env(env):
    """The environment of ECAL's documentation: the password in ECAL_INFLUXDB_PWD."""
    values = dict(os.environ)
    values["ECAL_INFLUXDB_PWD"] = values.pop("ECAL_INFLUXDB_PASSWORD")
    return values


def script(scripts, env, name, *args):
    proc = run_recorded([sys.executable, str(scripts / f"{name}.py"), *map(str, args)],
                        env=env, timeout=120)
    return proc


def payloads(scripts, env, jids, fill, runs, failing=()):
    """HTCondor running a cluster: every job at once, each in its own process."""
    procs = {jid: subprocess.Popen(
        [sys.executable, str(scripts / "payload.py"), "--jid", jid, "--campaign", "prompt",
         "--db", env["ECAL_INFLUXDB_DB"], "--fill", str(fill), "--runs", runs,
         *(["--fail"] if jid in failing else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for jid in jids}
    codes = {}
    for jid, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        run_recorded([sys.executable, "-c", "import sys; sys.stdout.write(sys.argv[1]); "
                      "sys.stderr.write(sys.argv[2])", out, err])   # through the leak guard
        codes[jid] = (proc.returncode, err)
    return codes


@pytest.fixture
def prompt(client, db, jenkins):
    """Campaign ``prompt``: phisym-reco per fill (HTCondor jobs), eflow after it."""
    ctrl = make_campaign(client, "prompt", [
        Workflow("phisym-reco", "phisym-submit", group_by="fill", max_retries=0),
        Workflow("eflow", "eflow.sh", depends_on=("phisym-reco",), group_by="fill")],
        make_runs(6))
    return ctrl, add_jobs(jenkins, db, "prompt", ["phisym-reco", "eflow"])


def test_ecal_scripts_drive_a_task_of_jobs_the_scheduler_sees(prompt, scripts, ecal_env,
                                                               client, db, jenkins, run_cli):
    ctrl, jobs = prompt
    clock = Clock()
    sched = jenkins_scheduler(client, clock)
    # the scheduler triggers the phisym-reco build of the first fill
    assert not sched.cycle().failed
    [item] = [item for item in jenkins.triggered(jobs["phisym-reco"])
              if item.params["RUNS"] == ",".join(map(str, FILL_RUNS))]
    build = jenkins.start(item.id)
    runs_text = item.params["RUNS"]

    # the build runs ECAL's submit script: three jobs, idle; the rows run
    proc = script(scripts, ecal_env, "submit", "--campaign", "prompt", "--db", db,
                  "--fill", FIRST_FILL, "--runs", runs_text, "--njobs", 3)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "1", "2"]
    assert {run: statuses(ctrl, "phisym-reco")[run] for run in FILL_RUNS} == \
        dict.fromkeys(FILL_RUNS, "running")
    # a scheduler cycle meanwhile: the build runs, eflow waits for phisym-reco
    clock.advance(60)
    assert not sched.cycle().failed
    assert jenkins.triggered(jobs["eflow"]) == []

    # HTCondor runs the cluster; job 2 fails; the (run, task) is failed
    codes = payloads(scripts, ecal_env, ["0", "1", "2"], FIRST_FILL, runs_text, failing={"2"})
    assert {jid: code for jid, (code, _) in codes.items()} == {"0": 0, "1": 0, "2": 1}
    assert all(err == "" for _, err in codes.values()), codes
    assert {run: statuses(ctrl, "phisym-reco")[run] for run in FILL_RUNS} == \
        dict.fromkeys(FILL_RUNS, "failed")
    res = run_cli("ecalrunctrl.py", "--db", db, "status", "-c", "prompt", "--json")
    assert res.code == 0, res
    doc = json.loads(res.out)
    assert doc["rtypes"]["all"]["counts"]["phisym-reco"] == {"failed": 3, "queued": 3}
    assert {(f["run"], f["reason"]) for f in doc["failures"]} == \
        {(run, "1 of 3 jobs failed: 2") for run in FILL_RUNS}

    # the check stage resubmits it; it succeeds: the runs are done
    proc = script(scripts, ecal_env, "check", "--campaign", "prompt", "--db", db,
                  "--fill", FIRST_FILL, "--runs", runs_text)
    assert (proc.returncode, proc.stdout.split()) == (0, ["2"]), proc.stderr
    assert statuses(ctrl, "phisym-reco")[R] == "running"
    codes = payloads(scripts, ecal_env, ["2"], FIRST_FILL, runs_text)
    assert codes["2"][0] == 0, codes
    assert {run: statuses(ctrl, "phisym-reco")[run] for run in FILL_RUNS} == \
        dict.fromkeys(FILL_RUNS, "done")
    jctrl = JobCtrl(task="phisym-reco", campaign="prompt",
                    tags={"fill": FIRST_FILL, "group": runs_text}, dbname=db)
    assert jctrl.task_completed() and jctrl.get_nretries("2") == 1
    res = run_cli("ecalrunctrl.py", "--db", db, "status", "-c", "prompt", "--json")
    assert json.loads(res.out)["rtypes"]["all"]["counts"]["phisym-reco"] == \
        {"done": 3, "queued": 3}

    # the analysis reads the outputs back, by era and by runs (given as str)
    proc = script(scripts, ecal_env, "read", db, "prompt", f"{R},{R + 1}")
    assert proc.returncode == 0, proc.stderr
    read = json.loads(proc.stdout)
    expected = [",".join(f"{EOS}/{run}/phisymreco_nano_{jid}.root" for run in FILL_RUNS)
                for jid in "012"]
    assert read["by_era"] == expected and read["types"] == ["str"]
    assert read["files"] == sorted(f"{EOS}/{run}/phisymreco_nano_{jid}.root"
                                   for run in FILL_RUNS for jid in "012")
    assert read["by_runs"] == expected      # each job once, though it covers both runs
    assert RunCtrl(dbname=db, campaign="prompt").getOutput(
        process="phisym-reco", runs=[R + 3]) == []
    # ecaljenkins reads the same outputs per run
    assert ctrl.get_output(task="phisym-reco") == dict.fromkeys(FILL_RUNS, ",".join(expected))

    # the build ends; the scheduler sees phisym-reco done and starts eflow for the fill
    jenkins.finish(jobs["phisym-reco"], build)
    clock.advance(60)
    assert not sched.cycle().failed
    assert [item.params["RUNS"] for item in jenkins.triggered(jobs["eflow"])] == [runs_text]
    assert {run: statuses(ctrl, "phisym-reco")[run] for run in FILL_RUNS} == \
        dict.fromkeys(FILL_RUNS, "done")


# --- JobCtrl: the calls of the notes, their shapes ---------------------------------------

@pytest.fixture
def camp(client):
    return make_campaign(client, "c1", [Workflow("phisym-reco", "p")], make_runs(4))


def jobctrl(db, **tags):
    return JobCtrl(task="phisym-reco", campaign="c1", tags=tags, dbname=db)


def test_jobctrl_calls_and_what_they_return(camp, db):
    jctrl = jobctrl(db, run=R)
    assert not jctrl.task_exist() and not jctrl.task_completed()
    jctrl.create_task(jids=[0, 1, 2])                     # ids given as int are text
    assert jctrl.get_jobs() == {"idle": ["0", "1", "2"], "running": [], "failed": [],
                                "done": []}
    jctrl.running("1")
    jctrl.running(jid="2")
    jctrl.failed(jid="2", fields={"exit_code_of_cmssw": 8001})
    assert (jctrl.get_idle(), jctrl.get_running(), jctrl.get_failed(), jctrl.get_done()) == \
        (["0"], ["1"], ["2"], [])
    assert (jctrl.get_nretries("2"), jctrl.get_nretries(1), jctrl.get_nretries("9")) == (1, 0, 0)
    history = jctrl.get_job("2")
    assert [(point["status"], point["jid"], point["run"]) for point in history] == \
        [("idle", "2", R), ("running", "2", R), ("failed", "2", R)]
    assert history[-1]["exit_code_of_cmssw"] == "8001"
    assert all(isinstance(point["time"], int) for point in history)
    assert jctrl.get_job("2", last=True) == history[-1:]
    assert jctrl.task_exist() and not jctrl.task_completed()
    assert statuses(camp, "phisym-reco")[R] == "running"
    # another group of the task: its own jobs, its own runs
    other = jobctrl(db, run=R + 1)
    assert not other.task_exist() and other.get_jobs()["idle"] == []
    with pytest.raises(AlreadyExists, match="recreate=True"):
        jctrl.create_task(jids=["0"])
    jctrl.create_task(jids=["0", "1", "2"], recreate=True)
    assert jctrl.get_idle() == ["0", "1", "2"] and jctrl.get_nretries("2") == 1
    for jid in "012":
        jctrl.done(jid, fields={"output": f"/eos/{jid}.root"})
    assert jctrl.task_completed()
    assert statuses(camp, "phisym-reco") == {R: "done", R + 1: "new", R + 2: "new",
                                             R + 3: "new"}
    assert RunCtrl(dbname=db, campaign="c1").getOutput(process="phisym-reco", runs=[str(R)]) \
        == ["/eos/0.root", "/eos/1.root", "/eos/2.root"]
    # reprocessed: the submit stage finds no task and creates it again, retries from 0
    assert reprocess(camp, "phisym-reco", runs=[R]).reset == [R]
    assert not jctrl.task_exist() and jctrl.get_nretries("2") == 0
    jctrl.create_task(jids=["0", "1"])
    assert jctrl.get_idle() == ["0", "1"] and statuses(camp, "phisym-reco")[R] == "running"


def test_the_runs_of_a_jobctrl_come_from_its_tags(camp, db):
    # run before group before fill; a fill is every run of it with the task
    assert jobctrl(db, run=R + 1, group=f"{R},{R + 2}", fill=FIRST_FILL).runs == [R + 1]
    assert jobctrl(db, group=f"{R + 2},{R}", fill=FIRST_FILL).runs == [R, R + 2]
    assert jobctrl(db, group=f"{R + 3}").runs == [R + 3]
    assert jobctrl(db, fill=FIRST_FILL).runs == FILL_RUNS
    assert jobctrl(db, fill=str(FIRST_FILL + 1)).runs == [R + 3]


BAD_JOBS = [
    ({"era": "Run2022C"}, {}, InputError, "name no run: give 'run', 'group'"),
    ({"run": R + 9}, {}, NotFound, f"run {R + 9} does not have task 'phisym-reco'"),
    ({"fill": 7}, {}, NotFound, "no run of fill 7 has task 'phisym-reco'"),
    ({"group": f"{R},x"}, {}, InputError, "invalid run number 'x'"),
    ({"run": R}, {"status": "x"}, InputError, "field 'status' is reserved"),
    ({"group": f"{R}"}, {"group": "x"}, InputError, "field 'group' is also a tag"),
    ({"run": R, "jid": "3"}, {}, InputError, "job tag 'jid' is reserved"),
]


@pytest.mark.parametrize("tags, fields, error, message", BAD_JOBS)
def test_bad_jobctrl_reports_write_nothing(camp, db, influxd, tags, fields, error, message):
    before = dump(influxd, db)
    with pytest.raises(error, match=message):
        jobctrl(db, **tags).done("0", fields=fields)
    assert dump(influxd, db) == before


def test_runctrl_getoutput_needs_the_task(camp, db):
    with pytest.raises(InputError, match="getOutput needs process="):
        RunCtrl(dbname=db, campaign="c1").getOutput(era="Run2022C")
    with pytest.raises(NotFound, match="campaign 'c2' does not exist"):
        RunCtrl(dbname=db, campaign="c2").info()


# --- the password variable of ECAL's documentation -----------------------------------------

def test_ecal_influxdb_pwd_alone_logs_in_and_both_different_is_refused(camp, run_cli, env, db):
    password = env["ECAL_INFLUXDB_PASSWORD"]
    res = run_cli("ecalrunctrl.py", "--db", db, "status", "-c", "c1",
                  extra_env={"ECAL_INFLUXDB_PASSWORD": "", "ECAL_INFLUXDB_PWD": password})
    assert res.code == 0 and "phisym-reco" in res.out, res
    res = run_cli("ecalrunctrl.py", "--db", db, "status", "-c", "c1",
                  extra_env={"ECAL_INFLUXDB_PWD": password + "-other"})
    assert res.code == 2 and res.out == ""
    assert res.err.strip().splitlines() == [
        "ecalrunctrl.py: error: ECAL_INFLUXDB_PASSWORD and ECAL_INFLUXDB_PWD are both set, "
        "to different values: unset one of them"]
    assert WRITER[1] not in res.err


# --- QueryOMS ------------------------------------------------------------------------

def test_queryoms_reads_the_catalogue(monkeypatch, tmp_path):
    monkeypatch.delenv("ECAL_RUN_REGISTRY", raising=False)
    qom = QueryOMS()
    assert qom.get_run_attribute(362440, "fill_number") == 8490
    assert qom.get_run_attribute("362440", "era") == "Run2022G"
    with pytest.raises(NotFound, match="did you mean 'fill_number'"):
        qom.get_run_attribute(362440, "fill_numbr")
    with pytest.raises(NotFound, match=r"unknown run 1 \(closest known run: 355100\)"):
        qom.get_run_attribute(1, "era")
    with pytest.raises(ConfigError, match="set ECAL_RUN_REGISTRY=oms"):
        qom.oms
    catalogue = tmp_path / "runs.csv"
    catalogue.write_text("run_number,fill_number,era,sequence,start_time,end_time,b_field\n"
                         "400001,9001,Run2025C,GLOBAL-RUN,2025-06-01T10:00:00Z,,3.8\n")
    monkeypatch.setenv("ECAL_RUN_REGISTRY", str(catalogue))
    assert QueryOMS().get_run_attribute(400001, "b_field") == 3.8


@pytest.fixture
def oms_env(oms, monkeypatch):
    """The OMS registry configured (tests/oms_fake.py answers); omsapi's token endpoint,
    a module global QueryOMS().oms sets, restored after."""
    import omsapi
    monkeypatch.setattr(omsapi, "cern_api_url", omsapi.cern_api_url)
    for name, value in (("ECAL_RUN_REGISTRY", "oms"), ("ECAL_OMS_CLIENT_ID", CLIENT_ID),
                        ("ECAL_OMS_CLIENT_SECRET", CLIENT_SECRET)):
        monkeypatch.setenv(name, value)
    for name in ("ECAL_OMS_URL", "ECAL_OMS_TOKEN_URL", "ECAL_OMS_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    return oms


def test_queryoms_asks_oms_through_the_registry_and_omsapi(oms_env):
    oms = oms_env
    qom = QueryOMS()
    assert qom.get_run_attribute(355870, "fill_number") == 7967
    assert qom.get_run_attribute("355872", "era") == "Run2022C"     # from OMS' eras
    assert qom.get_run_attribute(355870, "last_lumisection_number") == 321   # OMS's own name
    assert len(oms.queries("runs")) == 3      # one query per question
    # as ECAL's scripts query OMS themselves, through omsapi
    q = qom.oms.query("fills")
    q.verbose = False
    q.filter("fill_number", 8118)
    q.attrs(["fill_number", "end_time"])
    data = q.data().json()["data"]
    assert [item["attributes"]["fill_number"] for item in data] == [8118]
    assert data[0]["attributes"]["end_time"] is None
    [fills] = oms.queries("fills")
    assert ("filter[fill_number][EQ]", "8118") in fills
    assert oms.tokens_issued == 2          # the registry's token, and omsapi's own
    assert set(oms.tokens.values()) == {AUDIENCE}
    assert qom.oms is qom.oms


def test_queryoms_refused_by_sso_is_one_line_without_the_secret(oms_env, monkeypatch):
    monkeypatch.setenv("ECAL_OMS_CLIENT_SECRET", "wrong-Secret-1")
    with pytest.raises(RegistryError) as err:
        QueryOMS().oms
    assert str(err.value) == (f"CERN SSO refused the OMS client {CLIENT_ID} (asked through "
                              "omsapi)")
    assert "Secret" not in str(err.value) and ACCESS_TOKEN not in str(err.value)


# --- ecalautomation.py jobctrl --jid: a job reporting from a shell payload ---------------

def test_jobctrl_cli_reports_a_job_as_jobctrl_does(camp, db, run_cli):
    jctrl = jobctrl(db, fill=FIRST_FILL)
    jctrl.create_task(jids=["0", "1"])
    runs = ",".join(map(str, FILL_RUNS))
    for jid, status, extra in (("0", "--running", []), ("0", "--done", ["--fields", "output:a"]),
                               ("1", "--done", ["--fields", "output:b"])):
        res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "jobctrl", "-t",
                      "phisym-reco", "--runs", runs, "--jid", jid, status,
                      "--tags", f"fill:{FIRST_FILL}", *extra)
        assert res.code == 0, res
        assert res.out == f"phisym-reco: job {jid} of run(s) {runs} {status[2:]}\n"
    assert jctrl.get_done() == ["0", "1"] and jctrl.task_completed()
    assert {run: statuses(camp, "phisym-reco")[run] for run in FILL_RUNS} == \
        dict.fromkeys(FILL_RUNS, "done")
    assert RunCtrl(dbname=db, campaign="c1").getOutput(process="phisym-reco") == ["a", "b"]


@pytest.mark.parametrize("args, message", [
    (["--run", str(R), "--idle"], "--idle is the status of a job: give its --jid"),
    (["--run", str(R), "--done", "--tags", "fill:1"], "--tags name the group of a job"),
    (["--run", str(R), "--jid", "0", "--id", "3", "--done"], "not allowed with argument"),
    (["--run", str(R + 9), "--jid", "0", "--done"], f"run {R + 9} does not have task"),
    (["--run", str(R), "--jid", "0", "--done", "--tags", "status:x"],
     "job tag 'status' is reserved"),
    (["--run", str(R), "--jid", "0", "--done", "--tags", "fill"], "invalid tag 'fill'"),
])
def test_jobctrl_cli_bad_job_reports(camp, db, influxd, run_cli, args, message):
    before = dump(influxd, db)
    res = run_cli("ecalautomation.py", "--db", db, "-c", "c1", "jobctrl", "-t", "phisym-reco",
                  *args)
    assert res.code == 2 and message in res.err, res
    assert len(res.err.strip().splitlines()) <= 2 and "Traceback" not in res.err
    assert dump(influxd, db) == before
