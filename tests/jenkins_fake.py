"""The one fake Jenkins of the test suite, answering through ``responses`` as Jenkins does.

python-jenkins and Jenkins Job Builder talk HTTP to ``http://jenkins.example:8080/``
and this fake answers like a Jenkins 2.440 with the jobs, queue and builds it
holds, so a test drives builds from the outside (start, finish, cancel) and
injects failures per endpoint. Requests to any other URL (the test influxd)
pass through to the network untouched.

Use it through the ``jenkins`` fixture, which also sets ``JENKINS_URL``,
``JENKINS_USER`` and ``JENKINS_API_TOKEN``::

    def test_trigger(jenkins):
        jenkins.add_job("ecal-db-c-task", params={"RUN_NUMBER": "", "TASK": "task"})
        server = connect_jenkins()
        qid = server.build_job("ecal-db-c-task", {"RUN_NUMBER": "355100"})
        assert server.get_queue_item(qid)["why"]            # waiting for an executor
        number = jenkins.start(qid)                           # leaves the queue, runs
        assert server.get_build_info("ecal-db-c-task", number)["building"]
        jenkins.finish("ecal-db-c-task", number, "FAILURE")
        jenkins.fail("buildWithParameters", 500)              # the next trigger fails
        jenkins.fail("*", requests.exceptions.ConnectTimeout("timed out"), times=None)

Endpoints (the names ``fail`` takes), as python-jenkins calls them:

==================== ====== ================================ ===============================
name                 method path                             answer
==================== ====== ================================ ===============================
(any)                                                    414 when the URL passes 8 kB
root                 GET    /                                200, header ``X-Jenkins``
info                 GET    /api/json                        server JSON with ``jobs``
crumb                GET    /crumbIssuer/api/json            ``crumb``, ``crumbRequestField``
whoami               GET    /me/api/json                     the user
plugins              GET    /pluginManager/api/json          ``plugins`` (``add_plugin``)
queue                GET    /queue/api/json                  ``items`` waiting
job                  GET    /job/<n>/api/json                job JSON or 404; ``builds``: the
                                                             newest 100 (``depth=1``: with
                                                             parameters); ``allBuilds`` only
                                                             when ``tree=`` names it
job_page             GET    /job/<n>/                        HTML (redirect target)
build_page           GET    /job/<n>/<N>/                    HTML (redirect target)
config               GET    /job/<n>/config.xml              the XML or 404
reconfig             POST   /job/<n>/config.xml              200 (or 404, 500 bad XML)
createItem           POST   /createItem?name=<n>             200 (400 if taken or bad name)
enable, disable      POST   /job/<n>/enable|disable          302 to the job page
buildWithParameters  POST   /job/<n>/buildWithParameters     201 + ``Location`` of the new
                                                             queue item; 303 to the waiting
                                                             one it is identical to; 409 if
                                                             disabled; 500 if the job has no
                                                             parameters (400 on newer Jenkins)
queue_item           GET    /queue/item/<id>/api/json        waiting (quiet period), blocked,
                                                             buildable (``why``), left
                                                             (``executable``, ``cancelled``);
                                                             404 five minutes after it left
cancelItem           POST   /queue/cancelItem?id=<id>        204 (404 if unknown)
build                GET    /job/<n>/<N>/api/json            ``building``, ``result``, params
stop                 POST   /job/<n>/<N>/stop                302, the build is ABORTED
==================== ====== ================================ ===============================

As Jenkins does: every request needs HTTP basic auth with the user and API
token (wrong token: 401, none: 403); API-token requests need no crumb; a
trigger identical to a waiting one (same job and parameters) is merged into
it and answered ``303 See Other`` to that item's URL, which has no page (404:
python-jenkins' ``build_job`` raises NotFoundException); parameters not defined
by the job are dropped and missing ones take their defaults; ``tree=`` keeps
only the fields it names, at any depth (``_class`` always), with ``{M,N}``
ranges; unknown URLs are 404. Queue items that left the queue (started or
cancelled) are answered for :data:`LEFT_ITEM_SECONDS` after leaving, then 404,
measured on :attr:`FakeJenkins.clock` (a test shares its clock with the
scheduler's). Sources: Jenkins 2.440 ``Queue.java`` (``leftItems`` expire after
5 minutes), ``Job.java`` (``builds`` = ``getNewBuilds()``, the newest 100;
``allBuilds`` exported with visibility -2), ``ParametersDefinitionProperty``
(``_doBuild``: 201 created, 303 existing item), Jetty's 8 kB request header
limit (414).

To add an endpoint (say a plugin's), add its row to ``_ROUTES`` and a method
``_<name>(self, query, body, **path_args)`` returning ``(status, headers, text)``
(see :meth:`FakeJenkins._json`); :meth:`FakeJenkins.fail` then works for it too.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import responses

URL = "http://jenkins.example:8080/"
USER = "ecal-bot"
TOKEN = "jenkins-Secret-tok3"
VERSION = "2.440"
UNSAFE_NAME_CHARS = set("?*/\\%!@#$^&|<>[]:;")
#: seconds Jenkins keeps answering for a queue item after it left the queue
LEFT_ITEM_SECONDS = 300
#: builds a job lists in ``builds`` (``Job.getNewBuilds``)
NEW_BUILDS = 100
#: longest URL Jetty takes (its request header buffer); longer: 414
MAX_URL = 8192
PARAMETERS_ACTION = "hudson.model.ParametersAction"

_ROUTES = [  # (method, regex on the path after the server URL, endpoint name)
    ("GET", r"", "root"),
    ("GET", r"api/json", "info"),
    ("GET", r"crumbIssuer/api/json", "crumb"),
    ("GET", r"me/api/json", "whoami"),
    ("GET", r"pluginManager/api/json", "plugins"),
    ("GET", r"queue/api/json", "queue"),
    ("GET", r"queue/item/(?P<qid>\d+)/api/json", "queue_item"),
    ("POST", r"queue/cancelItem", "cancelItem"),
    ("POST", r"createItem", "createItem"),
    ("GET", r"job/(?P<job>[^/]+)/api/json", "job"),
    ("GET", r"job/(?P<job>[^/]+)/?", "job_page"),
    ("GET", r"job/(?P<job>[^/]+)/config\.xml", "config"),
    ("POST", r"job/(?P<job>[^/]+)/config\.xml", "reconfig"),
    ("POST", r"job/(?P<job>[^/]+)/enable", "enable"),
    ("POST", r"job/(?P<job>[^/]+)/disable", "disable"),
    ("POST", r"job/(?P<job>[^/]+)/buildWithParameters", "buildWithParameters"),
    ("GET", r"job/(?P<job>[^/]+)/(?P<number>\d+)/api/json", "build"),
    ("GET", r"job/(?P<job>[^/]+)/(?P<number>\d+)/?", "build_page"),
    ("POST", r"job/(?P<job>[^/]+)/(?P<number>\d+)/stop", "stop"),
]


class Call(NamedTuple):
    """One request the fake received."""

    method: str
    endpoint: str  # the route name, "" when unknown (answered 404)
    url: str
    body: str


@dataclass
class Job:
    name: str
    config: str
    disabled: bool = False
    next_build: int = 1

    @property
    def param_defaults(self) -> dict[str, str]:
        """String parameters the job defines, with their defaults (from its XML)."""
        root = ET.fromstring(self.config)
        return {p.findtext("name"): p.findtext("defaultValue") or ""
                for p in root.iter("hudson.model.StringParameterDefinition")}


@dataclass
class QueueItem:
    id: int
    job: str
    params: dict[str, str]
    since: int  # ms, when it entered the queue
    why: str | None = "Waiting for next available executor"
    #: in the queue: "waiting" (quiet period), "blocked" or "buildable"
    state: str = "buildable"
    quiet_until: int = 0   # ms, end of the quiet period of a "waiting" item
    build: int | None = None  # set once the build started
    cancelled: bool = False
    left_at: float | None = None  # seconds on the fake's clock, once it left the queue
    forgotten: bool = False

    @property
    def waiting(self) -> bool:
        """Still in the queue (waiting, blocked or buildable)."""
        return self.left_at is None


@dataclass
class Build:
    job: str
    number: int
    params: dict[str, str]
    queue_id: int
    timestamp: int  # ms
    building: bool = True
    result: str | None = None  # SUCCESS, FAILURE, ABORTED, UNSTABLE once finished
    #: actions other than the parameters and the cause (as plugins add them)
    actions: list = field(default_factory=list)


def minimal_config(params: dict[str, str] | None = None, disabled: bool = False) -> str:
    """A freestyle config.xml with string parameters ``{name: default}``."""
    defs = "".join(
        "<hudson.model.StringParameterDefinition>"
        f"<name>{name}</name><defaultValue>{default}</defaultValue>"
        "</hudson.model.StringParameterDefinition>" for name, default in (params or {}).items())
    props = ("<hudson.model.ParametersDefinitionProperty><parameterDefinitions>"
             f"{defs}</parameterDefinitions></hudson.model.ParametersDefinitionProperty>"
             if params else "")
    return (f"<?xml version='1.1' encoding='UTF-8'?><project><description/>"
            f"<disabled>{str(disabled).lower()}</disabled><properties>{props}</properties>"
            "<builders/></project>")


class FakeJenkins:
    """State of the fake server plus the ``responses`` callbacks that expose it."""

    def __init__(self, rsps: responses.RequestsMock | None, url: str = URL, user: str = USER,
                 token: str = TOKEN):
        self.url, self.user, self.token = url, user, token
        #: seconds; a test replaces it with the clock it gives the scheduler
        self.clock: Callable[[], float] = time.time
        #: status of buildWithParameters on a job without parameters (400 since 2.4xx)
        self.unparameterized_status = 500
        self.jobs: dict[str, Job] = {}
        #: every queue item ever created, by id (Jenkins answers for some of them only)
        self.queue: dict[int, QueueItem] = {}
        self.builds: dict[tuple[str, int], Build] = {}
        self.calls: list[Call] = []
        self.plugins: list[dict] = []
        self.crumb = "0123456789abcdef"
        self._failures: list[list] = []  # [endpoint, status or exception, remaining, done]
        self._queue_ids = itertools.count(101)
        #: the ``responses`` mock it answers through (other fakes, OMS's, may join it)
        self.mock = rsps
        if rsps is None:   # served over real HTTP by serve_jenkins()
            return
        pattern = re.compile(re.escape(url) + ".*")
        for method in ("GET", "POST"):
            rsps.add_callback(method, pattern, callback=self._answer)
        # everything else (the test influxd) goes to the network
        rsps.add_passthru(re.compile("^(?!" + re.escape(url) + ")"))

    # --- what a test does to the server ---------------------------------------

    def add_job(self, name: str, params: dict[str, str] | None = None,
                disabled: bool = False, config: str | None = None) -> Job:
        """A job as if created earlier (``params``: string parameters and defaults)."""
        job = Job(name, config or minimal_config(params, disabled), disabled)
        self.jobs[name] = job
        return job

    def add_plugin(self, name: str, version: str = "1.0", enabled: bool = True) -> None:
        """A plugin installed (``enabled=False``: installed but disabled, not active)."""
        self.plugins.append({"shortName": name, "longName": f"{name} plugin",
                             "version": version, "active": enabled, "enabled": enabled,
                             "bundled": False, "hasUpdate": False, "pinned": False})

    def fail(self, endpoint: str, error, times: int | None = 1, done: bool = False) -> None:
        """Make ``endpoint`` ("*": any) answer HTTP ``error`` (an int) or raise ``error``.

        ``error`` may be an exception such as ``requests.exceptions.ConnectTimeout``
        (python-jenkins turns it into a TimeoutException) or ``ConnectionError``
        (server unreachable). The failure lasts ``times`` requests (None: forever).
        ``done``: Jenkins carries the request out, then the answer is lost (a read
        timeout after the trigger was queued).
        """
        self._failures.append([endpoint, error, times, done])

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def leave(self, queue_id: int) -> None:
        """The item leaves the queue for an executor; its build is not created yet
        (a left item with ``executable: null``, for a moment)."""
        item = self.queue[queue_id]
        assert item.waiting, f"queue item {queue_id} is not waiting"
        item.left_at, item.why = self.clock(), None

    def start(self, queue_id: int, actions: list | None = None) -> int:
        """The queued item gets an executor: its build starts; returns the build number.

        ``actions``: more build actions, as plugins add them (``{}`` for those
        exporting nothing)."""
        item = self.queue[queue_id]
        assert item.build is None and not item.cancelled, f"queue item {queue_id} did not wait"
        if item.waiting:
            self.leave(queue_id)
        job = self.jobs[item.job]
        number, job.next_build = job.next_build, job.next_build + 1
        item.build = number
        self.builds[(item.job, number)] = Build(item.job, number, item.params, queue_id,
                                                self.now_ms(), actions=list(actions or []))
        return number

    def finish(self, job: str, number: int, result: str = "SUCCESS") -> None:
        """A running build ends with ``result`` (SUCCESS, FAILURE, ABORTED, UNSTABLE)."""
        build = self.builds[(job, number)]
        build.building, build.result = False, result

    def block(self, queue_id: int, why: str) -> None:
        """The item stays queued, blocked for ``why`` (e.g. "Build #3 is already in
        progress", a throttle)."""
        item = self.queue[queue_id]
        item.state, item.why = "blocked", why

    def starve(self, queue_id: int, why: str) -> None:
        """The item is buildable but no executor takes it (e.g. no agent online)."""
        item = self.queue[queue_id]
        item.state, item.why = "buildable", why

    def quiet(self, queue_id: int, seconds: float) -> None:
        """The item is in its quiet period for ``seconds`` more."""
        item = self.queue[queue_id]
        item.state, item.quiet_until = "waiting", self.now_ms() + int(seconds * 1000)
        item.why = f"In the quiet period. Expires in {seconds:.0f} sec"

    def cancel(self, queue_id: int) -> None:
        """Someone cancels the waiting item in the Jenkins UI."""
        item = self.queue[queue_id]
        item.cancelled, item.why, item.left_at = True, None, self.clock()

    def forget(self, queue_id: int) -> None:
        """Jenkins forgets the item at once (a restart), as it does by itself
        :data:`LEFT_ITEM_SECONDS` after an item left the queue."""
        self.queue[queue_id].forgotten = True

    def known(self, item: QueueItem) -> bool:
        """Whether Jenkins still answers for the item (else 404)."""
        return not item.forgotten and (item.left_at is None or
                                       self.clock() - item.left_at < LEFT_ITEM_SECONDS)

    def triggered(self, job: str | None = None) -> list[QueueItem]:
        """Queue items created by triggers, oldest first (of ``job`` if given), whether
        Jenkins still answers for them or not."""
        return [item for item in self.queue.values() if job in (None, item.job)]

    def endpoint_calls(self, endpoint: str) -> list[Call]:
        return [call for call in self.calls if call.endpoint == endpoint]

    # --- the HTTP side ----------------------------------------------------------

    def route(self, method: str, url: str) -> tuple[str, dict]:
        """(endpoint name or "", its path arguments) of a request."""
        path = unquote(urlsplit(url).path)[len(urlsplit(self.url).path):]
        for route_method, regex, name in _ROUTES:
            match = re.fullmatch(regex, path)
            if route_method == method and match:
                return name, match.groupdict()
        return "", {}

    def _answer(self, request):
        query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
        body = request.body or b""
        body = body.decode("utf-8") if isinstance(body, bytes) else body
        endpoint, args = self.route(request.method, request.url)
        self.calls.append(Call(request.method, endpoint, request.url, body))
        if len(request.url) - len(self.url) + 1 > MAX_URL:   # path and query
            return self._error(414, "URI Too Long")
        for failure in self._failures:
            if failure[0] in ("*", endpoint) and failure[2] != 0:
                if failure[2] is not None:
                    failure[2] -= 1
                if failure[3]:
                    self._carry_out(request, endpoint, args, query, body)
                if isinstance(failure[1], BaseException):
                    return failure[1]
                return self._error(failure[1], f"injected failure of {endpoint}")
        return self._carry_out(request, endpoint, args, query, body)

    def _carry_out(self, request, endpoint: str, args: dict, query: dict, body: str):
        denied = self._check_auth(request)
        if denied:
            return denied
        if not endpoint:
            return self._error(404, "Not Found")
        if "job" in args and args["job"] not in self.jobs:
            return self._error(404, "Not Found")
        return getattr(self, "_" + endpoint)(query=query, body=body, **args)

    def _check_auth(self, request):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return self._error(403, "Authentication required")
        user, _, token = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        if (user, token) != (self.user, self.token):
            return self._error(401, f"Invalid password/token for user: {user}")
        return None

    def _headers(self, content_type="application/json;charset=utf-8", **extra):
        return {"X-Jenkins": VERSION, "Content-Type": content_type, **extra}

    def _json(self, data, query=None, status=200, **headers):
        if query and "tree" in query:
            data = _prune(data, parse_tree(query["tree"]))
        return status, self._headers(**headers), json.dumps(data)

    def _error(self, status: int, message: str):
        reason = HTTPStatus(status).phrase
        page = (f"<html><head><title>Error {status} {reason}</title></head>"
                f"<body><h2>HTTP ERROR {status} {message}</h2></body></html>")
        headers = self._headers("text/html;charset=utf-8")
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Jenkins"'
        return status, headers, page

    def _redirect(self, target: str):
        return 302, self._headers("text/html;charset=utf-8", Location=target), ""

    def _job_url(self, name: str) -> str:
        return f"{self.url}job/{name}/"

    def _color(self, job: Job) -> str:
        if job.disabled:
            return "disabled"
        builds = self._builds_of(job.name)
        if not builds:
            return "notbuilt"
        last = builds[0]
        color = {"SUCCESS": "blue", "FAILURE": "red", "UNSTABLE": "yellow"}.get(
            last.result or "", "aborted")
        return color + "_anime" if last.building else color

    def _job_summary(self, job: Job) -> dict:
        return {"_class": "hudson.model.FreeStyleProject", "name": job.name,
                "url": self._job_url(job.name), "color": self._color(job)}

    def _build_ref(self, build: Build | None):
        if build is None:
            return None
        return {"_class": "hudson.model.FreeStyleBuild", "number": build.number,
                "url": f"{self._job_url(build.job)}{build.number}/"}

    # endpoints, named as in _ROUTES

    def _root(self, query, body):
        return 200, self._headers("text/html;charset=utf-8"), "<html>Dashboard [Jenkins]</html>"

    def _info(self, query, body):
        # as Jenkins: a job's description only when the tree asks for it
        described = "description" in query.get("tree", "")
        return self._json({"_class": "hudson.model.Hudson", "mode": "NORMAL",
                           "nodeDescription": "the Jenkins controller", "numExecutors": 0,
                           "useCrumbs": True, "useSecurity": True, "url": self.url,
                           "jobs": [dict(self._job_summary(j), **(
                               {"description": ET.fromstring(j.config).findtext("description")
                                or None} if described else {}))
                               for j in self.jobs.values()]},
                          query)

    def _crumb(self, query, body):
        return self._json({"_class": "hudson.security.csrf.DefaultCrumbIssuer",
                           "crumb": self.crumb, "crumbRequestField": "Jenkins-Crumb"})

    def _whoami(self, query, body):
        return self._json({"_class": "hudson.model.User", "id": self.user,
                           "fullName": self.user, "absoluteUrl": f"{self.url}user/{self.user}"})

    def _plugins(self, query, body):
        return self._json({"_class": "hudson.LocalPluginManager", "plugins": self.plugins})

    def _queue(self, query, body):
        return self._json({"_class": "hudson.model.Queue", "discoverableItems": [],
                           "items": [self._queue_json(i) for i in self.queue.values()
                                     if i.waiting and self.known(i)]}, query)

    def _queue_json(self, item: QueueItem) -> dict:
        """An item as ``Queue.Item`` exports it, by its state (WaitingItem, BlockedItem,
        BuildableItem, LeftItem)."""
        state = item.state if item.waiting else "left"
        data = {"_class": "hudson.model.Queue$" + {
                    "waiting": "WaitingItem", "blocked": "BlockedItem",
                    "buildable": "BuildableItem", "left": "LeftItem"}[state],
                "actions": [_parameters_action(item.params), {}, _cause_action(self.user)],
                "blocked": state == "blocked", "buildable": state == "buildable",
                "id": item.id, "inQueueSince": item.since,
                "params": "".join(f"\n{k}={v}" for k, v in item.params.items()),
                "stuck": False, "task": self._job_summary(self.jobs[item.job]),
                "url": f"queue/item/{item.id}/", "why": item.why}
        if state == "waiting":
            data["timestamp"] = item.quiet_until
        elif state == "buildable":
            data["buildableStartMilliseconds"] = item.since
            data["pending"] = False
        elif state == "left":
            data["cancelled"] = item.cancelled
            data["executable"] = self._build_ref(self.builds.get((item.job, item.build)))
        return data

    def _queue_item(self, query, body, qid):
        item = self.queue.get(int(qid))
        if item is None or not self.known(item):
            return self._error(404, "Not Found")
        return self._json(self._queue_json(item), query)

    def _cancelItem(self, query, body):
        item = self.queue.get(int(query.get("id", "0") or 0))
        if item is None or not item.waiting or not self.known(item):
            return self._error(404, f"Provided id ({query.get('id')}) not found")
        self.cancel(item.id)
        return 204, self._headers("text/plain"), ""

    def _createItem(self, query, body):
        name = query.get("name", "")
        if not name or set(name) & UNSAFE_NAME_CHARS or name.endswith("."):
            return self._error(400, f"‘{name}’ is not an acceptable name")
        if name in self.jobs:
            return self._error(400, f"A job already exists with the name ‘{name}’")
        try:
            disabled = (ET.fromstring(body).findtext("disabled") or "false") == "true"
        except ET.ParseError:
            return self._error(500, "Failed to parse the job configuration")
        self.jobs[name] = Job(name, body, disabled)
        return 200, self._headers("text/html;charset=utf-8"), ""

    def _builds_of(self, job: str) -> list[Build]:
        """The builds of ``job``, newest first."""
        return sorted((b for (name, _), b in self.builds.items() if name == job),
                      key=lambda b: b.number, reverse=True)

    def _job(self, query, body, job):
        j = self.jobs[job]
        builds = self._builds_of(job)
        done = [b for b in builds if not b.building]
        waiting = [i for i in self.queue.values()
                   if i.job == job and i.waiting and self.known(i)]
        # a tree= may name any field of the builds; depth=1 expands them all
        expand = "tree" in query or int(query.get("depth") or 0) >= 1

        def last(pred):
            return self._build_ref(next((b for b in done if pred(b)), None))

        data = {**self._job_summary(j), "displayName": job, "fullName": job,
                "fullDisplayName": job, "description": "", "buildable": not j.disabled,
                "disabled": j.disabled, "concurrentBuild": True, "inQueue": bool(waiting),
                "queueItem": self._queue_json(waiting[0]) if waiting else None,
                "nextBuildNumber": j.next_build,
                "builds": [self._build_json(b) if expand else self._build_ref(b)
                           for b in builds[:NEW_BUILDS]],
                "firstBuild": self._build_ref(builds[-1] if builds else None),
                "lastBuild": self._build_ref(builds[0] if builds else None),
                "lastCompletedBuild": last(lambda b: True),
                "lastSuccessfulBuild": last(lambda b: b.result == "SUCCESS"),
                "lastFailedBuild": last(lambda b: b.result == "FAILURE"),
                "property": [{"_class": "hudson.model.ParametersDefinitionProperty",
                              "parameterDefinitions": [
                                  {"_class": "hudson.model.StringParameterDefinition",
                                   "name": n, "defaultParameterValue": {"value": d}}
                                  for n, d in j.param_defaults.items()]}]}
        if "allBuilds" in parse_tree(query.get("tree", "")):  # exported with visibility -2
            data["allBuilds"] = [self._build_json(b) for b in builds]
        return self._json(data, query)

    def _job_page(self, query, body, job):
        return 200, self._headers("text/html;charset=utf-8"), f"<html>{job} [Jenkins]</html>"

    def _config(self, query, body, job):
        return 200, self._headers("application/xml"), self.jobs[job].config

    def _reconfig(self, query, body, job):
        try:
            disabled = (ET.fromstring(body).findtext("disabled") or "false") == "true"
        except ET.ParseError:
            return self._error(500, "Failed to parse the job configuration")
        self.jobs[job].config, self.jobs[job].disabled = body, disabled
        return 200, self._headers("text/html;charset=utf-8"), ""

    def _set_disabled(self, job: str, disabled: bool):
        config = ET.fromstring(self.jobs[job].config)
        flag = config.find("disabled")
        if flag is None:
            flag = ET.SubElement(config, "disabled")
        flag.text = str(disabled).lower()
        self.jobs[job].config = ET.tostring(config, encoding="unicode")
        self.jobs[job].disabled = disabled
        return self._redirect(self._job_url(job))

    def _enable(self, query, body, job):
        return self._set_disabled(job, False)

    def _disable(self, query, body, job):
        return self._set_disabled(job, True)

    def _buildWithParameters(self, query, body, job):
        j = self.jobs[job]
        if j.disabled:
            return self._error(409, f"{job} is not buildable")
        given = dict(query)
        if body:
            given.update(parse_qsl(body, keep_blank_values=True))
        given.pop("token", None)
        defaults = j.param_defaults
        if not defaults:   # IllegalStateException (500), or 400 on newer Jenkins
            return self._error(self.unparameterized_status,
                               "This build is not parameterized!")
        params = {name: given.get(name, default) for name, default in defaults.items()}
        for item in self.queue.values():
            if item.job == job and item.waiting and self.known(item) and item.params == params:
                # the identical waiting item is kept: 303 to it (its URL has no page)
                return 303, self._headers("text/html;charset=utf-8",
                                          Location=f"{self.url}queue/item/{item.id}/"), ""
        item = QueueItem(next(self._queue_ids), job, params, self.now_ms())
        self.queue[item.id] = item
        return 201, self._headers("text/html;charset=utf-8",
                                  Location=f"{self.url}queue/item/{item.id}/"), ""

    def _build(self, query, body, job, number):
        build = self.builds.get((job, int(number)))
        if build is None:
            return self._error(404, "Not Found")
        return self._json(self._build_json(build), query)

    def _build_json(self, build: Build) -> dict:
        job = build.job
        return {
            "_class": "hudson.model.FreeStyleBuild",
            "actions": [_parameters_action(build.params), _cause_action(self.user), {},
                        *build.actions],
            "building": build.building, "description": None,
            "displayName": f"#{build.number}", "duration": 0 if build.building else 1000,
            "estimatedDuration": -1, "fullDisplayName": f"{job} #{build.number}",
            "id": str(build.number), "keepLog": False, "number": build.number,
            "queueId": build.queue_id, "result": build.result, "timestamp": build.timestamp,
            "url": f"{self._job_url(job)}{build.number}/", "builtOn": "agent-1"}

    def _build_page(self, query, body, job, number):
        if (job, int(number)) not in self.builds:
            return self._error(404, "Not Found")
        return 200, self._headers("text/html;charset=utf-8"), f"<html>{job} #{number}</html>"

    def _stop(self, query, body, job, number):
        build = self.builds.get((job, int(number)))
        if build is None:
            return self._error(404, "Not Found")
        if build.building:
            self.finish(job, build.number, "ABORTED")
        return self._redirect(f"{self._job_url(job)}{build.number}/")


def _parameters_action(params: dict[str, str]) -> dict:
    return {"_class": PARAMETERS_ACTION,
            "parameters": [{"_class": "hudson.model.StringParameterValue",
                            "name": name, "value": value} for name, value in params.items()]}


def _cause_action(user: str) -> dict:
    return {"_class": "hudson.model.CauseAction",
            "causes": [{"_class": "hudson.model.Cause$UserIdCause",
                        "shortDescription": f"Started by user {user}",
                        "userId": user, "userName": user}]}


class Tree(NamedTuple):
    """One field of a ``tree=`` query: the fields kept below it, the range of a list."""

    fields: dict | None   # None: the field is named without [...]
    range: tuple[int | None, int | None] | None


def parse_tree(spec: str) -> dict[str, Tree]:
    """``builds[number,actions[parameters[name]]]{0,10},color`` as nested :class:`Tree`."""
    fields, rest = _parse_fields(spec, 0)
    if rest != len(spec):
        raise ValueError(f"bad tree {spec!r} at {rest}")
    return fields


def _parse_fields(spec: str, at: int) -> tuple[dict, int]:
    fields: dict[str, Tree] = {}
    while at < len(spec) and spec[at] != "]":
        name = re.match(r"[^,\[\]{}]*", spec[at:]).group()
        at += len(name)
        sub = span = None
        if at < len(spec) and spec[at] == "[":
            sub, at = _parse_fields(spec, at + 1)
            at += 1   # the closing ]
        if at < len(spec) and spec[at] == "{":
            end = spec.index("}", at)
            low, comma, high = spec[at + 1:end].partition(",")
            first = int(low) if low else None
            span = (first, (int(high) if high else None) if comma else (first or 0) + 1)
            at = end + 1
        if name:
            fields[name] = Tree(sub, span)
        if at < len(spec) and spec[at] == ",":
            at += 1
    return fields, at


def _prune(value, fields: dict[str, Tree]):
    """``value`` with only ``fields`` (and ``_class``), as Jenkins applies ``tree=``."""
    if isinstance(value, list):
        return [_prune(item, fields) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {"_class": value["_class"]} if "_class" in value else {}
    for name, tree in fields.items():
        if name not in value:
            continue
        child = value[name]
        if tree.range and isinstance(child, list):
            child = child[slice(*tree.range)]
        kept[name] = _prune(child, tree.fields or {})
    return kept


@pytest.fixture
def jenkins(request, monkeypatch, tmp_path):
    """A :class:`FakeJenkins` answering at ``JENKINS_URL``, with user and token set."""
    if "env" in request.fixturenames:
        request.getfixturevalue("env")  # `env` clears JENKINS_*: let it run first
    monkeypatch.setenv("JENKINS_URL", URL)
    monkeypatch.setenv("JENKINS_USER", USER)
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # JJB's job cache
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeJenkins(rsps)


# --- the same fake over real HTTP, for schedulers running in other processes -----------

class _Incoming(NamedTuple):
    """What :meth:`FakeJenkins._answer` reads of a request (as ``responses`` gives it)."""

    method: str
    url: str
    headers: dict
    body: bytes


class _Drop(Exception):
    """A hook decided that the client gets no answer (the connection is closed)."""


class LoopbackJenkins(FakeJenkins):
    """A :class:`FakeJenkins` answering real HTTP on a loopback port.

    ``responses`` only patches this process: a scheduler started as a subprocess
    reaches this server instead, through ``JENKINS_URL`` = :attr:`url`. Hooks run
    in the server thread: ``before[endpoint]`` before the request is handled,
    ``after[endpoint]`` once it has been (a queue item created, say) but before
    the answer leaves; either may raise :class:`_Drop` (see :meth:`drop`) so the
    client never gets an answer, as when it is killed at that moment.
    """

    def __init__(self, user: str = USER, token: str = TOKEN):
        import http.server
        import threading

        fake = self
        self._lock = threading.Lock()
        self.before: dict = {}
        self.after: dict = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = _Incoming(self.command, fake.url.rstrip("/") + self.path,
                                    dict(self.headers), self.rfile.read(length))
                try:
                    status, headers, text = fake.handle(request)
                except _Drop:
                    self.close_connection = True
                    return
                data = text.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        super().__init__(None, f"http://127.0.0.1:{self.httpd.server_port}/", user, token)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def drop() -> None:
        """From a hook: give the client no answer."""
        raise _Drop()

    def handle(self, request: _Incoming):
        endpoint, _ = self.route(request.method, request.url)
        with self._lock:   # one request at a time, as the fake's state is not shared-safe
            if endpoint in self.before:
                self.before[endpoint](request)
            answer = self._answer(request)
            if endpoint in self.after:
                self.after[endpoint](request)
        if isinstance(answer, BaseException):
            raise _Drop()
        return answer

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback_jenkins(request, monkeypatch):
    """A :class:`LoopbackJenkins`, with ``JENKINS_*`` set for this process too."""
    if "env" in request.fixturenames:
        request.getfixturevalue("env")
    server = LoopbackJenkins()
    monkeypatch.setenv("JENKINS_URL", server.url)
    monkeypatch.setenv("JENKINS_USER", USER)
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    yield server
    server.close()
