"""Jobs rendered from the templates, checked by Jenkins Job Builder, pushed to a fake Jenkins.

Every assertion on a job is made on the config.xml JJB produces (what Jenkins
stores), and the shell step is run with ``sh -xe`` as Jenkins does, with a stub
``ecalautomation.py`` recording the argv it receives.
"""

import json
import os
import shlex
import shutil
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jenkins as python_jenkins
import pytest
import requests

from ecaljenkins import __version__
from ecaljenkins.errors import (ConfigError, InputError, InvalidName, JenkinsAuthError,
                                JobNameCollision,
                                JenkinsError, JenkinsNotFound, JenkinsRefused, JenkinsTimeout,
                                JenkinsUnreachable)
from ecaljenkins.executors import BuildRequest, JenkinsExecutor
from ecaljenkins.jenkins_server import (REQUIRED_PLUGINS, connect_jenkins, missing_plugins,
                                        set_enabled)
from ecaljenkins.jobs import (HASH_MARK, NEEDS_ATTENTION, SCHEDULER_JOB, build_command, render_campaign, render_scheduler,
                              scheduler_command, templates_dir, update_jenkins, validate)
from ecaljenkins.names import job_name
from ecaljenkins.settings import Settings
from ecaljenkins.workflows import Workflow, load_catalogue

from fixtures.leaks import run_recorded
from jenkins_fake import TOKEN, URL, USER

DB, CAMPAIGN = "ecal_test", "rereco-2022"
MANAGED = "<!-- Managed by Jenkins Job Builder -->"
PARAMS = ["RUN_NUMBER", "RUNS", "CAMPAIGN", "DB", "TASK", "TRIGGER_ID"]


def render(tmp_path, workflows, active, db=DB, campaign=CAMPAIGN, **kwargs):
    catalogue = {wf.task: wf for wf in workflows}
    return render_campaign(db, campaign, catalogue, set(active), tmp_path / "jobs", **kwargs)


def parsed(path) -> dict[str, ET.Element]:
    return {name: ET.fromstring(xml) for name, xml in validate(path).items()}


def params(job: ET.Element) -> dict[str, str]:
    return {p.findtext("name"): p.findtext("defaultValue") or ""
            for p in job.iter("hudson.model.StringParameterDefinition")}


def shell(job: ET.Element) -> str:
    (command,) = [el.text for el in job.iter("command")]
    return command


def run_like_jenkins(tmp_path, script: str, env: dict, fail_for: str = "",
                     exit_code: int = 1) -> tuple[int, list]:
    """Run a shell step as Jenkins does (``sh -xe script``) with stub ecaljenkins commands.

    The stubs sit in the kept venv of this version (``$ECAL_VENV_ROOT/<version>``,
    complete: the step must use it as it is, installing nothing). Returns the
    exit status and the argv of every call of a stub (its name first); a stub
    exits ``exit_code`` when its argv contains every word of ``fail_for``.
    """
    venv = tmp_path / "venvs" / __version__
    bin_dir = venv / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (venv / ".installed").write_text(__version__)
    for name in ("ecalautomation.py", "ecalrunctrl.py"):
        stub = bin_dir / name
        stub.write_text(f"#!{sys.executable}\n"
                        "import json, os, sys\n"
                        "with open(os.environ['ARGV_LOG'], 'a') as log:\n"
                        f"    log.write(json.dumps([{name!r}] + sys.argv[1:]) + '\\n')\n"
                        "words = os.environ['FAIL_FOR'].split()\n"
                        "sys.exit(int(os.environ['EXIT_CODE']) if words "
                        "and all(w in sys.argv for w in words) else 0)\n")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    script_file = tmp_path / "jenkins-step.sh"
    script_file.write_text(script, encoding="utf-8")
    log = tmp_path / "argv.log"
    log.unlink(missing_ok=True)
    log.touch()
    proc = run_recorded(["sh", "-xe", str(script_file)],
                        env={"PATH": os.environ["PATH"], "ARGV_LOG": str(log),
                             "ECAL_VENV_ROOT": str(tmp_path / "venvs"), "HOME": str(tmp_path),
                             "FAIL_FOR": fail_for, "EXIT_CODE": str(exit_code), **env})
    return proc.returncode, [json.loads(line) for line in log.read_text().splitlines()]


# --- names -----------------------------------------------------------------------

def test_job_name():
    assert job_name("ecal_prod", "prompt-2024", "pi0-mon") == "ecal-ecal_prod-prompt-2024-pi0-mon"
    for bad in (("x;y", "c", "t"), ("db", "a b", "t"), ("db", "c", "$(id)"), ("db", "c", "t.")):
        with pytest.raises(InvalidName):
            job_name(*bad)


# --- rendering campaigns -----------------------------------------------------------

def test_single_task_campaign(tmp_path):
    wf = Workflow("demo-reco", "python3 -m demo_reco --runs \"${RUNS:-$RUN_NUMBER}\"",
                  timeout_minutes=10, description="Demo reconstruction.")
    path = render(tmp_path, [wf], {"demo-reco"})
    assert path == tmp_path / "jobs" / DB / f"{CAMPAIGN}.yaml"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    jobs = parsed(path)
    name = "ecal-ecal_test-rereco-2022-demo-reco"
    assert list(jobs) == [name]
    job = jobs[name]
    assert job.tag == "project"  # freestyle
    assert job.findtext("disabled") == "false"
    assert job.findtext("concurrentBuild") == "true"
    assert job.find("assignedNode") is None and job.findtext("canRoam") == "true"
    assert job.find(".//hudson.plugins.throttleconcurrents.ThrottleJobProperty") is None
    assert params(job) == {"RUN_NUMBER": "", "RUNS": "", "CAMPAIGN": CAMPAIGN, "DB": DB,
                           "TASK": "demo-reco", "TRIGGER_ID": ""}
    assert [p.findtext("name") for p in job.iter("hudson.model.StringParameterDefinition")] \
        == PARAMS
    description = job.findtext("description")
    assert description.startswith("Demo reconstruction.\n") and description.endswith(MANAGED)
    timeout = job.find(".//hudson.plugins.build__timeout.BuildTimeoutWrapper")
    assert timeout.findtext(".//timeoutMinutes") == "10"
    assert timeout.find(".//hudson.plugins.build__timeout.operations.FailOperation") is not None
    binding = job.find(".//org.jenkinsci.plugins.credentialsbinding.impl."
                       "UsernamePasswordMultiBinding")
    assert (binding.findtext("credentialsId"), binding.findtext("usernameVariable"),
            binding.findtext("passwordVariable")) == (
        "ecal-influxdb", "ECAL_INFLUXDB_USER", "ECAL_INFLUXDB_PASSWORD")
    assert job.find(".//jenkins.model.BuildDiscarderProperty") is not None
    assert job.find("scm").get("class") == "hudson.scm.NullSCM"   # nothing to check out
    assert shell(job) == build_command(wf)
    assert shell(job).startswith(f"ECALJENKINS_VERSION={__version__}\n")
    assert shell(job).endswith(
        'exec "$ECAL_VENV/bin/ecalautomation.py" --db "$DB" --campaign "$CAMPAIGN" run '
        '--task "$TASK" --runs "${RUNS:-$RUN_NUMBER}" -- bash -c '
        "'python3 -m demo_reco --runs \"${RUNS:-$RUN_NUMBER}\"'")


def test_dependent_and_grouped_tasks(tmp_path):
    reco = Workflow("phisym-reco", "reco.sh \"$RUN_NUMBER\"", max_in_flight=50)
    calib = Workflow("phisym-calib", "calib.sh \"$RUNS\"", depends_on=("phisym-reco",),
                     group_by="fill", max_in_flight=4, node="cmsecal && el9",
                     timeout_minutes=360)
    timing = Workflow("timing-calib", "timing.sh", group_by="era", max_in_flight=1)
    jobs = parsed(render(tmp_path, [reco, calib, timing],
                         {"phisym-reco", "phisym-calib", "timing-calib"},
                         credentials_id="ecal-influx-rw"))
    prefix = "ecal-ecal_test-rereco-2022-"
    assert sorted(jobs) == [prefix + t for t in ("phisym-calib", "phisym-reco", "timing-calib")]
    job = jobs[prefix + "phisym-calib"]
    assert job.findtext("assignedNode") == "cmsecal && el9" and job.findtext("canRoam") == "false"
    throttle = job.find(".//hudson.plugins.throttleconcurrents.ThrottleJobProperty")
    assert throttle.findtext("maxConcurrentTotal") == "4"
    assert throttle.findtext("maxConcurrentPerNode") == "0"
    assert throttle.findtext("throttleOption") == "project"
    assert throttle.findtext("throttleEnabled") == "true"
    assert job.findtext(".//timeoutMinutes") == "360"
    assert "one build per fill" in job.findtext("description")
    assert "Runs after: phisym-reco." in job.findtext("description")
    assert params(job)["TASK"] == "phisym-calib"
    assert shell(job).endswith("-- bash -c 'calib.sh \"$RUNS\"'")
    assert "one build per era" in jobs[prefix + "timing-calib"].findtext("description")
    for name, job in jobs.items():
        assert job.findtext(".//credentialsId") == "ecal-influx-rw"
        assert job.findtext("disabled") == "false"


def test_deactivated_tasks_are_disabled_not_dropped(tmp_path):
    workflows = [Workflow("demo-reco", "true"),
                 Workflow("demo-calib", "true", depends_on=("demo-reco",), group_by="fill")]
    path = render(tmp_path, workflows, {"demo-reco"})
    jobs = parsed(path)
    assert jobs["ecal-ecal_test-rereco-2022-demo-reco"].findtext("disabled") == "false"
    assert jobs["ecal-ecal_test-rereco-2022-demo-calib"].findtext("disabled") == "true"
    # the whole campaign deactivated: same file, every job disabled
    assert render(tmp_path, workflows, set()) == path
    assert {job.findtext("disabled") for job in parsed(path).values()} == {"true"}


def test_active_task_missing_from_catalogue(tmp_path):
    with pytest.raises(ConfigError, match="active tasks ghost of campaign 'rereco-2022' "
                                          "are not in the workflow catalogue"):
        render(tmp_path, [Workflow("demo-reco", "true")], {"demo-reco", "ghost"})


def test_shipped_catalogue_renders_and_validates(tmp_path):
    catalogue = load_catalogue()
    path = render_campaign("ecal_prod", "prompt-2024", catalogue, {"pi0-mon", "laser-mon"},
                           tmp_path)
    jobs = parsed(path)
    assert len(jobs) == len(catalogue)
    for task, wf in catalogue.items():
        job = jobs[job_name("ecal_prod", "prompt-2024", task)]
        assert shell(job) == build_command(wf)
        assert job.findtext("disabled") == ("false" if task in ("pi0-mon", "laser-mon")
                                            else "true")


def test_rendered_shell_step_runs_the_wrapper(tmp_path):
    wf = Workflow("demo-calib", 'python3 -m demo_calib --runs "$RUNS"', group_by="fill")
    job = parsed(render(tmp_path, [wf], {"demo-calib"}))[job_name(DB, CAMPAIGN, "demo-calib")]
    env = {"DB": DB, "CAMPAIGN": CAMPAIGN, "TASK": "demo-calib", "RUN_NUMBER": "",
           "RUNS": "355100,355101"}
    code, calls = run_like_jenkins(tmp_path, shell(job), env)
    assert code == 0
    assert calls == [["ecalautomation.py", "--db", DB, "--campaign", CAMPAIGN, "run", "--task",
                      "demo-calib", "--runs", "355100,355101", "--", "bash", "-c", wf.command]]
    code, calls = run_like_jenkins(tmp_path, shell(job), dict(env, RUNS="", RUN_NUMBER="355100"))
    assert calls[0][9] == "355100"


# --- hostile catalogue entries -----------------------------------------------------

HOSTILE_COMMANDS = [
    "echo {RUN_NUMBER} {{double}} {{{triple}}} }{ { } {0} {name|default} {obj:x}",
    "echo '{single}' \"{double}\" ${HOME} ${RUNS:-$RUN_NUMBER} $RUN_NUMBER",
    "echo $(whoami) `id` && rm -rf \"$TMPDIR/x\"; exit 0 || true",
    "line1\nline2\n\tindented\n\n",
    "  leading and trailing spaces  ",
    "back\\slash \\n \\\\ \\' \\\" \\{",
    "key: value\n- item\n? complex\n!!python/object/apply:os.system ['id']\n&a *a\n---\n...",
    "{% raw %}{{ 7*7 }}{# c #}{% endraw %} {{ job.name }} ${{ x }}",
    "echo 'it'\"'\"'s' unbalanced ' \"",
    "naïve ☃ 😀 \u2028 \x85 \ufeff",
    "printf '%s %(name)s %d\\n' <xml>&amp; ]]> <!-- --> <![CDATA[x]]>",
    "#!/bin/bash\n# comment {not a param}\n: \"${x:?}\"",
    "- job:\n    name: evil\n    builders:\n      - shell: 'rm -rf /'",
]


@pytest.mark.parametrize("command", HOSTILE_COMMANDS)
def test_hostile_commands_reach_bash_unchanged(tmp_path, command):
    wf = Workflow("hostile", command, description=command,
                  node="linux && " + command[:20].replace("\n", " "))
    jobs = parsed(render(tmp_path, [wf], {"hostile"}))
    assert list(jobs) == [job_name(DB, CAMPAIGN, "hostile")]  # structure unchanged
    job = jobs[job_name(DB, CAMPAIGN, "hostile")]
    assert shell(job) == build_command(wf)
    assert shlex.split(shell(job))[-3:] == ["bash", "-c", command]
    assert job.findtext("description").startswith(command.strip())
    assert job.findtext("assignedNode") == wf.node
    assert params(job) == {"RUN_NUMBER": "", "RUNS": "", "CAMPAIGN": CAMPAIGN, "DB": DB,
                           "TASK": "hostile", "TRIGGER_ID": ""}
    assert len(list(job.iter("hudson.tasks.Shell"))) == 1
    code, calls = run_like_jenkins(tmp_path, shell(job), {
        "DB": DB, "CAMPAIGN": CAMPAIGN, "TASK": "hostile", "RUN_NUMBER": "355100", "RUNS": ""})
    assert code == 0 and calls[0][-1] == command and calls[0][-3:-1] == ["bash", "-c"]


@pytest.mark.parametrize("args", [
    {"db": "ecal;rm"}, {"db": "a b"}, {"campaign": "{x}"}, {"campaign": "c\nd"},
    {"campaign": "-c"}, {"credentials_id": 'ecal"influx'}, {"credentials_id": "x: y"},
])
def test_hostile_names_are_refused(tmp_path, args):
    with pytest.raises(InvalidName) as err:
        render(tmp_path, [Workflow("demo-reco", "true")], {"demo-reco"}, **args)
    assert isinstance(err.value, InputError) and "\n" not in str(err.value)
    assert not (tmp_path / "jobs").exists()


def test_task_listed_under_another_name(tmp_path):
    with pytest.raises(ConfigError, match="listed as task"):
        render_campaign(DB, CAMPAIGN, {"a": Workflow("b", "true")}, set(), tmp_path)


# --- JJB validation and templates --------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ('- job:\n    name: x\n    builders:\n      - shell: "echo {missing}"\n',
     ":4: Jenkins Job Builder refused the jobs: While formatting string"),
    ("- job:\n    name: x\n    project-type: nonsense\n", "Jenkins Job Builder refused the jobs"),
    ("- job:\n    name: x\n    properties:\n      - throttle:\n          max-total: 2\n",
     "is an invalid value for attribute"),
    ("job: x\n", "The topmost collection must be a list"),
    ("- job:\n  name: [\n", ":3: invalid YAML: expected the node content"),
])
def test_validate_refuses_what_jjb_refuses(tmp_path, text, fragment):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        validate(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_validate_folder_and_missing_file(tmp_path):
    render(tmp_path, [Workflow("demo-reco", "true")], {"demo-reco"}, campaign="one")
    render(tmp_path, [Workflow("demo-reco", "true")], {"demo-reco"}, campaign="two")
    render_scheduler([DB], tmp_path / "jobs")
    assert sorted(validate(tmp_path / "jobs")) == sorted(
        [SCHEDULER_JOB, job_name(DB, "one", "demo-reco"), job_name(DB, "two", "demo-reco")])
    with pytest.raises(ConfigError, match="not found"):
        validate(tmp_path / "nothing.yaml")


def test_templates_override(tmp_path, monkeypatch):
    assert (templates_dir() / "workflow-job.yaml.j2").is_file()
    custom = tmp_path / "templates"
    shutil.copytree(templates_dir(), custom)
    template = custom / "workflow-job.yaml.j2"
    template.write_text(template.read_text().replace("num-to-keep: 2000", "num-to-keep: 7"))
    monkeypatch.setenv("ECAL_TEMPLATES", str(custom))
    job = next(iter(parsed(render(tmp_path, [Workflow("demo-reco", "true")], set())).values()))
    assert job.findtext(".//numToKeep") == "7"
    template.write_text(template.read_text() + "{{ undefined_variable }}\n")
    with pytest.raises(ConfigError, match="undefined_variable"):
        render(tmp_path, [Workflow("demo-reco", "true")], set())
    monkeypatch.setenv("ECAL_TEMPLATES", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="templates directory .*missing not found"):
        render(tmp_path, [Workflow("demo-reco", "true")], set())


# --- the scheduler job ---------------------------------------------------------------

def test_scheduler_job(tmp_path):
    path = render_scheduler(["ecal_prod", "ecal_test", "ecal_prod"], tmp_path,
                            jenkins_credentials_id="jenkins-bot", node="cmsecal")
    assert path == tmp_path / "scheduler.yaml"
    job = parsed(path)[SCHEDULER_JOB]
    assert job.findtext(".//hudson.triggers.TimerTrigger/spec") == "H/10 * * * *"
    assert job.findtext("concurrentBuild") == "false"
    assert job.findtext("assignedNode") == "cmsecal"
    assert job.findtext(".//timeoutMinutes") == "30"
    bindings = {(b.findtext("credentialsId"), b.findtext("usernameVariable"),
                 b.findtext("passwordVariable"))
                for b in job.iter("org.jenkinsci.plugins.credentialsbinding.impl."
                                  "UsernamePasswordMultiBinding")}
    assert bindings == {("ecal-influxdb", "ECAL_INFLUXDB_USER", "ECAL_INFLUXDB_PASSWORD"),
                        ("jenkins-bot", "JENKINS_USER", "JENKINS_API_TOKEN"),
                        ("ecal-oms", "ECAL_OMS_CLIENT_ID", "ECAL_OMS_CLIENT_SECRET")}
    assert job.find("publishers/hudson.tasks.Mailer") is None   # no recipient: no mail
    assert shell(job) == scheduler_command(["ecal_prod", "ecal_test"])
    # every database is scheduled even when one fails; the build then fails
    code, calls = run_like_jenkins(tmp_path, shell(job), {}, fail_for="ecal_prod")
    assert code == 1
    assert calls == [["ecalrunctrl.py", "--db", "ecal_prod", "jobs", "--update"],
                     ["ecalautomation.py", "--db", "ecal_prod", "schedule"],
                     ["ecalrunctrl.py", "--db", "ecal_test", "jobs", "--update"],
                     ["ecalautomation.py", "--db", "ecal_test", "schedule"]]
    code, _ = run_like_jenkins(tmp_path, shell(job), {})
    assert code == 0
    # a cycle needing a human makes the build unstable, unless another one failed
    code, _ = run_like_jenkins(tmp_path, shell(job), {}, fail_for="ecal_test schedule",
                               exit_code=NEEDS_ATTENTION)
    assert code == NEEDS_ATTENTION == int(job.findtext(".//hudson.tasks.Shell/unstableReturn"))


def test_scheduler_job_is_configured_for_production(tmp_path):
    path = render_scheduler(["ecal_prod"], tmp_path, oms_credentials_id="oms-sso",
                            notify="ecal-ops@cern.ch,admin@cern.ch")
    job = parsed(path)[SCHEDULER_JOB]
    # an agent, never the controller (controller-security advice)
    assert job.findtext("assignedNode") == "ecal" and job.findtext("canRoam") == "false"
    bindings = {b.findtext("credentialsId"): (b.findtext("usernameVariable"),
                                              b.findtext("passwordVariable"))
                for b in job.iter("org.jenkinsci.plugins.credentialsbinding.impl."
                                  "UsernamePasswordMultiBinding")}
    assert bindings["oms-sso"] == ("ECAL_OMS_CLIENT_ID", "ECAL_OMS_CLIENT_SECRET")
    assert "export ECAL_RUN_REGISTRY=oms\n" in shell(job)
    mailer = job.find(".//hudson.tasks.Mailer")
    assert mailer.findtext("recipients") == "ecal-ops@cern.ch,admin@cern.ch"
    assert mailer.findtext("dontNotifyEveryUnstableBuild") == "false"
    # the installed version is the one that rendered the job, in a venv kept per version
    assert shell(job).startswith(f"ECALJENKINS_VERSION={__version__}\n")
    assert '"$ECAL_VENV/bin/ecalautomation.py" --db "$db" schedule' in shell(job)


def test_scheduler_refusals(tmp_path):
    with pytest.raises(InvalidName):
        render_scheduler(["ok", "not ok"], tmp_path)
    with pytest.raises(ConfigError, match="at least one database"):
        render_scheduler([], tmp_path)
    with pytest.raises(ConfigError, match="node label"):
        render_scheduler(["ok"], tmp_path, node=" ")
    with pytest.raises(InvalidName):
        render_scheduler(["ok"], tmp_path, oms_credentials_id="a b")


# --- pushing to Jenkins ----------------------------------------------------------------

def campaign_file(tmp_path, active=("demo-reco",)):
    workflows = [Workflow("demo-reco", "python3 -m demo_reco {x}"),
                 Workflow("demo-calib", "true", depends_on=("demo-reco",), group_by="fill")]
    return render(tmp_path, workflows, set(active))


def unmarked(config: str) -> tuple[str, str]:
    """(the config without the hash line of its description, that hash line)."""
    root = ET.fromstring(config)
    element = root.find("description")
    text, mark = element.text.rsplit("\n", 1)
    element.text = text
    return ET.tostring(root, encoding="unicode"), mark


def same_xml(a: str, b: str) -> bool:
    return ET.tostring(ET.fromstring(a), encoding="unicode") == \
        ET.tostring(ET.fromstring(b), encoding="unicode")


def test_update_jenkins_creates_then_reconfigures(tmp_path, jenkins):
    path = campaign_file(tmp_path)
    expected = validate(path)
    names = update_jenkins(path)
    assert names == sorted(expected)
    assert set(jenkins.jobs) == set(expected)
    for name, xml in expected.items():
        # what JJB rendered, its description ending with the hash of that rendering
        config, mark = unmarked(jenkins.jobs[name].config)
        assert same_xml(config, xml) and mark.startswith(HASH_MARK)
    assert not jenkins.jobs[job_name(DB, CAMPAIGN, "demo-reco")].disabled
    assert jenkins.jobs[job_name(DB, CAMPAIGN, "demo-calib")].disabled
    assert len(jenkins.endpoint_calls("createItem")) == 2
    # deactivating reconfigures the job that changed, and that one only
    path = campaign_file(tmp_path, active=())
    assert update_jenkins(path) == [job_name(DB, CAMPAIGN, "demo-reco")]
    assert len(jenkins.endpoint_calls("createItem")) == 2
    assert len(jenkins.endpoint_calls("reconfig")) == 1
    assert all(job.disabled for job in jenkins.jobs.values())
    # force pushes them all
    assert update_jenkins(path, force=True) == names
    assert len(jenkins.endpoint_calls("reconfig")) == 3
    # the API token travels in the Authorization header only
    assert not [c for c in jenkins.calls if TOKEN in c.url or TOKEN in c.body]


def test_pushed_job_takes_builds_with_its_parameters(tmp_path, jenkins):
    update_jenkins(campaign_file(tmp_path))
    server = connect_jenkins()
    name = job_name(DB, CAMPAIGN, "demo-reco")
    qid = server.build_job(name, {"RUN_NUMBER": "355100", "UNKNOWN": "dropped"})
    assert jenkins.queue[qid].params == {"RUN_NUMBER": "355100", "RUNS": "", "CAMPAIGN": CAMPAIGN,
                                         "DB": DB, "TASK": "demo-reco", "TRIGGER_ID": ""}
    with pytest.raises(requests.exceptions.HTTPError) as err:  # disabled: 409
        server.build_job(job_name(DB, CAMPAIGN, "demo-calib"), {"RUNS": "1,2"})
    assert err.value.response.status_code == 409


def test_update_jenkins_from_ini(tmp_path, jenkins, monkeypatch):
    for var in ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN"):
        monkeypatch.delenv(var)
    ini = tmp_path / "jenkins_jobs.ini"
    ini.write_text(f"[jenkins]\nurl={URL}\nuser={USER}\npassword={TOKEN}\n"
                   "query_plugins_info=False\n")
    path = campaign_file(tmp_path)
    assert update_jenkins(path, jenkins_ini=str(ini)) == sorted(validate(path))
    assert len(jenkins.jobs) == 2
    with pytest.raises(ConfigError, match="nowhere.ini not found"):
        update_jenkins(path, jenkins_ini=str(tmp_path / "nowhere.ini"))
    ini.write_text("url = no section header\n")
    with pytest.raises(ConfigError, match="jenkins_jobs.ini .*: File contains no section"):
        update_jenkins(path, jenkins_ini=str(ini))


def test_shipped_ini_example_with_environment_overrides(tmp_path, jenkins):
    """The example's url and user are overridden by JENKINS_URL/JENKINS_USER, as documented."""
    example = Path(__file__).resolve().parent.parent / "jenkins_jobs.ini.example"
    path = campaign_file(tmp_path)
    assert update_jenkins(path, jenkins_ini=str(example)) == sorted(validate(path))
    assert len(jenkins.jobs) == 2


def test_update_jenkins_needs_the_environment(tmp_path, jenkins, monkeypatch):
    monkeypatch.delenv("JENKINS_USER")
    monkeypatch.delenv("JENKINS_API_TOKEN")
    with pytest.raises(ConfigError, match="^JENKINS_USER, JENKINS_API_TOKEN not set"):
        update_jenkins(campaign_file(tmp_path))
    assert jenkins.calls == []


FAILURES = [  # (endpoint, injected error, expected fragment, error type)
    ("createItem", 403, "HTTP 403 (the Jenkins account lacks the permission)", JenkinsAuthError),
    ("createItem", 500, "HTTP 500 (Jenkins failed internally", JenkinsRefused),
    ("info", 404, "HTTP 404", JenkinsNotFound),
    ("reconfig", 503, "HTTP 503 Service Unavailable", JenkinsRefused),
    ("*", requests.exceptions.ConnectTimeout("connect timed out"),
     "timed out waiting for an answer", JenkinsTimeout),
    ("*", requests.exceptions.ConnectionError("Connection refused"),
     "cannot connect (ConnectionError)", JenkinsUnreachable),
]


@pytest.mark.parametrize("endpoint, error, fragment, kind", FAILURES)
def test_update_jenkins_failures(tmp_path, jenkins, endpoint, error, fragment, kind):
    path = campaign_file(tmp_path)
    if endpoint == "reconfig":
        update_jenkins(path)
    jenkins.fail(endpoint, error, times=None)
    with pytest.raises(JenkinsError) as err:
        update_jenkins(path, force=endpoint == "reconfig")
    message = str(err.value)
    assert fragment in message, message
    assert type(err.value) is kind
    assert message.startswith(f"Jenkins {URL}: update of the jobs failed: ")
    assert "\n" not in message and TOKEN not in message
    assert err.value.exit_code == 1
    assert path.is_file() and validate(path)  # the rendered files stay


def test_update_jenkins_wrong_token(tmp_path, jenkins, monkeypatch):
    monkeypatch.setenv("JENKINS_API_TOKEN", "wrong-Secret-tok9")
    path = campaign_file(tmp_path)
    with pytest.raises(JenkinsAuthError) as err:
        update_jenkins(path)
    assert err.value.status == 401
    assert "HTTP 401 (check JENKINS_USER and JENKINS_API_TOKEN)" in str(err.value)
    assert "wrong-Secret-tok9" not in str(err.value) and TOKEN not in str(err.value)
    assert jenkins.jobs == {} and path.is_file()


def test_set_enabled(jenkins):
    names = ["ecal-db-c-a", "ecal-db-c-b"]
    for name in names:
        jenkins.add_job(name)
    set_enabled(names, False)
    assert all(jenkins.jobs[n].disabled for n in names)
    assert all("<disabled>true</disabled>" in jenkins.jobs[n].config for n in names)
    set_enabled(names[:1], True)
    assert [jenkins.jobs[n].disabled for n in names] == [False, True]
    set_enabled([], True)


@pytest.mark.parametrize("setup, fragment, kind, status", [
    (lambda fake, mp: None, "HTTP 404 (not found on Jenkins)", JenkinsNotFound, 404),
    (lambda fake, mp: mp.setenv("JENKINS_API_TOKEN", "wrong-Secret-tok9"), "HTTP 401",
     JenkinsAuthError, 401),
    (lambda fake, mp: fake.fail("disable", 403), "HTTP 403", JenkinsAuthError, 403),
    (lambda fake, mp: fake.fail("disable", 500), "HTTP 500", JenkinsRefused, 500),
    (lambda fake, mp: fake.fail("disable", requests.exceptions.ConnectTimeout("slow")),
     "timed out waiting for an answer", JenkinsTimeout, None),
    (lambda fake, mp: fake.fail("disable", requests.exceptions.ConnectionError("refused")),
     "cannot connect (ConnectionError)", JenkinsUnreachable, None),
])
def test_set_enabled_failures(jenkins, monkeypatch, setup, fragment, kind, status):
    jenkins.add_job("ecal-db-c-a")
    setup(jenkins, monkeypatch)
    missing = "ecal-db-c-zz" if "404" in fragment else "ecal-db-c-a"
    with pytest.raises(JenkinsError) as err:
        set_enabled([missing], False)
    assert type(err.value) is kind and getattr(err.value, "status", None) == status
    message = str(err.value)
    assert fragment in message and f"disabling job {missing} failed" in message
    assert "\n" not in message and TOKEN not in message and "wrong-Secret" not in message


def test_connection_settings():
    with pytest.raises(ConfigError, match="JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN not set"):
        connect_jenkins(Settings())
    with pytest.raises(ConfigError, match="^JENKINS_USER, JENKINS_API_TOKEN not set"):
        set_enabled(["x"], True, Settings(jenkins_url=URL))


# --- the fake itself: the build cycle the scheduler relies on --------------------------

def test_fake_build_cycle(jenkins):
    name = "ecal-db-c-task"
    jenkins.add_job(name, params={"RUN_NUMBER": "", "TASK": "task"})
    server = connect_jenkins()
    assert server.get_job_info(name)["nextBuildNumber"] == 1
    qid = server.build_job(name, {"RUN_NUMBER": "355100"})
    # an identical trigger is merged into the waiting item: 303 to it, and the item's
    # URL has no page, so python-jenkins reports NotFound
    with pytest.raises(python_jenkins.NotFoundException):
        server.build_job(name, {"RUN_NUMBER": "355100"})
    merged = jenkins.endpoint_calls("buildWithParameters")[-1]
    assert [c.url for c in jenkins.calls[-1:]] == [f"{URL}queue/item/{qid}/"]
    assert len(jenkins.triggered(name)) == 1 and merged.method == "POST"
    item = server.get_queue_item(qid)
    assert item["why"] and "executable" not in item and item["task"]["name"] == name
    assert [i["id"] for i in server.get_queue_info()] == [qid]
    assert server.get_job_info(name)["inQueue"]
    jenkins.block(qid, "Waiting for next available executor on cmsecal")
    assert server.get_queue_item(qid)["why"].endswith("cmsecal")
    number = jenkins.start(qid)
    item = server.get_queue_item(qid)
    assert item["executable"]["number"] == number == 1 and not item["cancelled"]
    assert item["executable"]["url"] == f"{URL}job/{name}/1/"
    build = server.get_build_info(name, number)
    assert build["building"] and build["result"] is None and build["queueId"] == qid
    (action,) = [a for a in build["actions"]
                 if a.get("_class") == "hudson.model.ParametersAction"]
    assert {p["name"]: p["value"] for p in action["parameters"]} == {
        "RUN_NUMBER": "355100", "TASK": "task"}
    jenkins.finish(name, number, "FAILURE")
    build = server.get_build_info(name, number)
    assert not build["building"] and build["result"] == "FAILURE"
    info = server.get_job_info(name)
    assert info["nextBuildNumber"] == 2 and info["color"] == "red"
    assert info["lastFailedBuild"]["number"] == 1 and info["lastSuccessfulBuild"] is None
    # a second trigger is a new item once the first left the queue; it can be cancelled
    qid2 = server.build_job(name, {"RUN_NUMBER": "355100"})
    assert qid2 != qid
    server.cancel_queue(qid2)
    assert server.get_queue_item(qid2)["cancelled"] is True
    assert server.get_queue_item(qid2)["executable"] is None
    # a running build can be stopped
    number = jenkins.start(server.build_job(name, {"RUN_NUMBER": "355101"}))
    server.stop_build(name, number)
    assert server.get_build_info(name, number)["result"] == "ABORTED"
    # Jenkins forgets old queue items, and unknown builds are 404
    jenkins.forget(qid)
    with pytest.raises(python_jenkins.JenkinsException, match="does not exist"):
        server.get_queue_item(qid)
    with pytest.raises(python_jenkins.JenkinsException, match="does not exist"):
        server.get_build_info(name, 99)
    assert server.get_version() == "2.440"
    assert server.get_whoami()["id"] == USER
    assert [c.endpoint for c in jenkins.calls].count("buildWithParameters") == 4


def test_fake_injected_failures_are_counted(jenkins):
    jenkins.add_job("ecal-db-c-task", params={"RUN_NUMBER": ""})
    server = connect_jenkins()
    jenkins.fail("buildWithParameters", 500, times=1)
    with pytest.raises(python_jenkins.JenkinsException, match=r"\[500\]"):
        server.build_job("ecal-db-c-task", {"RUN_NUMBER": "1"})
    assert server.build_job("ecal-db-c-task", {"RUN_NUMBER": "1"}) > 0
    jenkins.fail("queue_item", requests.exceptions.ConnectTimeout("slow"))
    with pytest.raises(python_jenkins.TimeoutException):
        server.get_queue_item(101)


# --- the executor's view of Jenkins failures --------------------------------------------

def request_for(job: str, trigger: str = "t-1") -> BuildRequest:
    return BuildRequest(DB, CAMPAIGN, job.rsplit("-", 1)[1], (355100,), trigger, 1, "true")


@pytest.mark.parametrize("error, kind", [
    (requests.exceptions.ReadTimeout("read timed out"), JenkinsTimeout),
    (requests.exceptions.ConnectionError("refused"), JenkinsUnreachable)])
def test_executor_stops_asking_a_jenkins_that_did_not_answer(jenkins, error, kind):
    name = job_name(DB, CAMPAIGN, "a")
    jenkins.add_job(name, params={"RUN_NUMBER": "", "TRIGGER_ID": ""})
    executor = JenkinsExecutor(settings=Settings(jenkins_url=URL, jenkins_user=USER,
                                                 jenkins_api_token=TOKEN))
    jenkins.fail("buildWithParameters", error)
    with pytest.raises(kind, match="not asked again in this cycle"):
        executor.start(request_for(name))
    sent = len(jenkins.calls)
    # not sent at all: certainly not carried out, whatever the first failure was
    with pytest.raises(JenkinsUnreachable, match="not asked again in this cycle"):
        executor.start(request_for(name, "t-2"))
    assert len(jenkins.calls) == sent
    executor.new_cycle()
    assert executor.start(request_for(name, "t-3")) > 0
    assert [i.params["TRIGGER_ID"] for i in jenkins.triggered(name)] == ["t-3"]


def test_executor_reads_a_missing_build_as_unknown(jenkins):
    executor = JenkinsExecutor(settings=Settings(jenkins_url=URL, jenkins_user=USER,
                                                 jenkins_api_token=TOKEN))
    fact = executor.locate(job_name(DB, CAMPAIGN, "gone"), 0, 0, "t-1")
    assert fact.state == "unknown" and "does not exist" in fact.message


def test_triggering_builds_does_not_import_jenkins_job_builder():
    """A scheduler cycle (the executors, the scheduler) talks to Jenkins through
    python-jenkins only: JJB and jinja2 are for rendering and pushing jobs."""
    code = ("import sys, ecaljenkins.executors, ecaljenkins.scheduler, ecaljenkins.jenkins_server\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'jenkins_jobs', 'jinja2'}))")
    proc = run_recorded([sys.executable, "-c", code], check=True)
    assert proc.stdout.strip() == "[]"


# --- the workflow's code on the agent -------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_scm(job: ET.Element) -> ET.Element:
    scm = job.find("scm")
    assert scm.get("class") == "hudson.plugins.git.GitSCM"
    return scm


def test_scm_is_checked_out_shallow_and_clean_at_the_pinned_commit(tmp_path):
    wf = Workflow("reco", './reco.sh "$RUN_NUMBER"',
                  scm={"url": "https://gitlab.cern.ch/ecal/reco.git", "branch": "main",
                       "credentials": "gitlab-ro", "subdir": "wf/reco", "commit": COMMIT})
    job = parsed(render(tmp_path, [wf], {"reco"}))[job_name(DB, CAMPAIGN, "reco")]
    scm = git_scm(job)
    remote = scm.find("userRemoteConfigs/hudson.plugins.git.UserRemoteConfig")
    assert remote.findtext("url") == "https://gitlab.cern.ch/ecal/reco.git"
    assert remote.findtext("credentialsId") == "gitlab-ro"
    # the commit itself is fetched (a shallow clone of the branch would miss it once moved)
    assert remote.findtext("refspec") == f"+{COMMIT}:refs/remotes/origin/ecal-pinned"
    assert [b.findtext("name") for b in scm.iter("hudson.plugins.git.BranchSpec")] == [COMMIT]
    clone = scm.find("extensions/hudson.plugins.git.extensions.impl.CloneOption")
    assert (clone.findtext("shallow"), clone.findtext("depth"),
            clone.findtext("honorRefspec")) == ("true", "1", "true")
    assert scm.find("extensions/hudson.plugins.git.extensions.impl.CleanBeforeCheckout") \
        is not None
    assert scm.find("extensions/hudson.plugins.git.extensions.impl.WipeWorkspace") is None
    assert f"main at commit {COMMIT}" in job.findtext("description")
    # the command runs in the checkout's subdir
    (tmp_path / "wf" / "reco").mkdir(parents=True)
    code, calls = run_like_jenkins(tmp_path, "cd " + shlex.quote(str(tmp_path)) + "\n"
                                   + shell(job) + "\n",
                                   {"DB": DB, "CAMPAIGN": CAMPAIGN, "TASK": "reco",
                                    "RUN_NUMBER": "355100", "RUNS": ""})
    assert code == 0 and calls[0][-1] == wf.command
    assert "cd -- wf/reco\n" in shell(job)


def test_unpinned_scm_follows_its_branch_or_tag(tmp_path):
    branch = Workflow("reco", "./r.sh", scm={"url": "ssh://git@host/r.git", "branch": "dev"})
    tag = Workflow("calib", "./c.sh", scm={"url": "ssh://git@host/c.git", "tag": "v1"})
    jobs = parsed(render(tmp_path, [branch, tag], {"reco", "calib"}))
    scm = git_scm(jobs[job_name(DB, CAMPAIGN, "reco")])
    assert scm.findtext(".//refspec") == "+refs/heads/dev:refs/remotes/origin/dev"
    assert scm.findtext(".//hudson.plugins.git.BranchSpec/name") == "refs/heads/dev"
    assert scm.find(".//credentialsId") is None
    scm = git_scm(jobs[job_name(DB, CAMPAIGN, "calib")])
    assert scm.findtext(".//refspec") == "+refs/tags/v1:refs/tags/v1"
    assert scm.findtext(".//hudson.plugins.git.BranchSpec/name") == "refs/tags/v1"


# --- pushed only when changed, retried until pushed -------------------------------------

def test_only_jobs_differing_from_jenkins_are_pushed_and_a_failed_push_is_retried(
        tmp_path, jenkins):
    path = campaign_file(tmp_path, active=("demo-reco", "demo-calib"))
    jenkins.fail("createItem", 500)          # the first job's creation fails
    with pytest.raises(JenkinsRefused):
        update_jenkins(path)
    calib = job_name(DB, CAMPAIGN, "demo-calib")
    assert list(jenkins.jobs) == [job_name(DB, CAMPAIGN, "demo-reco")]
    # the next call (the next scheduler cycle) pushes what is still missing, only that
    assert update_jenkins(path) == [calib]
    assert set(jenkins.jobs) == set(validate(path))
    assert update_jenkins(path) == []        # nothing differs: one request, nothing pushed
    calls = len(jenkins.calls)
    assert update_jenkins(path) == []
    (listing,) = [c for c in jenkins.calls[calls:] if c.endpoint != "crumb"]  # one listing
    assert listing.endpoint == "info" and "description" in listing.url
    # a job changed by hand on Jenkins (its hash line gone) is pushed again
    jenkins.jobs[calib].config = jenkins.jobs[calib].config.replace(HASH_MARK, "edited ")
    assert update_jenkins(path) == [calib]
    # a workflow changed in the catalogue changes its job only
    workflows = [Workflow("demo-reco", "python3 -m demo_reco {x}", timeout_minutes=7),
                 Workflow("demo-calib", "true", depends_on=("demo-reco",), group_by="fill")]
    path = render(tmp_path, workflows, {"demo-reco", "demo-calib"})
    assert update_jenkins(path) == [job_name(DB, CAMPAIGN, "demo-reco")]


# --- job names never shared ---------------------------------------------------------------

def test_colliding_job_names_are_refused_at_render_time(tmp_path):
    wf = Workflow("t", "true")
    render(tmp_path, [wf], {"t"}, db="ecal_a-b", campaign="c")
    assert job_name("ecal_a-b", "c", "t") == job_name("ecal_a", "b-c", "t")
    with pytest.raises(JobNameCollision) as err:
        render(tmp_path, [wf], {"t"}, db="ecal_a", campaign="b-c")
    message = str(err.value)
    assert ("job name ecal-ecal_a-b-c-t of task 't' of campaign 'b-c' (database 'ecal_a') is "
            "already the name of a job of campaign 'c' (database 'ecal_a-b'") in message
    assert err.value.exit_code == 2
    assert not (tmp_path / "jobs" / "ecal_a" / "b-c.yaml").exists()
    # the same campaign rendered again is no collision, nor are distinct names
    render(tmp_path, [wf], {"t"}, db="ecal_a-b", campaign="c")
    render(tmp_path, [wf], {"t"}, db="ecal_a", campaign="b_c")


def test_colliding_job_names_are_refused_at_push_time(tmp_path, jenkins):
    wf = Workflow("t", "true")
    other = tmp_path / "other-machine"
    update_jenkins(render(other, [wf], {"t"}, db="ecal_a-b", campaign="c"))
    path = render(tmp_path, [wf], {"t"}, db="ecal_a", campaign="b-c")
    before = jenkins.jobs["ecal-ecal_a-b-c-t"].config
    with pytest.raises(JobNameCollision, match="job ecal-ecal_a-b-c-t on Jenkins belongs to "
                       "task 't' of campaign 'c' \\(database 'ecal_a-b'\\), not to task 't' "
                       "of campaign 'b-c' \\(database 'ecal_a'\\)"):
        update_jenkins(path)
    assert jenkins.jobs["ecal-ecal_a-b-c-t"].config == before


# --- the plugins the jobs use ---------------------------------------------------------------

def test_missing_plugins_are_named(jenkins):
    assert set(missing_plugins()) == set(REQUIRED_PLUGINS)
    for name in REQUIRED_PLUGINS:
        jenkins.add_plugin(name, enabled=name != "mailer")
    jenkins.add_plugin("unrelated")
    assert missing_plugins() == {"mailer": REQUIRED_PLUGINS["mailer"]}
    assert jenkins.endpoint_calls("plugins")[-1].url.startswith(f"{URL}pluginManager/api/json")


def test_readme_lists_the_plugins():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in REQUIRED_PLUGINS:
        assert f"`{name}`" in readme, name
