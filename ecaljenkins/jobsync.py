"""Keep Jenkins in step with the campaigns: render, validate, push, enable, disable.

A campaign's jobs are rendered from the workflow definitions *recorded in the
campaign* (not the current catalogue), so a reprocessing keeps running the
definition it was started with. Every change of the active tasks re-renders the
campaign's file; when Jenkins is configured the change is pushed as well,
otherwise only the files are written and the caller says so.

:func:`create_rtype` and :func:`update_rtype` are what ``rtype-create`` and
``rtype-update`` do, whole: check what the jobs will need, record the workflow
definitions, change the campaign, re-render and push. A Python user calls them
rather than :meth:`RunCtrl.update_rtype <ecaljenkins.campaign.RunCtrl.update_rtype>`,
which changes the campaign only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import jenkins_server, jobs
from .campaign import Campaign, RtypeChange, RunCtrl, list_campaigns
from .errors import ConfigError, InputError, JenkinsError, NotFound
from .names import check_name, did_you_mean, job_name
from .registry import open_registry
from .settings import Settings, current
from .workflows import Workflow, load_catalogue


def jobs_dir(output: str | None = None, settings: Settings | None = None) -> Path:
    """``--output``, else ``$ECAL_JOBS_DIR``, else ``jobs/`` of the current directory."""
    return Path(output or current(settings).jobs_dir or "jobs")


@dataclass
class SyncResult:
    campaign: str
    path: Path | None = None
    jobs: list[str] = field(default_factory=list)
    #: tasks active in the campaign without a recorded workflow definition: no job
    undefined: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    jenkins: bool = False


def recorded_workflows(camp: Campaign) -> dict[str, Workflow]:
    return {task: Workflow.from_json(text) for task, text in camp.workflows.items()}


def catalogue_definitions(tasks, catalogue: dict[str, Workflow], recorded=(),
                          allow_undefined: bool = False) -> tuple[dict, list[str]]:
    """({task: definition JSON} of the tasks the catalogue defines, warnings).

    A definition with a git repository is recorded pinned to the commit its
    branch or tag points to now (``git ls-remote``), so the campaign's job keeps
    checking out that code; asked before the campaign changes, so an unreachable
    repository leaves it as it was.

    A task neither in the catalogue nor ``recorded`` in the campaign would stay
    ``new`` forever: NotFound (with the closest name), or with ``allow_undefined``
    a warning, for a workflow defined later.
    """
    definitions, warnings = {}, []
    for task in tasks:
        if task in catalogue:
            definitions[task] = catalogue[task].pinned().to_json()
        elif task not in recorded:
            hint = did_you_mean(task, catalogue)
            if not allow_undefined:
                raise NotFound(f"task {task!r} has no workflow definition in the catalogue "
                               f"nor in the campaign{hint} (give --allow-undefined if its "
                               "workflow is defined later)")
            warnings.append(f"task {task!r} has no workflow definition in the catalogue"
                            + hint + ": it is recorded, but gets no Jenkins job")
    return definitions, warnings


def render(db: str, camp: Campaign, output: str | None = None,
           credentials_id: str = "ecal-influxdb", settings: Settings | None = None) -> SyncResult:
    """Render and validate (through JJB) the jobs of one campaign."""
    result = SyncResult(camp.name)
    workflows = recorded_workflows(camp)
    active = camp.active_tasks
    result.undefined = sorted(active - set(workflows))
    if workflows:
        result.path = jobs.render_campaign(db, camp.name, workflows, active & set(workflows),
                                           jobs_dir(output, settings), credentials_id, settings)
        result.jobs = sorted(jobs.validate(result.path))
    return result


def preflight(output: str | None = None, settings: Settings | None = None) -> bool:
    """Check what re-rendering and pushing will need, before a campaign changes.

    A missing templates folder, an unwritable output folder or a broken Jenkins
    configuration (``JENKINS_URL`` set, the rest missing or wrong) raise
    ConfigError here, so they leave the database as it was. Returns whether
    changes are to be pushed to Jenkins.
    """
    settings = current(settings)
    jobs.existing_templates_dir(settings)
    folder = jobs_dir(output, settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the jobs folder {folder}: {err.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write the Jenkins jobs into {folder}: permission denied")
    if not settings.jenkins_configured:
        return False
    settings.jenkins_account()
    jenkins_server.check_reachable(settings)
    return True


def sync(ctrl: RunCtrl, previously_active: set[str], output: str | None = None,
         push: bool | None = None, settings: Settings | None = None) -> SyncResult:
    """Re-render a campaign after its active tasks changed, and tell Jenkins.

    The jobs that differ from Jenkins' are pushed (:func:`jobs.update_jenkins`):
    a newly active task's job is created or enabled, the job of a task no longer
    active anywhere is pushed disabled. ``push=None`` means "if Jenkins is
    configured". The campaign has changed already when this runs: if Jenkins
    fails now, the error says the change is recorded and which command (or the
    next scheduler cycle, which runs ``jobs --update``) brings the jobs up to date.
    """
    settings = current(settings)
    camp = ctrl.info()
    result = render(ctrl.influx.db, camp, output, settings=settings)
    result.jenkins = settings.jenkins_configured if push is None else push
    if not result.jenkins or result.path is None:
        return result
    try:
        pushed = jobs.update_jenkins(result.path, settings=settings)
    except JenkinsError as err:
        raise jenkins_server.with_hint(
            err, f"the change of campaign {camp.name!r} is recorded, but its Jenkins jobs are "
            f"out of date: 'ecalrunctrl.py --db {ctrl.influx.db} jobs --update' (or the next "
            "scheduler cycle) pushes them") from None
    gone = {job_name(ctrl.influx.db, camp.name, t)
            for t in (previously_active - camp.active_tasks) & set(camp.workflows)}
    result.pushed = [name for name in pushed if name not in gone]
    result.disabled = [name for name in pushed if name in gone]
    return result


def render_all(influx, campaign: str | None = None, output: str | None = None,
               update: bool = False, jenkins_ini: str | None = None,
               scheduler_dbs: list[str] | None = None,
               settings: Settings | None = None, force: bool = False,
               notify: str = "") -> list[SyncResult]:
    """``ecalrunctrl.py jobs``: render/validate every campaign (or one), optionally push.

    With ``scheduler_dbs`` the scheduler job (the freestyle twin of the
    Jenkinsfile, for servers managed with JJB only) is rendered too, as a result
    named ``scheduler``, mailing ``notify`` (comma-separated) when a cycle fails
    or needs attention.
    """
    settings = current(settings)
    camps = [RunCtrl(influx, campaign).info()] if campaign else list_campaigns(influx)
    results = [render(influx.db, camp, output, settings=settings) for camp in camps]
    if scheduler_dbs:
        path = jobs.render_scheduler(scheduler_dbs, jobs_dir(output, settings), notify=notify,
                                     settings=settings)
        results.append(SyncResult("scheduler", path, sorted(jobs.validate(path))))
    if update:
        for result in results:
            if result.path is not None:
                result.pushed = jobs.update_jenkins(result.path, jenkins_ini, settings, force)
                result.jenkins = True
    return results


def add_definitions(tasks, workflows_path: str | None = None,
                    settings: Settings | None = None, recorded=(),
                    allow_undefined: bool = False) -> tuple[dict, list[str]]:
    """Load the catalogue and return the definitions to record for ``tasks``."""
    if not tasks:
        return {}, []
    return catalogue_definitions(tasks, load_catalogue(workflows_path, settings), recorded,
                                 allow_undefined)


# --- run types and their jobs, in step --------------------------------------------------

@dataclass
class RtypeResult:
    """What a run type change did: to the campaign, and to its Jenkins jobs."""

    change: RtypeChange
    #: things the user should know, none of them an error (unknown workflow, no-op add)
    warnings: list[str] = field(default_factory=list)
    #: the re-rendered (and maybe pushed) jobs; None when the active tasks did not change
    jobs: SyncResult | None = None


def create_rtype(ctrl: RunCtrl, rtype: str, filters: list[str], tasks=(),
                 workflows: str | None = None, output: str | None = None,
                 settings: Settings | None = None, allow_undefined: bool = False
                 ) -> RtypeResult:
    """Add a run type with its active tasks, and keep the campaign's jobs in step.

    The jobs folder and Jenkins settings are checked first (a bad ``JENKINS_URL``
    leaves the database unchanged); the tasks' definitions are taken from the
    catalogue (``workflows``, else ``$ECAL_WORKFLOWS``) and recorded with them.
    A task defined nowhere, or depending on a task active nowhere, is refused
    unless ``allow_undefined``.
    """
    settings = current(settings)
    check_name(rtype, "run type")
    tasks = [check_name(t, "task") for t in dict.fromkeys(tasks)]
    push = preflight(output, settings) if tasks else False
    camp = ctrl.info()
    before = camp.active_tasks
    definitions, warnings = add_definitions(tasks, workflows, settings, camp.workflows,
                                            allow_undefined)
    ctrl.create_rtype(rtype, filters, tasks, definitions, open_registry(settings=settings),
                      allow_undefined)
    result = RtypeResult(RtypeChange(added=tasks), warnings)
    if tasks:
        result.jobs = sync(ctrl, before, output, push, settings)
    return result


def update_rtype(ctrl: RunCtrl, rtype: str, add=(), remove=(),
                 filters: list[str] | None = None, backfill: bool = False,
                 refresh: bool = False, workflows: str | None = None,
                 output: str | None = None, settings: Settings | None = None,
                 allow_undefined: bool = False) -> RtypeResult:
    """Change a run type's active tasks or filters, and keep the campaign's jobs in step.

    ``refresh`` records the catalogue's current definition of the run type's
    tasks whose definition changed (``change.refreshed``); when that and nothing
    else is asked and no definition changed, nothing is written. Checks come
    first, as in :func:`create_rtype`; tasks no longer active anywhere get their
    job disabled.
    """
    check_name(rtype, "run type")
    add, remove = [check_name(t, "task") for t in add], [check_name(t, "task") for t in remove]
    if not (add or remove or filters or refresh):
        raise InputError("nothing to do: give --add, --remove, --filter or --refresh")
    settings = current(settings)
    push = preflight(output, settings) if add or remove or refresh else False
    camp = ctrl.info()
    current_tasks = list(camp.rtype(rtype).tasks)
    catalogue = load_catalogue(workflows, settings) if add or refresh else {}
    # a task both added and removed is RunCtrl.update_rtype's error, not an unknown task
    definitions, warnings = catalogue_definitions([t for t in add if t not in remove],
                                                  catalogue, camp.workflows, allow_undefined)
    latest = {task: catalogue[task].pinned().to_json() for task in current_tasks
              if refresh and task in catalogue}
    refreshed = [task for task, text in latest.items() if text != camp.workflows.get(task)]
    definitions.update((task, latest[task]) for task in refreshed)
    if not (add or remove or filters or refreshed):
        return RtypeResult(RtypeChange(), warnings)
    change = ctrl.update_rtype(rtype, add, remove, filters, backfill, definitions, refreshed,
                               open_registry(settings=settings) if filters else None,
                               allow_undefined)
    warnings += [f"task {task!r} depends on {dep!r}, now active in no run type of campaign "
                 f"{ctrl.campaign!r}: its runs wait until {dep!r} is added again (remove "
                 f"{task!r} too to stop them)" for task, dep in change.stranded]
    change.refreshed = refreshed
    warnings += [f"task {task!r} was already active in run type {rtype!r}"
                 for task in change.unchanged]
    result = RtypeResult(change, warnings)
    if change.added or change.removed or refreshed:
        result.jobs = sync(ctrl, camp.active_tasks, output, push, settings)
    return result


# --- pausing a campaign ------------------------------------------------------------------

@dataclass
class PauseResult:
    """What ``pause`` or ``resume`` did: {run type: tasks} and the campaign's jobs."""

    tasks: dict[str, list[str]]
    jobs: SyncResult | None = None


def pause(ctrl: RunCtrl, output: str | None = None,
          settings: Settings | None = None) -> PauseResult:
    """Make every task of the campaign inactive, remembering its run type; disable the jobs.

    The same as removing every task with ``rtype-update --remove`` (the seed's way
    of deactivating a campaign), except that :func:`resume` can undo it.
    """
    return _pause_or_resume(ctrl, ctrl.pause, output, settings)


def resume(ctrl: RunCtrl, output: str | None = None,
           settings: Settings | None = None) -> PauseResult:
    """Give every run type back the tasks :func:`pause` removed; push (enable) their jobs."""
    return _pause_or_resume(ctrl, ctrl.resume, output, settings)


def _pause_or_resume(ctrl: RunCtrl, change, output, settings) -> PauseResult:
    settings = current(settings)
    push = preflight(output, settings)
    before = ctrl.info().active_tasks
    result = PauseResult(change())
    result.jobs = sync(ctrl, before, output, push, settings)
    return result
