"""The InfluxDB 1.x HTTP API: InfluxQL on ``/query``, line protocol on ``/write``.

This API is served by every InfluxDB generation (natively by 1.x, through the
v1 compatibility endpoints by 2.x and 3.x) and is what Grafana and the existing
CMS databases use. Everything goes through one ``requests.Session``; credentials
are read from the environment and sent in a header, never in a URL, so they can
not leak into server logs, our logs or error messages.
"""

from __future__ import annotations

import gc
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import requests

from .errors import (ConfigError, DatabaseNotFound, InfluxAuthError, InfluxError,
                     InfluxUnreachable)
from .names import check_db, check_url
from .schema import Point, lowerings
from .settings import Settings

DEFAULT_URL = Settings.influxdb_url
#: Lines per write request: InfluxDB's recommended batch is 5,000-10,000 points,
#: but the server takes far larger bodies and every request costs a round trip.
WRITE_BATCH = 50_000
#: Rows per chunk of a chunked query. Chunked queries are not cut by the server's
#: ``max-row-limit``, so a whole campaign is always read completely; each chunk
#: is decoded as it arrives, so only one is ever held as raw JSON.
QUERY_CHUNK = 10_000
#: bytes read from the socket at a time while a query's answer streams in
READ_SIZE = 1 << 18


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold back Python's cycle collector while a large query result is built.

    Reading a campaign creates hundreds of thousands of small lists and tuples
    that never form reference cycles, yet each time enough of them have been
    created the collector scans everything still alive: at 10,000 runs x 20
    tasks this was more than half the CPU time of a scheduler cycle (see
    docs/performance.md). Without cycles to find, pausing it frees nothing
    later; reference counting still frees every object the moment it is dropped.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
        self.url = check_url(url, "the InfluxDB URL", "ECAL_INFLUXDB_USER and "
                             "ECAL_INFLUXDB_PASSWORD (or ECAL_INFLUXDB_TOKEN)").rstrip("/")
        self.user = user
        #: who the server sees, for error messages (never the secret itself)
        self.identity = ("the token of ECAL_INFLUXDB_TOKEN" if token
                         else f"user {user!r}" if user else "no credentials")
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
        #: the server's clock (unix seconds, whole) when it answered the last query,
        #: from its ``Date`` header; None when it sent none
        self.server_time: float | None = None

    @classmethod
    def from_env(cls, db: str | None = None, env=None, **kwargs) -> "Influx":
        """A client from the ``ECAL_INFLUXDB_*`` variables of ``env`` (default: os.environ)."""
        return cls.from_settings(Settings.from_env(env), db, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, db: str | None = None, **kwargs) -> "Influx":
        """A client from ``settings``; ``db`` (``--db``) wins over ``ECAL_INFLUXDB_DB``."""
        db = db or settings.influxdb_db
        if not db:
            raise ConfigError("no database: give --db or set ECAL_INFLUXDB_DB")
        timeout = settings.influxdb_timeout_seconds
        if timeout is not None and "timeout" not in kwargs:
            # a hung server must not hold a cron job for the default minute per request
            kwargs["timeout"] = timeout
        return cls(db, settings.influxdb_url, user=settings.influxdb_user,
                   password=settings.influxdb_password, token=settings.influxdb_token, **kwargs)

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
            raise InfluxAuthError(f"InfluxDB authentication failed for {self.identity} at "
                                  f"{self.url}")
        if resp.status_code == 403:
            # match the server's phrases, not "write" alone: it is in the user name "writer"
            who = self.identity.replace("'", "")
            if "authorized to write" in message:
                message = f"{who} is not authorized to write to database {self.db}"
            elif "requires READ" in message:
                message = (f"{who} is not authorized to read database {self.db} "
                           "(no READ privilege, or no such database)")
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
        merged: dict[tuple, Series] = {}
        with gc_paused():
            for statement, series in self._chunks(q, db):
                key = (statement, series.name, tuple(sorted(series.tags.items())))
                if key in merged:
                    merged[key].values.extend(series.values)
                else:
                    merged[key] = series
        return list(merged.values())

    def stream(self, q: str) -> Iterator[Series]:
        """The series of one SELECT, piece by piece as InfluxDB sends them.

        A series longer than a chunk comes in several consecutive pieces with the
        same name and tags. A caller that turns each piece into its own objects
        as it comes (the scheduler reading a whole campaign) never holds more
        than one chunk of raw rows, where :meth:`query` holds all of them.
        """
        for _statement, series in self._chunks(q, True):
            yield series

    def _chunks(self, q: str, db: bool) -> Iterator[tuple[int, Series]]:
        """(statement id, piece of a series) as each chunk of the answer arrives."""
        params = {"q": q, "epoch": "ns", "chunked": "true", "chunk_size": QUERY_CHUNK}
        if db:
            params["db"] = self.db
        head = q.lstrip().split(None, 1)[0].upper() if q.strip() else ""
        method = "GET" if head in ("SELECT", "SHOW") else "POST"
        self.stats["queries"] += 1
        with self._request(method, "/query", params=params, stream=True) as resp:
            self._check(resp)
            self.server_time = _date(resp)
            try:
                # split on b"\n" only: a text field may hold U+0085 (NEL), which
                # InfluxDB's JSON leaves unescaped and str.splitlines() splits on
                for line in resp.iter_lines(chunk_size=READ_SIZE, delimiter=b"\n"):
                    if line.strip():
                        yield from self._parse_chunk(line)
            except requests.RequestException as exc:
                raise InfluxUnreachable(f"InfluxDB at {self.url} broke off its answer "
                                        f"({type(exc).__name__})") from None

    def _parse_chunk(self, line: bytes) -> Iterator[tuple[int, Series]]:
        try:
            doc = json.loads(line)
        except ValueError:   # not InfluxDB answering (a proxy's page, a truncated body)
            raise InfluxError(f"InfluxDB at {self.url} sent an answer that is not "
                              "InfluxDB's JSON") from None
        if not isinstance(doc, dict):
            raise InfluxError(f"InfluxDB at {self.url} sent unexpected JSON")
        if "error" in doc:
            self._raise_statement_error(doc["error"])
        for result in doc.get("results", ()):
            if "error" in result:
                self._raise_statement_error(result["error"])
            for s in result.get("series", ()):
                yield result.get("statement_id", 0), Series(
                    s.get("name", ""), s.get("tags") or {}, s.get("columns", []),
                    s.get("values", []))

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

    def write(self, points: Iterable, batch: int | None = None,
              progress: Callable[[int, int], None] | None = None, *,
              lower_marks: bool = True) -> int:
        """Write points (:class:`ecaljenkins.schema.Point`, or anything with a public
        ``to_line_protocol()``, or line-protocol strings).

        Points go in batches of ``batch`` lines (default :data:`WRITE_BATCH`, read
        at each call) per request; returns the number of requests made. A point
        without fields encodes to nothing and is left out. ``progress(written,
        total)`` is called after each request (``points`` must then be a sequence).

        Each request that carries ``run``/``runinfo`` (or run type, workflow)
        points also carries the ``lowered`` points of :func:`schema.lowerings`,
        so the campaign's low-water mark comes down to the oldest run written
        (docs/schema.md). Only the scheduler passes ``lower_marks=False``, for
        the rows it has just read, which are above its mark. Line-protocol
        strings are sent as they are, without lowering: write Points.
        """
        batch = batch or WRITE_BATCH
        total = len(points) if progress else 0
        requests_made = 0
        lines: list[str] = []
        keyed: list = []   # the Points of this batch: their lowerings go with it
        for point in points:
            line = point if isinstance(point, str) else point.to_line_protocol()
            if not line:
                continue
            lines.append(line)
            if lower_marks and isinstance(point, Point):
                keyed.append(point)
            if len(lines) >= batch:
                self._write_lines(lines + _lowering_lines(keyed))
                requests_made += 1
                lines, keyed = [], []
                if progress:
                    progress(requests_made * batch, total)
        if lines:
            self._write_lines(lines + _lowering_lines(keyed))
            requests_made += 1
            if progress:
                progress(total, total)
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


def _lowering_lines(points: list) -> list[str]:
    return [point.to_line_protocol() for point in lowerings(points)]


def _date(resp: requests.Response) -> float | None:
    """The server's ``Date`` header as unix seconds (None without one)."""
    from email.utils import parsedate_to_datetime
    try:
        return parsedate_to_datetime(resp.headers["Date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _server_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:   # a proxy's HTML page, or nothing: its first line at most
        body = None
    if isinstance(body, dict) and str(body.get("error", "")).strip():
        return str(body["error"]).strip()
    lines = (resp.text or "").strip().splitlines()
    return lines[0][:200] if lines else (resp.reason or "")
