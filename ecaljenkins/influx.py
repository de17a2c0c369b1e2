"""The InfluxDB 1.x HTTP API: InfluxQL on ``/query``, line protocol on ``/write``.

This API is served by every InfluxDB generation (natively by 1.x, through the
v1 compatibility endpoints by 2.x and 3.x) and is what Grafana and the existing
CMS databases use. Everything goes through one ``requests.Session``; credentials
are read from the environment and sent in a header, never in a URL, so they can
not leak into server logs, our logs or error messages.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import requests

from .errors import (DatabaseNotFound, InfluxAuthError, InfluxError,
                     InfluxUnreachable)
from .names import check_db

DEFAULT_URL = "http://localhost:8086"
#: Lines per write request: InfluxDB's recommended batch is 5,000-10,000 points,
#: but the server takes far larger bodies and every request costs a round trip.
WRITE_BATCH = 50_000
#: Rows per chunk of a chunked query. Chunked queries are not cut by the server's
#: ``max-row-limit``, so a whole campaign is always read completely.
QUERY_CHUNK = 100_000


@dataclass
class Series:
    """One series of a query result: its tags and rows (a list per row)."""

    name: str
    tags: dict
    columns: list
    values: list = field(default_factory=list)

    def dicts(self) -> Iterator[dict]:
        """Rows as dictionaries, tags included."""
        cols = self.columns
        for row in self.values:
            item = dict(self.tags)
            item.update(zip(cols, row))
            yield item


class Influx:
    """A client of one database.

    ``stats`` counts the requests made, so benchmarks and tests can check that
    reading a campaign costs a constant number of queries.
    """

    def __init__(self, db: str, url: str = DEFAULT_URL, *, user: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 60.0, retry_seconds: float = 0.0):
        self.db = check_db(db)
        self.url = url.rstrip("/")
        self.user = user
        self.timeout = timeout
        #: keep retrying an unreachable/5xx server for this long (jobs reporting
        #: from a build set it, so a short outage does not fail a finished build)
        self.retry_seconds = retry_seconds
        self.session = requests.Session()
        self.session.trust_env = False
        if token:
            self.session.headers["Authorization"] = f"Token {token}"
        elif user:
            self.session.auth = (user, password or "")
        self.stats = {"queries": 0, "writes": 0, "points": 0}

    @classmethod
    def from_env(cls, db: str | None = None, env=None, **kwargs) -> "Influx":
        """Build a client from ``ECAL_INFLUXDB_*`` variables; ``db`` wins over the env."""
        env = os.environ if env is None else env
        db = db or env.get("ECAL_INFLUXDB_DB")
        if not db:
            from .errors import ConfigError
            raise ConfigError("no database: give --db or set ECAL_INFLUXDB_DB")
        return cls(db, env.get("ECAL_INFLUXDB_URL") or DEFAULT_URL,
                   user=env.get("ECAL_INFLUXDB_USER"),
                   password=env.get("ECAL_INFLUXDB_PASSWORD"),
                   token=env.get("ECAL_INFLUXDB_TOKEN"), **kwargs)

    # --- transport -------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.5
        while True:
            try:
                resp = self.session.request(method, self.url + path,
                                            timeout=self.timeout, **kwargs)
                if resp.status_code < 500:
                    return resp
                failure = InfluxError(f"InfluxDB at {self.url} failed: HTTP "
                                      f"{resp.status_code} {_server_message(resp)}")
            except requests.Timeout:
                failure = InfluxUnreachable(f"InfluxDB at {self.url} did not answer "
                                            f"within {self.timeout:g}s")
            except requests.RequestException as exc:
                failure = InfluxUnreachable(f"cannot reach InfluxDB at {self.url} "
                                            f"({type(exc).__name__})")
            if time.monotonic() + delay > deadline:
                raise failure
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _check(self, resp: requests.Response) -> None:
        if resp.status_code < 300:
            return
        message = _server_message(resp)
        if resp.status_code == 401:
            who = f"user {self.user!r}" if self.user else "these credentials"
            raise InfluxAuthError(f"InfluxDB authentication failed for {who} at {self.url}")
        if resp.status_code == 403:
            if "write" in message:
                message = (f"user {self.user or '(token)'} is not authorized to write to "
                           f"database {self.db}")
            raise InfluxAuthError(message)
        if resp.status_code == 404 and "database not found" in message:
            raise DatabaseNotFound(f"database {self.db!r} does not exist on {self.url}")
        raise InfluxError(f"InfluxDB at {self.url} refused the request: HTTP "
                          f"{resp.status_code} {message}")

    # --- queries ---------------------------------------------------------------

    def query(self, q: str, *, db: bool = True) -> list[Series]:
        """Run InfluxQL (one or more ``;``-separated statements); return all series.

        Reads use GET, anything that changes the server uses POST, as InfluxDB
        requires. Results are chunked, so no server row limit truncates them.
        """
        params = {"q": q, "epoch": "ns", "chunked": "true", "chunk_size": QUERY_CHUNK}
        if db:
            params["db"] = self.db
        head = q.lstrip().split(None, 1)[0].upper() if q.strip() else ""
        method = "GET" if head in ("SELECT", "SHOW") else "POST"
        self.stats["queries"] += 1
        resp = self._request(method, "/query", params=params)
        self._check(resp)
        return self._parse(resp.text)

    def _parse(self, text: str) -> list[Series]:
        merged: dict[tuple, Series] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            if "error" in doc:
                self._raise_statement_error(doc["error"])
            for result in doc.get("results", ()):
                if "error" in result:
                    self._raise_statement_error(result["error"])
                for s in result.get("series", ()):
                    tags = s.get("tags") or {}
                    key = (result.get("statement_id", 0), s.get("name"),
                           tuple(sorted(tags.items())))
                    if key in merged:
                        merged[key].values.extend(s.get("values", ()))
                    else:
                        merged[key] = Series(s.get("name", ""), tags, s["columns"],
                                             list(s.get("values", ())))
        return list(merged.values())

    def _raise_statement_error(self, message: str):
        if message.startswith("database not found"):
            raise DatabaseNotFound(f"database {self.db!r} does not exist on {self.url}")
        if "not authorized" in message or "authoriz" in message:
            raise InfluxAuthError(f"InfluxDB refused: {message}")
        raise InfluxError(f"InfluxDB query failed: {message}")

    def select(self, q: str) -> list[dict]:
        """Rows of every series of a SELECT as dictionaries (tags included)."""
        return [row for s in self.query(q) for row in s.dicts()]

    # --- writes ----------------------------------------------------------------

    def write(self, points: Iterable, batch: int = WRITE_BATCH) -> int:
        """Write points (``influxdb_client.Point`` or line-protocol strings).

        Points go in batches of ``batch`` lines per request; returns the number
        of requests made.
        """
        requests_made = 0
        lines: list[str] = []
        for point in points:
            lines.append(point if isinstance(point, str) else point.to_line_protocol())
            if len(lines) >= batch:
                self._write_lines(lines)
                requests_made += 1
                lines = []
        if lines:
            self._write_lines(lines)
            requests_made += 1
        return requests_made

    def _write_lines(self, lines: list[str]) -> None:
        body = "\n".join(lines).encode()
        self.stats["writes"] += 1
        self.stats["points"] += len(lines)
        resp = self._request("POST", "/write", params={"db": self.db, "precision": "ns"},
                             data=body)
        self._check(resp)

    def ping(self) -> None:
        """Raise unless the server answers."""
        self._check(self._request("GET", "/ping"))


def _server_message(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("error", "")).strip() or resp.reason
    except ValueError:
        return (resp.text or resp.reason or "").strip().splitlines()[0][:200] if (
            resp.text or resp.reason) else ""
