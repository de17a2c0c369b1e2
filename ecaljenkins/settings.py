"""The configuration of ecaljenkins, read from the environment in one place.

Two different things come from the environment, and each has its class here;
no other module of the package reads a variable:

* :class:`Settings`: how an operator configures ecaljenkins (``ECAL_*``,
  ``JENKINS_*``). The command-line edge builds it once per command
  (:meth:`Settings.from_env`) and passes it down; a Python user builds one
  directly, ``Settings(influxdb_url=..., jenkins_url=...)``, without touching
  ``os.environ``. Library calls that take ``settings=None`` read the process
  environment then, through :meth:`Settings.from_env` as well.
* :class:`BuildEnv`: what Jenkins (``BUILD_NUMBER``, ``BUILD_URL``, the job's
  parameters ``DB``, ``CAMPAIGN``, ``TASK``, ``RUN_NUMBER``/``RUNS``) or the
  build wrapper (``ecalautomation.py run``) tells a build about itself. It is the
  contract of a build, not configuration: only the build side reads it.

Values are checked where they are used, not when read: the typed properties
(:attr:`Settings.influxdb_timeout_seconds`, :meth:`Settings.jenkins_account`, ...)
raise :class:`~ecaljenkins.errors.ConfigError`, so ``schedule --dry-run`` runs
without any ``JENKINS_*`` and a command that talks to no build never trips over
``ECAL_REPORT_RETRY``. The one check made at reading time is that two spellings
of one variable (a name and its alias) do not disagree.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Mapping, NamedTuple

from .errors import ConfigError
from .names import check_url, parse_int

#: seconds a build keeps retrying an unreachable InfluxDB (``ECAL_REPORT_RETRY`` overrides)
REPORT_RETRY_SECONDS = 300.0
#: the variables naming the Jenkins server and the account used to drive it
JENKINS_VARIABLES = ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN")
#: set by the build wrapper in its command's environment: it reports the build itself
WRAPPER_ENV = "ECAL_BUILD_WRAPPER"
#: where a Handler under the wrapper writes why it failed (the wrapper records it)
REASON_ENV = "ECAL_BUILD_REASON"


def _var(*names: str, default: str | None = None, secret: bool = False):
    """A setting read from ``names[0]`` (or one of its aliases, ``names[1:]``)."""
    return field(default=default, repr=not secret, metadata={"env": names})


class JenkinsAccount(NamedTuple):
    """The Jenkins server and the account that drives it (all three required)."""

    url: str
    user: str
    token: str


@dataclass(frozen=True)
class Settings:
    """Everything an operator configures, from the environment (empty = unset).

    | variable | meaning |
    |---|---|
    | `ECAL_INFLUXDB_URL` | InfluxDB server (default `http://localhost:8086`) |
    | `ECAL_INFLUXDB_USER`, `ECAL_INFLUXDB_PASSWORD` | InfluxDB credentials (HTTP basic auth header); `ECAL_INFLUXDB_PWD`, the name of `ecalautoctrl`'s documentation, is accepted for the password (both set to different values is an error) |
    | `ECAL_INFLUXDB_TOKEN` | instead of user/password: a token (InfluxDB 2.x/3.x v1 compatibility API) |
    | `ECAL_INFLUXDB_DB` | database when `--db` is not given |
    | `ECAL_INFLUXDB_TIMEOUT` | seconds to wait for an answer of InfluxDB (default 60) |
    | `ECAL_REPORT_RETRY` | seconds a build (`run`, `jobctrl`) keeps retrying an unreachable or failing InfluxDB, with back-off, before giving up (default 300) |
    | `ECAL_RUN_REGISTRY` | run registry: a `.csv`/`.json` catalogue path, `oms`, or `bundled` (default: the bundled catalogue, except for the runs a prompt campaign fetches, where it must be chosen) |
    | `ECAL_OMS_URL`, `ECAL_OMS_CLIENT_ID`, `ECAL_OMS_CLIENT_SECRET` | CMS OMS API and its CERN SSO client credentials |
    | `ECAL_OMS_TOKEN_URL` | the CERN SSO token endpoint the OMS client credentials are exchanged at (default CERN's API-access endpoint, `https://auth.cern.ch/auth/realms/cern/api-access/token`) |
    | `ECAL_OMS_AUDIENCE` | the audience the OMS token is asked for: the SSO application of the OMS instance (default `cmsoms-prod`, the production OMS) |
    | `JENKINS_URL`, `JENKINS_USER`, `JENKINS_API_TOKEN` | the Jenkins server and the account (API token) that pushes jobs and triggers builds; without `JENKINS_URL`, campaign commands only write the job files |
    | `ECAL_WORKFLOWS` | the workflow catalogue (default: the one shipped in the package, `jobs/workflows.yaml` of a checkout) |
    | `ECAL_JOBS_DIR` | where the Jenkins jobs are rendered (default `./jobs`) |
    | `ECAL_TEMPLATES` | the jinja2 templates (default: the ones shipped in the package, `templates/` of a checkout) |
    | `ECAL_LOG_DIR` | where `run` and the local executor write build logs (default `./logs`) |
    | `ECAL_VENV_ROOT` | on a Jenkins agent: where the kept venvs of ecaljenkins are, one per version (default `$HOME/.cache/ecaljenkins`; read by `ecaljenkins/data/install-venv.sh`, which the Jenkinsfile and every generated job run) |
    | `ECAL_WHEELHOUSE` | on a Jenkins agent: a folder of ecaljenkins wheels pip looks in besides its index (the Jenkinsfile's `WHEELHOUSE`; read by `install-venv.sh`) |
    | `ECAL_TEST_INFLUXD` | the `influxd` binary of the local server (`make demo`, the tests; default: `influxd` on the PATH) |
    | `ECAL_CONDOR_PYTHON` | the Python interpreter that runs the build wrapper in HTCondor jobs, with ecaljenkins importable on the execute nodes (default: the scheduler's own, for nodes sharing its installation) |
    | `ECAL_CONDOR_ROOTFS` | the Debian 13 root filesystem of the private HTCondor pool of the tests (`make htcondor`; default `/var/cache/ecaljenkins/condor-rootfs`) |
    | `ECAL_CONDOR_MIRROR` | the Debian mirror that root filesystem is built from (default: the one apt is configured with) |

    The README's table is this one (a test compares them). Secrets are left out
    of ``repr``. Each field holds the variable's text; typed values come from
    the properties, which check it.
    """

    influxdb_url: str = _var("ECAL_INFLUXDB_URL", default="http://localhost:8086")
    influxdb_user: str | None = _var("ECAL_INFLUXDB_USER")
    influxdb_password: str | None = _var("ECAL_INFLUXDB_PASSWORD", "ECAL_INFLUXDB_PWD",
                                           secret=True)
    influxdb_token: str | None = _var("ECAL_INFLUXDB_TOKEN", secret=True)
    influxdb_db: str | None = _var("ECAL_INFLUXDB_DB")
    influxdb_timeout: str | None = _var("ECAL_INFLUXDB_TIMEOUT")
    report_retry: str | None = _var("ECAL_REPORT_RETRY")
    run_registry: str | None = _var("ECAL_RUN_REGISTRY")
    oms_url: str | None = _var("ECAL_OMS_URL")
    oms_client_id: str | None = _var("ECAL_OMS_CLIENT_ID")
    oms_client_secret: str | None = _var("ECAL_OMS_CLIENT_SECRET", secret=True)
    oms_token_url: str | None = _var("ECAL_OMS_TOKEN_URL")
    oms_audience: str | None = _var("ECAL_OMS_AUDIENCE")
    jenkins_url: str | None = _var("JENKINS_URL")
    jenkins_user: str | None = _var("JENKINS_USER")
    jenkins_api_token: str | None = _var("JENKINS_API_TOKEN", secret=True)
    workflows: str | None = _var("ECAL_WORKFLOWS")
    jobs_dir: str | None = _var("ECAL_JOBS_DIR")
    templates: str | None = _var("ECAL_TEMPLATES")
    log_dir: str | None = _var("ECAL_LOG_DIR")
    venv_root: str | None = _var("ECAL_VENV_ROOT")
    wheelhouse: str | None = _var("ECAL_WHEELHOUSE")
    test_influxd: str | None = _var("ECAL_TEST_INFLUXD")
    condor_python: str | None = _var("ECAL_CONDOR_PYTHON")
    condor_rootfs: str | None = _var("ECAL_CONDOR_ROOTFS")
    condor_mirror: str | None = _var("ECAL_CONDOR_MIRROR")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read every variable of :func:`variables` from ``environ`` (default ``os.environ``).

        An empty variable counts as unset. A variable spelled two ways (an alias)
        may be set under either name, or both with the same value; two different
        values are a ConfigError, since either choice could be the wrong one.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            names = item.metadata["env"]
            found = {name: environ[name] for name in names if environ.get(name)}
            if len(set(found.values())) > 1:
                raise ConfigError(f"{' and '.join(found)} are both set, to different values: "
                                  "unset one of them")
            if found:
                values[item.name] = next(iter(found.values()))
        return cls(**values)

    # --- typed values, checked when used -------------------------------------

    @property
    def influxdb_timeout_seconds(self) -> float | None:
        """``ECAL_INFLUXDB_TIMEOUT`` (> 0), None when unset (the client's default)."""
        return _seconds(self.influxdb_timeout, "ECAL_INFLUXDB_TIMEOUT", None, zero=False)

    @property
    def report_retry_seconds(self) -> float:
        """``ECAL_REPORT_RETRY`` (>= 0), default 300: how long a build's report retries."""
        return _seconds(self.report_retry, "ECAL_REPORT_RETRY", REPORT_RETRY_SECONDS, zero=True)

    @property
    def jenkins_configured(self) -> bool:
        """Whether a Jenkins server is configured (``JENKINS_URL`` set)."""
        return bool(self.jenkins_url)

    def jenkins_account(self) -> JenkinsAccount:
        """``JENKINS_URL``/``JENKINS_USER``/``JENKINS_API_TOKEN``: all set, no secret in the URL."""
        account = (self.jenkins_url, self.jenkins_user, self.jenkins_api_token)
        missing = [name for name, value in zip(JENKINS_VARIABLES, account) if not value]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set: needed to talk to Jenkins")
        check_url(self.jenkins_url, "JENKINS_URL", "JENKINS_USER and JENKINS_API_TOKEN")
        return JenkinsAccount(*account)

    def oms_credentials(self) -> tuple[str, str]:
        """(client id, client secret) of the CERN SSO client the OMS registry uses."""
        for name, value in (("ECAL_OMS_CLIENT_ID", self.oms_client_id),
                            ("ECAL_OMS_CLIENT_SECRET", self.oms_client_secret)):
            if not value:
                raise ConfigError(f"{name} is not set: the OMS run registry needs the CERN SSO "
                                  "client credentials ECAL_OMS_CLIENT_ID and "
                                  "ECAL_OMS_CLIENT_SECRET")
        return self.oms_client_id, self.oms_client_secret


def variables() -> dict[str, tuple[str, ...]]:
    """{setting: (variable, aliases...)}, in the order of the documentation."""
    return {item.name: item.metadata["env"] for item in fields(Settings)}


def current(settings: Settings | None) -> Settings:
    """``settings``, or those of the process environment when None (library defaults)."""
    return Settings.from_env() if settings is None else settings


def _seconds(text: str | None, name: str, default: float | None, zero: bool) -> float | None:
    """A finite number of seconds (> 0, or >= 0 with ``zero``), or ``default`` if unset."""
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise ConfigError(f"invalid {name} {text!r}: expected seconds "
                          + (">= 0" if zero else "> 0"))
    return seconds


# --- the build's own environment -----------------------------------------------------

@dataclass(frozen=True)
class BuildEnv:
    """What a build is told about itself: the job's contract, not configuration.

    Jenkins sets ``BUILD_NUMBER`` and ``BUILD_URL``, and the generated job's
    parameters ``DB``, ``CAMPAIGN``, ``TASK`` and ``RUN_NUMBER`` (one run) or
    ``RUNS`` (a fill/era group). The wrapper ``ecalautomation.py run`` sets the
    same for the command it runs, plus ``ECAL_BUILD_WRAPPER`` (it reports the
    build itself, so a :class:`~ecaljenkins.handler.Handler` under it does not) and
    ``ECAL_BUILD_REASON``, the file where the Handler writes why it failed. A
    build that is an HTCondor job (executor ``htcondor``) has its sandbox in
    ``_CONDOR_SCRATCH_DIR``.
    Only the build side (``run``, ``jobctrl``, ``Handler``) reads these.
    """

    build_number: str | None = field(default=None, metadata={"env": ("BUILD_NUMBER",)})
    build_url: str | None = field(default=None, metadata={"env": ("BUILD_URL",)})
    db: str | None = field(default=None, metadata={"env": ("DB",)})
    campaign: str | None = field(default=None, metadata={"env": ("CAMPAIGN",)})
    task: str | None = field(default=None, metadata={"env": ("TASK",)})
    run_number: str | None = field(default=None, metadata={"env": ("RUN_NUMBER",)})
    runs: str | None = field(default=None, metadata={"env": ("RUNS",)})
    wrapped: bool = field(default=False, metadata={"env": (WRAPPER_ENV,)})
    reason_file: str | None = field(default=None, metadata={"env": (REASON_ENV,)})
    #: the sandbox of the HTCondor job the build runs in (HTCondor sets it)
    sandbox: str | None = field(default=None, metadata={"env": ("_CONDOR_SCRATCH_DIR",)})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "BuildEnv":
        environ = os.environ if environ is None else environ
        values = {item.name: environ.get(item.metadata["env"][0]) or None
                  for item in fields(cls)}
        values["wrapped"] = bool(values["wrapped"])
        return cls(**values)

    @property
    def build(self) -> int | None:
        """``BUILD_NUMBER`` as a number (None when unset); anything else is bad input."""
        if self.build_number is None:
            return None
        return parse_int(self.build_number, "build number", 1)

    @property
    def run_text(self) -> str | None:
        """The run(s) to process as the job passes them: ``RUNS``, else ``RUN_NUMBER``."""
        return self.runs or self.run_number
