"""The workflow catalogue: what each task runs and how the scheduler treats it.

The catalogue (``jobs/workflows.yaml``, or ``ECAL_WORKFLOWS``, or ``--workflows``)
maps a task name to its definition. It is checked completely when loaded, so a
typo is reported once, as one line naming the file, the workflow and the key,
instead of surfacing later as a broken Jenkins job or a stuck scheduler.

A :class:`Workflow` validates itself, so a definition read back from InfluxDB
(where the campaign records the JSON of each task it uses, see
``docs/schema.md``) is held to the same rules as one read from the catalogue.
Commands are carried unchanged to ``bash -c``; the only characters refused are
those that cannot survive the trip through Jenkins' XML configuration
(control characters other than tab and newline).

A workflow's code reaches the Jenkins agents in one of two ways. With ``scm``
(a git repository: ``url``, ``branch`` or ``tag``, optional ``credentials`` id
and ``subdir``) its job checks the repository out and runs the command there;
when the task is added to a campaign the branch or tag is resolved to a commit
(:func:`resolve_commit`, ``git ls-remote``) and that commit is recorded with the
definition, so a reprocessing runs the code it was started with. Without
``scm`` nothing is checked out: the command must call installed executables or
absolute paths, and a relative script path (``python3 scripts/reco.py``,
``./run.sh``) is refused when the catalogue is loaded rather than failing on
every agent.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
from dataclasses import asdict, dataclass, fields, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Mapping

import yaml

from .errors import ConfigError, InvalidName, ScmError
from .names import check_name, describe, did_you_mean
from .resources import shipped
from .settings import Settings, current

GROUPS = ("run", "fill", "era")
#: the catalogue shipped with the package (``jobs/workflows.yaml`` of a checkout links to it)
DEFAULT_CATALOGUE = shipped("data", "workflows.yaml")
#: characters XML 1.0 cannot carry (Jenkins stores jobs as XML); a carriage
#: return is refused too, since XML parsers turn it into a newline
_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


#: git URLs a job may check out: a URL with a scheme, or scp-like ``user@host:path``
_GIT_URL = re.compile(r"(https?|ssh|git|file)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+")
#: a branch or tag name (git check-ref-format, the safe part of it)
_REF = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/+-]+(?<![./])")
#: a directory inside the repository: relative, no ``..``
_SUBDIR = re.compile(r"(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._/+-]+")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: seconds ``git ls-remote`` may take to name a branch's commit
GIT_TIMEOUT = 60
#: programs whose first argument is a script file they run
_INTERPRETERS = re.compile(r"(python[0-9.]*|bash|sh|zsh|ksh|perl|Rscript|ruby|node|root|"
                           r"cmsRun|source|\.|exec|env|time|nice|xrootd)")
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "\n", "|&", ";;"}
_REDIRECTS = {">", ">>", "<", "<<", ">&", "<&", ">|", "&>"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Scm:
    """Where a workflow's code lives: a git repository its job checks out.

    ``branch`` or ``tag`` names what to check out; ``commit`` is the revision it
    pointed to when the task was added to a campaign (:meth:`Workflow.pinned`),
    and once set the job checks out that commit only. ``credentials`` is the id
    of Jenkins credentials able to read the repository; ``subdir`` the directory
    of the repository the command runs in (default: its top).
    """

    url: str
    branch: str | None = None
    tag: str | None = None
    credentials: str | None = None
    subdir: str | None = None
    commit: str | None = None

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"key 'scm': {key!r} {why}, not {describe(getattr(self, key))}")

        if not isinstance(self.url, str) or not _GIT_URL.fullmatch(self.url):
            bad("url", "must be a git URL (https://host/path, ssh://..., file:///path "
                "or user@host:path)")
        if re.match(r"[a-z]+://[^/@]*:[^/@]*@", self.url) or \
                re.match(r"https?://[^/]*@", self.url):
            raise ConfigError("key 'scm': 'url' must not hold a user or password: "
                              "give a Jenkins credentials id in 'credentials'")
        if (self.branch is None) == (self.tag is None):
            raise ConfigError("key 'scm': give exactly one of 'branch' and 'tag'")
        for key in ("branch", "tag"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not _REF.fullmatch(value)):
                bad(key, "must be a git branch or tag name")
        if self.credentials is not None:
            try:
                check_name(self.credentials, "credentials id")
            except InvalidName as err:
                raise ConfigError(f"key 'scm': 'credentials': {err}") from None
        if self.subdir is not None and (not isinstance(self.subdir, str)
                                        or not _SUBDIR.fullmatch(self.subdir)):
            bad("subdir", "must be a relative directory of the repository, without '..'")
        if self.commit is not None and (not isinstance(self.commit, str)
                                        or not _COMMIT.fullmatch(self.commit)):
            bad("commit", "must be a full git commit id (40 hex digits)")

    @classmethod
    def from_dict(cls, data) -> "Scm":
        if not isinstance(data, Mapping):
            raise ConfigError(f"key 'scm' must be a mapping (url, branch or tag, credentials, "
                              f"subdir), not {describe(data)}")
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise ConfigError(f"key 'scm': unknown key {key!r}" + did_you_mean(str(key), known)
                                  + f"; known keys: {', '.join(known)}")
        if "url" not in data:
            raise ConfigError("key 'scm': 'url' is required")
        return cls(**data)

    @property
    def ref(self) -> str:
        """The full name of the branch or tag (``refs/heads/main``, ``refs/tags/v1``)."""
        return f"refs/heads/{self.branch}" if self.branch is not None else f"refs/tags/{self.tag}"


def resolve_commit(scm: Scm) -> str:
    """The commit ``scm``'s branch or tag points to now, asked of the remote (``git ls-remote``).

    Runs with the git credentials of whoever adds the task (ssh key, Kerberos,
    credential helper), never prompting. An annotated tag gives its commit.
    """
    refs = [scm.ref] + ([scm.ref + "^{}"] if scm.tag is not None else [])
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        done = subprocess.run(["git", "ls-remote", "--", scm.url, *refs], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ScmError("git is not installed: it is needed to pin the commit of a workflow's "
                       "repository") from None
    except subprocess.TimeoutExpired:
        raise ScmError(f"git ls-remote {scm.url}: no answer in {GIT_TIMEOUT} s") from None
    if done.returncode != 0:
        detail = next((line for line in done.stderr.splitlines() if line.strip()),
                      f"exit status {done.returncode}")
        raise ScmError(f"git ls-remote {scm.url} failed: {detail.strip()}")
    found = dict(reversed(line.split("\t", 1)) for line in done.stdout.splitlines()
                 if "\t" in line)
    commit = found.get(scm.ref + "^{}") or found.get(scm.ref)
    if commit is None:
        what = f"branch {scm.branch!r}" if scm.branch is not None else f"tag {scm.tag!r}"
        raise ConfigError(f"{what} not found in {scm.url}")
    return commit


def checkout(scm: Scm, folder: Path) -> Path:
    """Check ``scm`` out into the new folder ``folder`` as its Jenkins job would (shallow,
    the pinned commit, else the branch or tag); the directory the command runs in.

    What the local executor does before a build, so that a workflow with ``scm``
    runs here exactly as on an agent.
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    steps = [["init", "-q", str(folder)],
             ["-C", str(folder), "fetch", "-q", "--depth", "1", "--", scm.url,
              scm.commit or scm.ref],
             ["-C", str(folder), "checkout", "-q", "--detach", "FETCH_HEAD"]]
    for step in steps:
        try:
            done = subprocess.run(["git", *step], capture_output=True, text=True, env=env,
                                  timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ScmError(f"git checkout of {scm.url} failed: {err}") from None
        if done.returncode != 0:
            detail = next((line for line in done.stderr.splitlines() if line.strip()),
                          f"exit status {done.returncode}")
            raise ScmError(f"git checkout of {scm.url} failed: {detail.strip()}")
    return folder / scm.subdir if scm.subdir else folder


def relative_script(command: str) -> str | None:
    """The first relative script path ``command`` runs, or None.

    Looks at the program of each simple command and the script argument of an
    interpreter (``python3 x.py``, ``bash run.sh``, ``source env.sh``): a word
    with a ``/`` not starting with ``/``, ``$`` or ``~``, or a bare file name
    given to an interpreter. Shell text it cannot split is not judged.
    """
    try:
        lexer = shlex.shlex(command.replace("\\\n", " "), posix=True,
                            punctuation_chars=";&|()<>")
        lexer.whitespace = " \t\r"
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError:
        return None
    position, interpreter, skip = 0, False, False
    for word in words:
        if word in _SEPARATORS:
            position, interpreter = 0, False
            continue
        if skip or word in _REDIRECTS:
            skip = word in _REDIRECTS
            continue
        if position == 0 and _ASSIGNMENT.match(word):
            continue
        if word.startswith("-"):
            if interpreter and word in ("-m", "-c"):   # a module or inline code, no file
                interpreter = False
                position = 2
            continue
        first = position == 0
        position += 1
        looks_relative = not word.startswith(("/", "$", "~")) and "://" not in word
        if first and looks_relative and "/" in word:
            return word
        if interpreter and looks_relative and ("/" in word or re.search(r"\.\w+$", word)):
            return word
        interpreter = first and _INTERPRETERS.fullmatch(word) is not None
    return None


@dataclass(frozen=True)
class Workflow:
    """One processing step: the command a build runs and its scheduling rules."""

    task: str
    command: str
    depends_on: tuple[str, ...] = ()
    group_by: str = "run"
    max_retries: int = 2
    retry_delay: float = 30.0
    max_in_flight: int | None = None
    node: str | None = None
    timeout_minutes: int = 120
    description: str = ""
    scm: Scm | None = None

    def __post_init__(self):
        task = self.task
        try:
            check_name(task, "task name")
        except InvalidName as err:
            raise ConfigError(str(err)) from None
        if self.scm is not None and not isinstance(self.scm, Scm):
            try:
                object.__setattr__(self, "scm", Scm.from_dict(self.scm))
            except ConfigError as err:
                raise ConfigError(f"workflow {task!r}: {err}") from None

        def bad(key, why):
            raise ConfigError(f"workflow {task!r}: key {key!r} {why}, "
                              f"not {describe(getattr(self, key))}")

        def text(key, optional=False):
            value = getattr(self, key)
            if value is None and optional:
                return
            if not isinstance(value, str):
                bad(key, "must be a string" + (" or null" if optional else ""))
            if _NOT_XML.search(value):
                bad(key, "must not contain control characters (only tab and newline)")

        text("command")
        if not self.command.strip():
            bad("command", "must not be empty")
        if not isinstance(self.depends_on, (list, tuple)) or not all(
                isinstance(dep, str) for dep in self.depends_on):
            bad("depends_on", "must be a list of task names")
        for dep in self.depends_on:
            try:
                check_name(dep, "task name")
            except InvalidName as err:
                raise ConfigError(f"workflow {task!r}: key 'depends_on': {err}") from None
        if len(set(self.depends_on)) != len(self.depends_on):
            bad("depends_on", "lists a task twice")
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        if self.group_by not in GROUPS:
            bad("group_by", f"must be one of {', '.join(GROUPS)}")
        if not _is_int(self.max_retries) or self.max_retries < 0:
            bad("max_retries", "must be an integer >= 0")
        if not _is_number(self.retry_delay) or self.retry_delay < 0:
            bad("retry_delay", "must be a number of seconds >= 0")
        object.__setattr__(self, "retry_delay", float(self.retry_delay))
        if self.max_in_flight is not None and (
                not _is_int(self.max_in_flight) or self.max_in_flight < 1):
            bad("max_in_flight", "must be an integer >= 1 or null (unlimited)")
        text("node", optional=True)
        if self.node is not None and not self.node.strip():
            bad("node", "must not be empty (use null for any agent)")
        if not _is_int(self.timeout_minutes) or self.timeout_minutes < 1:
            bad("timeout_minutes", "must be an integer >= 1")
        text("description")
        if self.scm is None:
            script = relative_script(self.command)
            if script is not None:
                bad("command", f"runs the relative path {script!r} but the workflow has no "
                    "'scm' to check it out: give 'scm' (the git repository holding it), "
                    "or call an installed executable or an absolute path")

    def pinned(self, resolve=resolve_commit) -> "Workflow":
        """This workflow with its repository's branch or tag resolved to a commit.

        What a campaign records when a task is added: the job then checks out
        that commit, whatever the branch becomes. Without ``scm``, or already
        pinned, the workflow itself.
        """
        if self.scm is None or self.scm.commit is not None:
            return self
        try:
            commit = resolve(self.scm)
        except ConfigError as err:
            raise ConfigError(f"workflow {self.task!r}: key 'scm': {err}") from None
        return replace(self, scm=replace(self.scm, commit=commit))

    @classmethod
    def from_dict(cls, task: str, data) -> "Workflow":
        """A workflow from its catalogue entry, refusing unknown or missing keys."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"workflow {task!r}: the definition must be a mapping "
                              f"of keys (command, depends_on, ...), not {describe(data)}")
        known = [f.name for f in fields(cls) if f.name != "task"]
        for key in data:
            if key not in known:
                raise ConfigError(f"workflow {task!r}: unknown key {key!r}"
                                  + did_you_mean(str(key), known)
                                  + f"; known keys: {', '.join(known)}")
        if "command" not in data:
            raise ConfigError(f"workflow {task!r}: key 'command' is required")
        return cls(task, **data)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal workflows give equal text."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Workflow":
        """The workflow a campaign recorded with :meth:`to_json`."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"stored workflow definition is not valid JSON: {err}") from None
        if not isinstance(data, dict) or "task" not in data:
            raise ConfigError("stored workflow definition has no 'task'")
        task = data.pop("task")
        return cls.from_dict(task, data)

    def retry_wait(self, attempt: int) -> float:
        """Seconds to wait before build number ``attempt`` (1 = the first retry).

        The delay doubles with each retry so that a struggling service (EOS,
        the conditions database) gets room to recover; the first build waits 0.
        """
        if attempt < 1:
            return 0.0
        return self.retry_delay * 2 ** (attempt - 1)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader refusing duplicate keys: a task defined twice is a mistake."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def catalogue_path(path: str | os.PathLike | None = None,
                   settings: Settings | None = None) -> Path:
    """Which catalogue to read: ``path``, else ``$ECAL_WORKFLOWS``, else the shipped one."""
    return Path(path or current(settings).workflows or DEFAULT_CATALOGUE)


def load_catalogue(path: str | os.PathLike | None = None,
                   settings: Settings | None = None) -> dict[str, Workflow]:
    """Read and check the whole catalogue; every problem is a one-line ConfigError."""
    source = catalogue_path(path, settings)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"workflow catalogue {source} not found "
                          "(give --workflows PATH or set ECAL_WORKFLOWS)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"workflow catalogue {source} cannot be read: {err}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {err.problem or err.context}") \
            from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the catalogue must be a mapping of task name to "
                          f"definition, not {type(data).__name__}")
    if not data:
        raise ConfigError(f"{source}: the catalogue defines no workflow")
    try:
        catalogue = {}
        for task, definition in data.items():
            catalogue[task] = Workflow.from_dict(task, definition)
        _check_dependencies(catalogue)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return catalogue


def _check_dependencies(catalogue: dict[str, Workflow]) -> None:
    """Every ``depends_on`` target exists and no chain of dependencies loops."""
    for wf in catalogue.values():
        for dep in wf.depends_on:
            if dep not in catalogue:
                raise ConfigError(f"workflow {wf.task!r}: key 'depends_on': unknown task "
                                  f"{dep!r}" + did_you_mean(dep, catalogue))
    try:
        TopologicalSorter({task: wf.depends_on for task, wf in catalogue.items()}).prepare()
    except CycleError as err:
        # graphlib lists a cycle from dependency to dependent, closed (first == last):
        # named from dependent to dependency, from its first task in name order
        loop = list(reversed(err.args[1]))[:-1]
        start = loop.index(min(loop))
        cycle = loop[start:] + loop[:start + 1]
        raise ConfigError(f"workflow {cycle[0]!r}: key 'depends_on': dependency cycle "
                          + " -> ".join(cycle)) from None
