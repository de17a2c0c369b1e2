"""Every error the library raises on purpose.

The library never prints: it raises one of these, and only the CLI edge
(:mod:`ecaljenkins.cli.common`) turns them into a one-line message and an exit
status. Input problems exit 2, problems of the servers we talk to exit 1, so a
cron wrapper can tell "fix your command" from "try again later".
"""


class EcalError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1


# --- bad input: the user can fix the command (exit 2) -----------------------

class InputError(EcalError):
    """Malformed value, unknown or duplicate name, bad usage."""

    exit_code = 2


class InvalidName(InputError):
    """A campaign, run type or task name that could not be quoted safely."""


class NotFound(InputError):
    """An unknown campaign, run type, task, run or era."""


class AlreadyExists(InputError):
    """Creating something whose name is taken."""


class DatabaseNotFound(NotFound):
    """The ``--db`` database does not exist on the server (a wrong name: exit 2)."""


class TooManyRuns(InputError):
    """An injection larger than the guard allows, without confirmation."""


class ConfigError(InputError):
    """A broken catalogue/workflow file or a missing/wrong environment variable."""


class CondorUnavailable(ConfigError):
    """This machine lacks what a private HTCondor pool needs (root, a Debian mirror,
    mmdebstrap, the Python bindings): the message names what is missing."""


# --- the servers failed: retry later or call an admin (exit 1) --------------

class ServerError(EcalError):
    """A server we depend on failed."""


class InfluxError(ServerError):
    """InfluxDB answered with an error we do not classify further."""


class InfluxUnreachable(InfluxError):
    """No answer from InfluxDB (connection refused, timeout)."""


class InfluxAuthError(InfluxError):
    """Wrong InfluxDB credentials, or a privilege the user lacks."""


class CondorError(ServerError):
    """HTCondor failed: a pool that does not start, a root filesystem that does not build."""


class RegistryError(ServerError):
    """The run registry (OMS) could not be read."""


#: exit status of a command that worked but needs a human (``schedule`` skipped for a lease
#: held too long): the Jenkins build turns unstable instead of failed
NEEDS_ATTENTION = 3


class JobNameCollision(InputError):
    """Two (database, campaign, task) would share one Jenkins job name."""


class ScmError(ServerError):
    """A workflow's git repository could not be asked for its commit (``git ls-remote``)."""


class JenkinsError(ServerError):
    """Jenkins failed a request in a way not classified below (an odd answer)."""


class JenkinsTimeout(JenkinsError):
    """Jenkins did not answer in time: the request may still have been carried out.

    A trigger that times out may have queued a build, so the scheduler keeps its
    intent and looks for the build on the next cycle instead of rolling back.
    """


class JenkinsUnreachable(JenkinsError):
    """No connection to Jenkins: the request was not carried out."""


class JenkinsRefused(JenkinsError):
    """Jenkins answered with an HTTP error status (``status``); the subclasses name
    the statuses a caller treats apart."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class JenkinsAuthError(JenkinsRefused):
    """401 or 403: a wrong ``JENKINS_USER``/``JENKINS_API_TOKEN``, or a missing permission."""


class JenkinsNotFound(JenkinsRefused):
    """404: no such job, queue item or build."""


# --- the demo (exit 1) -------------------------------------------------------

class DemoError(EcalError):
    """A step of ``make demo`` failed: a command's exit status, or a campaign that
    never settles (the message says which step)."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none):
    what a one-line message may quote of a library's error."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
