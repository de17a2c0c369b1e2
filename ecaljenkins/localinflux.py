"""A private ``influxd`` on a free loopback port: the embedded default.

``make demo``, the benchmark and the test suite all need a real InfluxDB
server without touching the machine's own one: this starts Debian's
``influxd`` with a temporary data directory, authentication enabled and an
admin user, and stops it (removing the directory) on exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from .errors import ConfigError, InfluxUnreachable
from .settings import Settings, current


def find_influxd(settings: Settings | None = None) -> str:
    """Path of the ``influxd`` binary (``ECAL_TEST_INFLUXD`` overrides PATH)."""
    path = current(settings).test_influxd or shutil.which("influxd")
    if not path or not os.access(path, os.X_OK):
        raise ConfigError("no influxd binary: install Debian's 'influxdb' package "
                          "(apt-get install influxdb) or set ECAL_TEST_INFLUXD")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalInfluxd:
    """Start/stop a private influxd. Use as a context manager.

    ``url``, ``admin`` and ``admin_password`` describe the running server;
    ``env(user, password, db)`` gives the ``ECAL_INFLUXDB_*`` variables for a user.
    """

    def __init__(self, directory: str | None = None, admin: str = "admin",
                 admin_password: str = "admin-secret", quiet: bool = True):
        self.binary = find_influxd()
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="ecal-influxd-"))
        self.admin = admin
        self.admin_password = admin_password
        self.quiet = quiet
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, user: str | None = None, password: str | None = None,
            db: str | None = None) -> dict:
        env = {"ECAL_INFLUXDB_URL": self.url,
               "ECAL_INFLUXDB_USER": user or self.admin,
               "ECAL_INFLUXDB_PASSWORD": password if user else self.admin_password}
        if db:
            env["ECAL_INFLUXDB_DB"] = db
        return env

    def settings(self, user: str | None = None, password: str | None = None,
                 db: str | None = None) -> Settings:
        """The :class:`Settings` of a user of this server (what :meth:`env` sets)."""
        return Settings.from_env(self.env(user, password, db))

    def start(self) -> "LocalInfluxd":
        """Start the server (again, keeping its data, after :meth:`kill`)."""
        first = self.port == 0
        if first:
            self.port = free_port()
            self._rpc_port = free_port()
        env = dict(os.environ,
                   INFLUXDB_REPORTING_DISABLED="true",
                   INFLUXDB_BIND_ADDRESS=f"127.0.0.1:{self._rpc_port}",
                   INFLUXDB_META_DIR=str(self.dir / "meta"),
                   INFLUXDB_DATA_DIR=str(self.dir / "data"),
                   INFLUXDB_DATA_WAL_DIR=str(self.dir / "wal"),
                   INFLUXDB_DATA_QUERY_LOG_ENABLED="false",
                   INFLUXDB_DATA_MAX_SERIES_PER_DATABASE="0",
                   INFLUXDB_DATA_MAX_VALUES_PER_TAG="0",
                   INFLUXDB_MONITOR_STORE_ENABLED="false",
                   INFLUXDB_HTTP_BIND_ADDRESS=f"127.0.0.1:{self.port}",
                   INFLUXDB_HTTP_AUTH_ENABLED="true",
                   INFLUXDB_HTTP_LOG_ENABLED="false",
                   INFLUXDB_HTTP_MAX_BODY_SIZE="0",
                   INFLUXDB_LOGGING_LEVEL="warn")
        log = open(self.dir / "influxd.log", "ab")
        self.proc = subprocess.Popen([self.binary, "run", "-config", "/dev/null"],
                                     env=env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self._wait_ready()
        if first:
            self.query(f"CREATE USER {self.admin} WITH PASSWORD "
                       f"'{self.admin_password}' WITH ALL PRIVILEGES", auth=False)
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise InfluxUnreachable(f"influxd exited at start; see {self.dir}/influxd.log")
            try:
                if requests.get(self.url + "/ping", timeout=1).status_code == 204:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise InfluxUnreachable(f"influxd did not start within {timeout:g}s")

    def query(self, q: str, auth: bool = True) -> dict:
        """Run an admin statement (CREATE DATABASE, CREATE USER, GRANT...)."""
        # in the body, not the URL: statements carry passwords (CREATE USER)
        resp = requests.post(self.url + "/query", data={"q": q},
                             auth=(self.admin, self.admin_password) if auth else None,
                             timeout=30)
        resp.raise_for_status()
        body = resp.json()
        for result in body.get("results", ()):
            if "error" in result:
                raise RuntimeError(result["error"])
        return body

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def create_user(self, user: str, password: str, db: str | None = None,
                    privilege: str = "ALL") -> None:
        """Create a non-admin user, granted ``privilege`` (READ/WRITE/ALL) on ``db``."""
        self.query(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'")
        if db:
            self.query(f'GRANT {privilege} ON "{db}" TO "{user}"')

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), keeping its data, to test faults."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalInfluxd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
