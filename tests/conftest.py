"""Shared fixtures: a real influxd for the whole session, a fresh database per test.

The server runs with authentication on and three users, as in production:
``admin`` (all privileges), ``writer`` (ALL on each test database) and
``reader`` (READ only on each test database).
"""

import itertools
import os
import subprocess
import sys

import pytest

from ecaljenkins.influx import Influx
from ecaljenkins.localinflux import LocalInfluxd

WRITER = ("writer", "writer-Secret-pw1")
READER = ("reader", "reader-Secret-pw2")
#: every credential of the suite has this in it (passwords here, the Jenkins tokens in
#: jenkins_fake.py and test_jobs.py, the OMS client secret in test_registry.py) ...
SECRET_MARK = "-Secret-"
#: ... except the OMS access token, which has the shape CERN SSO gives it
SECRETS = (SECRET_MARK, "eyJhbGciOi.access-Token-7c1d")
_counter = itertools.count()


# --- no credential in any output of the suite -----------------------------------------
#
# Every test's captured stdout/stderr, every output of the commands the tests run as
# subprocesses (record_output), and every file written under the session's temporary
# directory (rendered jobs, reports, logs) is searched for the test credentials; one
# found fails the session, naming where. jenkins_jobs.ini files are left out: they
# are credential files the tests write on purpose, as an operator would.

_leaks: list[str] = []


def _secrets_in(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def record_output(*texts) -> None:
    """Check the output of a subprocess a test ran (the current test is named)."""
    where = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
    for text in texts:
        if text and _secrets_in(text):
            _leaks.append(f"{where}: subprocess output: {text.strip()[:200]!r}")


def run_recorded(args, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(args, **kwargs)`` with its output captured as text and checked
    by :func:`record_output`: how the tests run a command."""
    proc = subprocess.run(args, capture_output=True, text=True, **kwargs)
    record_output(proc.stdout, proc.stderr)
    return proc


def pytest_runtest_logreport(report):
    for name, text in (("stdout", report.capstdout), ("stderr", report.capstderr),
                       ("log", report.caplog)):
        if _secrets_in(text):
            _leaks.append(f"{report.nodeid} ({report.when}): captured {name}")


def _scan_files(root) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix != ".ini":
            try:
                text = path.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if _secrets_in(text):
                _leaks.append(f"file {path}")


def pytest_sessionfinish(session, exitstatus):
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is not None and basetemp.exists():
        _scan_files(basetemp)
    if _leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["credentials found in outputs of the suite:"] + _leaks
        if reporter:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def influxd():
    with LocalInfluxd(admin_password="admin-Secret-pw0") as server:
        server.create_user(*WRITER)
        server.create_user(*READER)
        yield server


@pytest.fixture
def db(influxd):
    """Name of a fresh database the writer may write and the reader may read."""
    name = f"ecal_test_{os.getpid()}_{next(_counter)}"
    influxd.create_database(name)
    influxd.query(f'GRANT ALL ON "{name}" TO "{WRITER[0]}"')
    influxd.query(f'GRANT READ ON "{name}" TO "{READER[0]}"')
    return name


@pytest.fixture
def env(influxd, monkeypatch, db, tmp_path):
    """Environment of the writer on ``db`` (also returned as a dict); jobs are
    rendered under the test's temporary directory."""
    values = influxd.env(*WRITER, db=db)
    values["ECAL_JOBS_DIR"] = str(tmp_path / "jobs")
    for key in ("ECAL_INFLUXDB_TOKEN", "ECAL_RUN_REGISTRY", "ECAL_WORKFLOWS",
                "JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def client(env, influxd, db):
    """An :class:`Influx` client of the writer on ``db`` (from settings, not the environment)."""
    return Influx.from_settings(influxd.settings(*WRITER, db=db))


@pytest.fixture
def reader_env(influxd, env, monkeypatch, db):
    """Switch the environment to the read-only user."""
    values = influxd.env(*READER, db=db)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def dump(influxd, db):
    """Every point of every measurement of ``db``: to check nothing changed."""
    client = Influx(db, influxd.url, user=influxd.admin, password=influxd.admin_password)
    out = {}
    for series in client.query("SHOW MEASUREMENTS"):
        for (name,) in series.values:
            out[name] = sorted(map(repr, client.select(f'SELECT * FROM "{name}"')))
    return out


class CLIResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CLIResult(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def run_cli(env):
    """Run a console script in a subprocess, as a user would, with the test env."""
    def run(script, *args, extra_env=None, input=None, timeout=120):
        module = {"ecalrunctrl.py": "ecaljenkins.cli.runctrl",
                  "ecalautomation.py": "ecaljenkins.cli.automation"}[script]
        full_env = dict(os.environ, **(extra_env or {}))
        proc = subprocess.run([sys.executable, "-m", module, *args], env=full_env,
                              capture_output=True, text=True, input=input,
                              timeout=timeout)
        record_output(proc.stdout, proc.stderr)
        return CLIResult(proc.returncode, proc.stdout, proc.stderr)
    return run
