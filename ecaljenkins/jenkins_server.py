"""The Jenkins server, through python-jenkins: connect, enable/disable jobs, errors.

This is the REST side of Jenkins (what the scheduler's executor and the job
sync talk to); rendering the jobs with Jenkins Job Builder is :mod:`.jobs`, so a
scheduler cycle never imports JJB. The server and account come from
:meth:`Settings.jenkins_account <ecaljenkins.settings.Settings.jenkins_account>`.

Every failure leaves here as one of the typed errors of :mod:`.errors`, whose
message is one line naming the server and the action, with the API token
scrubbed: :class:`~.errors.JenkinsTimeout` (no answer in time: the request may
have been carried out), :class:`~.errors.JenkinsUnreachable` (no connection),
:class:`~.errors.JenkinsRefused` with its HTTP status (``JenkinsAuthError`` for
401/403, ``JenkinsNotFound`` for 404), and :class:`~.errors.JenkinsError` for
anything else.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import jenkins
import requests

from .errors import (JenkinsAuthError, JenkinsError, JenkinsNotFound, JenkinsRefused,
                     JenkinsTimeout, JenkinsUnreachable, first_line)
from .settings import Settings, current

#: seconds before a request to Jenkins is given up
JENKINS_TIMEOUT = 30

_STATUS = re.compile(r"\[(\d{3})\]")
_HINTS = {401: "check JENKINS_USER and JENKINS_API_TOKEN",
          403: "the Jenkins account lacks the permission",
          404: "not found on Jenkins",
          500: "Jenkins failed internally, see its log"}


def connect_jenkins(settings: Settings | None = None) -> jenkins.Jenkins:
    """A python-jenkins client from ``JENKINS_URL``/``JENKINS_USER``/``JENKINS_API_TOKEN``."""
    url, user, token = current(settings).jenkins_account()
    return jenkins.Jenkins(url, username=user, password=token, timeout=JENKINS_TIMEOUT)


#: the Jenkins plugins the Jenkinsfile and the generated jobs use, and what for
REQUIRED_PLUGINS = {
    "workflow-aggregator": "the Jenkinsfile (Pipeline, declarative)",
    "git": "the Jenkinsfile's checkout and the workflows' repositories (scm)",
    "credentials-binding": "InfluxDB, Jenkins API and OMS credentials in builds",
    "build-timeout": "timeout_minutes of the workflow jobs, the scheduler job's timeout",
    "throttle-concurrents": "max_in_flight of the workflow jobs",
    "mailer": "mails of failed and unstable scheduler cycles",
}


def check_reachable(settings: Settings | None = None) -> None:
    """Ask Jenkins who we are: raise its typed error if it cannot be reached or refuses us.

    Done before a campaign changes (``rtype-update --add``), so that an
    unreachable Jenkins leaves the database as it was.
    """
    settings = current(settings)
    server = connect_jenkins(settings)
    with jenkins_errors("checking the connection", server.server, settings.jenkins_api_token):
        server.get_whoami()


def missing_plugins(settings: Settings | None = None) -> dict[str, str]:
    """{plugin: what needs it} of :data:`REQUIRED_PLUGINS` Jenkins lacks (or has disabled)."""
    settings = current(settings)
    server = connect_jenkins(settings)
    with jenkins_errors("listing the plugins", server.server, settings.jenkins_api_token):
        plugins = server.get_plugins(depth=1).values()
    active = {p.get("shortName") for p in plugins if p.get("active") and p.get("enabled")}
    return {name: why for name, why in REQUIRED_PLUGINS.items() if name not in active}


def with_hint(err: JenkinsError, hint: str) -> JenkinsError:
    """The same typed error, its message followed by ``hint``."""
    message = f"{err}; {hint}"
    return type(err)(message, err.status) if isinstance(err, JenkinsRefused) \
        else type(err)(message)


def set_enabled(job_names: list[str], enabled: bool, settings: Settings | None = None) -> None:
    """Enable or disable jobs on Jenkins (a run type gained or lost tasks)."""
    settings = current(settings)
    server = connect_jenkins(settings)
    verb = "enabling" if enabled else "disabling"
    for name in job_names:
        with jenkins_errors(f"{verb} job {name}", server.server, settings.jenkins_api_token):
            if enabled:
                server.enable_job(name)
            else:
                server.disable_job(name)


#: the statuses a caller treats apart; any other error status is a JenkinsRefused
_REFUSALS = {401: JenkinsAuthError, 403: JenkinsAuthError, 404: JenkinsNotFound}


@contextmanager
def jenkins_errors(action: str, url: str, token: str | None = None,
                   also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn python-jenkins/requests failures into one of the typed Jenkins errors.

    ``action`` says what was being done ("triggering job X"); ``token`` is
    scrubbed from the message, whatever the server or library put in it.
    Exceptions of the types ``also`` (another library's, e.g. JJB's) become a
    plain JenkinsError with their first line.
    """
    status = None
    try:
        yield
    except jenkins.TimeoutException:
        kind, detail = JenkinsTimeout, "timed out waiting for an answer"
    except requests.exceptions.ConnectionError as err:
        kind, detail = JenkinsUnreachable, f"cannot connect ({type(err).__name__})"
    except requests.exceptions.HTTPError as err:
        status = err.response.status_code
        kind, detail = JenkinsRefused, f"HTTP {status} {err.response.reason}"
    except jenkins.NotFoundException:
        status = 404
        kind, detail = JenkinsRefused, f"HTTP 404 ({_HINTS[404]})"
    except jenkins.JenkinsException as err:   # python-jenkins puts 401/403/500 in the text
        text = first_line(err)
        match = _STATUS.search(text)
        status = int(match.group(1)) if match else None
        kind, detail = (JenkinsRefused, f"HTTP {status} ({_HINTS[status]})") \
            if status in _HINTS else (JenkinsError, text)
    except also as err:
        kind, detail = JenkinsError, first_line(err)
    else:
        return
    message = _scrub(f"Jenkins {url}: {action} failed: {detail}", token)
    if kind is JenkinsRefused:
        raise _REFUSALS.get(status, JenkinsRefused)(message, status)
    raise kind(message)


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text
