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
_counter = itertools.count()


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
def client(env, db):
    """An :class:`Influx` client of the writer on ``db``."""
    return Influx.from_env(db)


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
        return CLIResult(proc.returncode, proc.stdout, proc.stderr)
    return run
