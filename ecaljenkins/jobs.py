"""Jenkins jobs: rendered from jinja2 templates to Jenkins Job Builder YAML, pushed by JJB.

Each campaign gets one file, ``<output_dir>/<db>/<campaign>.yaml``, with one
freestyle job per workflow; the jobs of inactive tasks are rendered disabled
rather than left out, so their build history survives a deactivation. The
scheduler triggers these jobs one build per (run, task) with python-jenkins.

Two layers of quoting stand between a catalogue entry and Jenkins, and both are
applied to every value in :func:`yaml_value`: JJB 6 formats ``{name}`` in every
string of a job, not only of job-templates (``{{`` stands for ``{``), so braces are doubled;
then the value becomes a double-quoted YAML scalar, so no text can change the
structure of the file. Where a value reaches a shell it is ``shlex``-quoted
first. :func:`validate` runs JJB itself, so tests check the XML Jenkins receives.

:func:`update_jenkins` pushes the files with JJB, to the server of the settings
(or of a ``jenkins_jobs.ini``); everything else about the Jenkins server
(connecting, enabling/disabling, errors) is :mod:`.jenkins_server`.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shlex
import tempfile
from pathlib import Path

import xml.etree.ElementTree as ET

import jinja2
import yaml
from jenkins_jobs.builder import _DEFAULT_TIMEOUT, JenkinsManager
from jenkins_jobs.config import JJBConfig
from jenkins_jobs.errors import JenkinsJobsException
from jenkins_jobs.loader import load_files
from jenkins_jobs.registry import ModuleRegistry
from jenkins_jobs.roots import Roots
from jenkins_jobs.xml_config import XmlJobGenerator

from . import __version__
from .errors import NEEDS_ATTENTION, ConfigError, JobNameCollision, first_line
from .jenkins_server import JENKINS_TIMEOUT, jenkins_errors
from .names import check_db, check_name, job_name
from .resources import shipped
from .settings import Settings, current
from .workflows import Scm, Workflow

SCHEDULER_JOB = "ecal-scheduler"
#: the agent label the scheduler runs on by default: an agent, never the controller
SCHEDULER_NODE = "ecal"
#: JJB settings when no jenkins_jobs.ini is given: push every job every time
#: (the jobs are few, and Jenkins stays the truth even after a hand edit), and
#: never ask Jenkins for its plugin list (the account may not be allowed to).
_JJB_DEFAULTS = """\
[job_builder]
ignore_cache=True
keep_descriptions=False
allow_duplicates=False
[jenkins]
url=http://localhost:8080/
query_plugins_info=False
"""


#: the last line of a pushed job's description: the hash of the configuration it was pushed
#: with, compared with what would be rendered now (jobs are pushed only when they differ)
HASH_MARK = "ecaljenkins configuration "
#: who a workflow job belongs to, as its description says (see _job_description)
_OWNER = re.compile(r"ECAL task (\S+) of campaign (\S+) \(database (\S+)\)")
#: a job name in a rendered file (names need no quoting beyond YAML's double quotes)
_RENDERED_NAME = re.compile(r'^    name: "([^"]+)"$', re.M)


def templates_dir(settings: Settings | None = None) -> Path:
    """``$ECAL_TEMPLATES``, else the templates shipped in the package."""
    return Path(current(settings).templates or shipped("templates"))


def yaml_value(value: str) -> str:
    """``value`` as a double-quoted YAML scalar that JJB formats back to ``value``."""
    if not isinstance(value, str):
        raise TypeError(f"only strings are quoted for YAML, not {type(value).__name__}")
    escaped = value.replace("{", "{{").replace("}", "}}")
    return yaml.safe_dump(escaped, default_style='"', allow_unicode=True,
                          width=float("inf")).rstrip("\n")


def existing_templates_dir(settings: Settings | None = None) -> Path:
    """:func:`templates_dir`, or ConfigError when it is not there."""
    folder = templates_dir(settings)
    if not folder.is_dir():
        raise ConfigError(f"templates directory {folder} not found (set ECAL_TEMPLATES)")
    return folder


def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["q"] = yaml_value
    return env


def _render(template: str, target: Path, settings: Settings | None, **context) -> Path:
    """Render ``template`` into ``target`` atomically (a reader never sees half a file)."""
    folder = existing_templates_dir(settings)
    try:
        text = _environment(folder).get_template(template).render(**context)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"template {template} not found in {folder}") from None
    except jinja2.TemplateError as err:
        raise ConfigError(f"template {template}: {err}") from None
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as err:
        raise ConfigError(f"cannot write {target}: {err.strerror}") from None
    return target


def install_step(version: str = __version__) -> str:
    """Shell lines setting ``ECAL_VENV`` to a venv holding ecaljenkins ``version``.

    The venv is kept on the agent between builds and made once per version
    (``data/install-venv.sh``, the script the Jenkinsfile runs too), so every
    job calls the version that rendered it: the scheduler and the agents never
    drift apart, and nothing is installed on a build whose version is there.
    """
    text = shipped("data", "install-venv.sh").read_text(encoding="utf-8")
    script = "".join(line for line in text.splitlines(keepends=True)
                     if line.strip() and not line.lstrip().startswith("#"))
    return (f"ECALJENKINS_VERSION={shlex.quote(version)}\n"
            f"ECAL_VENV=$(sh -c {shlex.quote(script)} install-venv.sh \"$ECALJENKINS_VERSION\")\n")


def build_command(workflow: Workflow, version: str = __version__) -> str:
    """The shell step of a workflow's job: the job-side wrapper around its command.

    ``ecalautomation.py run`` (of ecaljenkins ``version``, see :func:`install_step`)
    records the build's start and end in InfluxDB and runs what follows ``--``;
    the command reaches ``bash -c`` byte for byte, in the checkout's ``subdir``
    when the workflow has one.
    """
    cd = ""
    if workflow.scm is not None and workflow.scm.subdir:
        cd = f"cd -- {shlex.quote(workflow.scm.subdir)}\n"
    return (install_step(version) + cd +
            'exec "$ECAL_VENV/bin/ecalautomation.py" --db "$DB" --campaign "$CAMPAIGN" '
            'run --task "$TASK" --runs "${RUNS:-$RUN_NUMBER}" -- bash -c '
            + shlex.quote(workflow.command))


def scm_checkout(scm: Scm) -> dict:
    """What the job's git SCM fetches and checks out: the pinned commit, else the ref.

    A pinned commit is fetched by its id (``+<commit>:refs/remotes/origin/pinned``),
    so a shallow clone finds it even once the branch has moved on; git servers
    (GitLab, GitHub, Gitea) allow fetching a commit by id.
    """
    if scm.commit is not None:
        refspec, branch = f"+{scm.commit}:refs/remotes/origin/ecal-pinned", scm.commit
    elif scm.branch is not None:
        refspec, branch = f"+{scm.ref}:refs/remotes/origin/{scm.branch}", scm.ref
    else:
        refspec, branch = f"+{scm.ref}:{scm.ref}", scm.ref
    return {"url": scm.url, "credentials": scm.credentials, "refspec": refspec,
            "branch": branch}


def _job_description(workflow: Workflow, db: str, campaign: str) -> str:
    lines = [workflow.description.strip()] if workflow.description.strip() else []
    lines.append(f"ECAL task {workflow.task} of campaign {campaign} (database {db}), "
                 f"one build per {workflow.group_by}.")
    if workflow.depends_on:
        lines.append(f"Runs after: {', '.join(workflow.depends_on)}.")
    if workflow.scm is not None:
        what = workflow.scm.branch or workflow.scm.tag
        pin = f" at commit {workflow.scm.commit}" if workflow.scm.commit else ""
        lines.append(f"Code: {workflow.scm.url} ({what}{pin}).")
    lines.append("Generated by ecaljenkins: change the workflow catalogue, not this job.")
    return "\n".join(lines)


def render_campaign(db: str, campaign: str, workflows: dict[str, Workflow], active: set[str],
                    output_dir: Path | str = "jobs",
                    credentials_id: str = "ecal-influxdb",
                    settings: Settings | None = None) -> Path:
    """Write the JJB YAML of a campaign's jobs; return ``<output_dir>/<db>/<campaign>.yaml``.

    One job per workflow of ``workflows``; those not in ``active`` are disabled.
    ``credentials_id`` names the Jenkins username/password credentials of
    InfluxDB, bound to ``ECAL_INFLUXDB_USER``/``ECAL_INFLUXDB_PASSWORD`` in builds.
    """
    check_db(db)
    check_name(campaign, "campaign name")
    check_name(credentials_id, "credentials id")
    unknown = sorted(set(active) - set(workflows))
    if unknown:
        raise ConfigError(f"active tasks {', '.join(unknown)} of campaign {campaign!r} "
                          "are not in the workflow catalogue")
    _check_rendered_names(Path(output_dir), db, campaign,
                          {job_name(db, campaign, task): task for task in workflows})
    jobs = []
    for task in sorted(workflows):
        wf = workflows[task]
        if wf.task != task:
            raise ConfigError(f"workflow {wf.task!r} is listed as task {task!r}")
        jobs.append({"name": job_name(db, campaign, task), "wf": wf,
                     "disabled": task not in active, "shell": build_command(wf),
                     "scm": scm_checkout(wf.scm) if wf.scm is not None else None,
                     "description": _job_description(wf, db, campaign)})
    return _render("workflow-job.yaml.j2", Path(output_dir) / db / f"{campaign}.yaml", settings,
                   db=db, campaign=campaign, jobs=jobs, credentials_id=credentials_id)


def _check_rendered_names(output_dir: Path, db: str, campaign: str, names: dict) -> None:
    """Refuse job names another campaign's file in ``output_dir`` already renders.

    ``-`` may appear in database, campaign and task names, so ``ecal_a`` + ``b-c``
    and ``ecal_a-b`` + ``c`` give the same job name: two campaigns sharing one
    Jenkins job would run each other's builds. Checked at render time against
    every file of the jobs folder, and at push time against Jenkins.
    """
    for path in sorted(output_dir.glob("*/*.yaml")):
        if (path.parent.name, path.stem) == (db, campaign):
            continue
        try:
            taken = set(_RENDERED_NAME.findall(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
        for name in sorted(taken & set(names)):
            raise JobNameCollision(
                f"job name {name} of task {names[name]!r} of campaign {campaign!r} (database "
                f"{db!r}) is already the name of a job of campaign {path.stem!r} (database "
                f"{path.parent.name!r}, {path}): rename the campaign (prefer '_' to '-')")


def render_scheduler(dbs: list[str], output_dir: Path | str = "jobs",
                     credentials_id: str = "ecal-influxdb",
                     jenkins_credentials_id: str = "ecal-jenkins-api",
                     node: str = SCHEDULER_NODE, oms_credentials_id: str = "ecal-oms",
                     notify: str = "", settings: Settings | None = None) -> Path:
    """Write the scheduler job (every 10 minutes, ``schedule`` each database).

    It is the freestyle twin of the top-level ``Jenkinsfile`` for servers where
    jobs are managed by JJB only, configured as production needs: the OMS run
    registry (``oms_credentials_id``: username/password credentials holding the
    CERN SSO client id and secret), an agent labelled ``node`` (not the
    controller), ecaljenkins of this version in a kept venv, the campaigns'
    jobs brought up to date (by hash) before each cycle, an unstable build when
    a human is needed and a mail to ``notify`` (comma-separated) when it fails.
    ``jenkins_credentials_id`` names the username/API-token credentials bound to
    ``JENKINS_USER``/``JENKINS_API_TOKEN`` (Jenkins sets ``JENKINS_URL`` itself).
    """
    dbs = list(dict.fromkeys(check_db(db) for db in dbs))
    if not dbs:
        raise ConfigError("the scheduler needs at least one database")
    for ident in (credentials_id, jenkins_credentials_id, oms_credentials_id):
        check_name(ident, "credentials id")
    if not isinstance(node, str) or not node.strip():
        raise ConfigError("the scheduler's node label must not be empty: name the agents "
                          "that run it (never the controller)")
    description = ("Triggers the ECAL workflow builds that are ready, every 10 minutes, "
                   f"for: {', '.join(dbs)}.\nGenerated by ecaljenkins.")
    return _render("scheduler-job.yaml.j2", Path(output_dir) / "scheduler.yaml", settings,
                   name=SCHEDULER_JOB, description=description, shell=scheduler_command(dbs),
                   node=node, credentials_id=credentials_id,
                   jenkins_credentials_id=jenkins_credentials_id,
                   oms_credentials_id=oms_credentials_id, notify=notify,
                   unstable=NEEDS_ATTENTION)


def scheduler_command(dbs: list[str], version: str = __version__) -> str:
    """The scheduler's shell step: per database, bring the jobs up to date, then schedule.

    One database failing must not starve the others; the step fails (1) if
    anything failed, else ends unstable (:data:`NEEDS_ATTENTION`) if a cycle
    needs a human, else succeeds. The run registry is OMS.
    """
    return (install_step(version) +
            "export ECAL_RUN_REGISTRY=oms\n"
            "status=0\n"
            f"for db in {' '.join(shlex.quote(db) for db in dbs)}; do\n"
            '    "$ECAL_VENV/bin/ecalrunctrl.py" --db "$db" jobs --update || status=1\n'
            '    "$ECAL_VENV/bin/ecalautomation.py" --db "$db" schedule && code=0 || code=$?\n'
            f'    if [ "$code" = {NEEDS_ATTENTION} ]; then\n'
            f'        [ "$status" = 1 ] || status={NEEDS_ATTENTION}\n'
            '    elif [ "$code" != 0 ]; then\n'
            "        status=1\n"
            "    fi\n"
            "done\n"
            "exit $status\n")


# --- Jenkins Job Builder ------------------------------------------------------

def _jjb_config(ini: str | os.PathLike | None) -> JJBConfig:
    """A JJB configuration from ``ini``, or from our defaults (never ~/.config)."""
    try:
        if ini is not None:
            if not Path(ini).is_file():
                raise ConfigError(f"jenkins_jobs.ini {ini} not found")
            return JJBConfig(str(ini))
        with tempfile.TemporaryDirectory(prefix="ecal-jjb-") as folder:
            defaults = Path(folder) / "jenkins_jobs.ini"
            defaults.write_text(_JJB_DEFAULTS, encoding="utf-8")
            return JJBConfig(str(defaults))
    except (configparser.Error, JenkinsJobsException) as err:
        raise ConfigError(f"jenkins_jobs.ini {ini}: {first_line(err)}") from None


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    if not path.is_file():
        raise ConfigError(f"job file {path} not found")
    return [path]


def _generate(path: Path | str, config: JJBConfig) -> list:
    """JJB's own ``test``/``update`` path: load the YAML, expand it, build the XML.

    Plugin versions are never asked of Jenkins: the XML targets current plugins.
    Any failure inside JJB, whatever its type, means JJB refused these files;
    it becomes one ConfigError line naming the file and position JJB reports.
    """
    path = Path(path)
    files = _yaml_files(path)
    try:
        roots = Roots(config)
        load_files(config, roots, files)
        registry = ModuleRegistry(config, [])
        registry.set_macros(roots.macros)
        data = roots.generate_jobs()
        registry.amend_job_dicts(data)
        return XmlJobGenerator(registry).generateXML(data)
    except JenkinsJobsException as err:
        where = f"{err.pos.path}:{err.pos.line + 1}" if err.pos else str(path)
        raise ConfigError(f"{where}: Jenkins Job Builder refused the jobs: "
                          f"{first_line(err)}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ConfigError(f"{mark.name}:{mark.line + 1}: invalid YAML: "
                          f"{err.problem or err.context}") from None
    except Exception as err:  # noqa: BLE001 - JJB modules raise anything on bad input
        raise ConfigError(f"{path}: Jenkins Job Builder refused the jobs: "
                          f"{type(err).__name__}: {first_line(err)}") from None


def validate(path: Path | str) -> dict[str, str]:
    """Run JJB on a rendered file (or a folder of them): ``{job name: config.xml}``."""
    return {job.name: job.output().decode("utf-8")
            for job in _generate(path, _jjb_config(None))}


def _stamp(xml_jobs: list) -> dict[str, str]:
    """End each job's description with the hash of its configuration; {name: mark line}."""
    marks = {}
    for job in xml_jobs:
        digest = hashlib.sha256(job.output()).hexdigest()[:20]
        element = job.xml.find("description")
        if element is None:
            element = ET.SubElement(job.xml, "description")
        marks[job.name] = f"{HASH_MARK}{digest}"
        element.text = f"{element.text or ''}\n{marks[job.name]}"
    return marks


def owner(description: str | None) -> tuple[str, str, str] | None:
    """(database, campaign, task) a workflow job's description names, or None."""
    found = _OWNER.findall(description or "")
    return (found[-1][2], found[-1][1], found[-1][0]) if found else None


def _check_owners(xml_jobs: list, on_jenkins: dict[str, str]) -> None:
    """Refuse to push a job over a Jenkins job of another (database, campaign, task)."""
    for job in xml_jobs:
        ours = owner(job.xml.findtext("description"))
        theirs = owner(on_jenkins.get(job.name))
        if ours and theirs and ours != theirs:
            raise JobNameCollision(
                f"job {job.name} on Jenkins belongs to task {theirs[2]!r} of campaign "
                f"{theirs[1]!r} (database {theirs[0]!r}), not to task {ours[2]!r} of campaign "
                f"{ours[1]!r} (database {ours[0]!r}): the names collide; rename the campaign "
                "(prefer '_' to '-')")


def update_jenkins(path: Path | str, jenkins_ini: str | None = None,
                   settings: Settings | None = None, force: bool = False) -> list[str]:
    """Create or reconfigure on Jenkins the jobs of ``path`` that differ; return their names.

    Each pushed job carries the hash of its configuration in its description;
    one request lists every job's description, and only the jobs whose hash
    differs from what would be rendered now (or that do not exist) are pushed,
    so calling this every scheduler cycle is cheap and a push that failed is
    made again by the next call. ``force`` pushes them all. A job of another
    database or campaign with the same name is refused (JobNameCollision).

    The server and account come from ``jenkins_ini`` when given, with any of
    ``JENKINS_URL``/``JENKINS_USER``/``JENKINS_API_TOKEN`` set overriding it;
    without an ini file all three variables are required. Jobs Jenkins has but
    the files no longer define are left alone (never deleted).
    """
    settings = current(settings)
    config = _jjb_config(jenkins_ini)
    values = settings.jenkins_account() if jenkins_ini is None else \
        (settings.jenkins_url, settings.jenkins_user, settings.jenkins_api_token)
    config.jenkins.update({key: value for key, value in zip(("url", "user", "password"), values)
                           if value})
    if config.jenkins["timeout"] is _DEFAULT_TIMEOUT:
        config.jenkins["timeout"] = JENKINS_TIMEOUT
    xml_jobs = _generate(path, config)
    marks = _stamp(xml_jobs)
    with jenkins_errors("update of the jobs", config.jenkins["url"], config.jenkins["password"],
                        also=(JenkinsJobsException,)):
        manager = JenkinsManager(config)
        listed = manager.jenkins.get_info(query="?tree=jobs[name,description]")
        on_jenkins = {job["name"]: job.get("description") or ""
                      for job in listed.get("jobs", [])}
        _check_owners(xml_jobs, on_jenkins)
        changed = [job for job in xml_jobs
                   if force or not on_jenkins.get(job.name, "").rstrip().endswith(marks[job.name])]
        if changed:
            manager.update_jobs(changed, n_workers=1)
    return sorted(job.name for job in changed)
