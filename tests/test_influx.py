"""The InfluxDB client: chunked answers, odd text, the paused collector, line protocol."""

import gc
import random
import time
from decimal import Decimal

import pytest
from influxdb_client import Point

from ecaljenkins import schema
from ecaljenkins.errors import DatabaseNotFound, InfluxError
from ecaljenkins.influx import QUERY_CHUNK, Influx, gc_paused
from ecaljenkins.names import quote_str
from ecaljenkins.schema import Status


def test_answer_longer_than_a_chunk_is_read_whole_and_in_order(client):
    count = QUERY_CHUNK * 2 + 7
    client.write(f"m,campaign=c,task={'ab'[i % 2]} v={i}i {i + 1}" for i in range(count))
    (series_a, series_b) = client.query("SELECT v FROM m GROUP BY task")
    assert [s.tags for s in (series_a, series_b)] == [{"task": "a"}, {"task": "b"}]
    assert [row[1] for row in series_a.values] == list(range(0, count, 2))
    assert [row[1] for row in series_b.values] == list(range(1, count, 2))

    pieces = list(client.stream("SELECT v FROM m WHERE campaign = 'c'"))
    assert len(pieces) == 3 and {p.name for p in pieces} == {"m"}
    assert [row[0] for p in pieces for row in p.values] == list(range(1, count + 1))
    assert client.stats["queries"] == 2


def test_write_reports_progress_after_each_request(client):
    seen = []
    points = [f"m,campaign=c v={i}i {i + 1}" for i in range(5)]
    assert client.write(points, batch=2, progress=lambda *args: seen.append(args)) == 3
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert len(client.select("SELECT v FROM m")) == 5


def test_text_with_unusual_line_breaks_survives(client):
    text = "a\x85b\u2028c\u2029d\x1ce\nf\r\"g\\"
    client.write([schema.Point("m", (("campaign", "c"),), {"s": text}, 5)])
    assert client.select("SELECT s FROM m") == [{"time": 5, "s": text}]


def test_errors_inside_a_streamed_answer(client, influxd):
    with pytest.raises(InfluxError, match="undefined function"):
        client.query("SELECT nosuchfunction(v) FROM m")
    other = Influx("no_such_db", influxd.url, user=influxd.admin,
                   password=influxd.admin_password)
    with pytest.raises(DatabaseNotFound, match="no_such_db"):
        list(other.stream("SELECT * FROM m"))


def test_gc_paused_restores_the_collector():
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with gc_paused():
            assert not gc.isenabled()
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def _fuzzed_points(count: int):
    """(ours, influxdb-client's) pairs of the same point: every kind of name, tag and
    field value, escapes and edge cases."""
    rng = random.Random(6)
    alphabet = ["a", "Z", "0", " ", ",", "=", '"', "\\", "\n", "\t", "\r", "#", "é", "\x85"]

    def text(low=0):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, 6)))

    values = [0, -7, 2**62, 1.0, -0.5, 1e-7, 1e21, 3.14159, float("nan"), float("inf"),
              True, False, None, "", "done", Status.FAILED]
    for i in range(count):
        name = rng.choice(["run", "job", "m m", "a,b", text(1)])
        tags = {rng.choice(["campaign", "task", "", text(1)]):
                rng.choice([None, "", "x\\", text(), "c1-step2"])
                for _ in range(rng.randint(0, 3))}
        fields = {rng.choice(["status", "fill", "", text(1)]): rng.choice(values + [text()])
                  for _ in range(rng.randint(0, 5))}
        when = rng.choice([None, 0, 380000 + i, time.time_ns()])
        theirs = Point(name)
        for key, value in tags.items():
            theirs.tag(key, value)
        for key, value in fields.items():
            # influxdb-client encodes a str subclass by its repr: hand it the plain word
            theirs.field(key, str(value) if isinstance(value, Status) else value)
        yield schema.Point(name, tuple(tags.items()), fields, when), theirs.time(when)


@pytest.mark.filterwarnings("ignore:The measurement name:SyntaxWarning")
def test_line_protocol_is_influxdb_clients():
    pairs = list(_fuzzed_points(5000))
    assert [ours.to_line_protocol() for ours, _ in pairs] == \
        [theirs.to_line_protocol() for _, theirs in pairs]


def test_a_field_line_protocol_cannot_hold_is_refused():
    with pytest.raises(TypeError, match="field 'v': Decimal"):
        schema.Point("m", (), {"v": Decimal("1.5")}).to_line_protocol()


def test_every_builder_encodes_like_influxdb_client():
    """Each measurement of docs/schema.md, built by schema, as influxdb-client writes it."""
    built = [schema.campaign_point("c", "rereco", 'a "b"', "me", 5),
             schema.rtype_point("c", "all", ["sequence == GLOBAL-RUN"], ["t1", "t2"], "update",
                                "me", 6, added=["t2"]),
             schema.workflow_point("c", "t1", '{"task": "t1"}', "me", 7),
             schema.new_run_point("c", "t1", 355100, 8000, "Run2022C", 1.5),
             schema.run_point("c", "t1", 355100, None, 2.0, queue_id=4),
             schema.runinfo_point("c", 355100, 8000, "Run2022C", ["all"], {"fill": 8000}),
             schema.job_point("c", "t1", 355100, "done", 9, build=3, url="u"),
             schema.task_job_point("c", "t1", "7", [355101, 355100], "idle", 11,
                                   (("fill", "8000"), ("run", "355100")), output="a,b"),
             schema.lock_point("host:1", 10.0)]
    for ours in built:
        theirs = Point.from_dict({"measurement": ours.measurement, "tags": dict(ours.tags),
                                  "fields": ours.fields, "time": ours.time})
        assert ours.to_line_protocol() == theirs.to_line_protocol()
    assert [p.measurement for p in built] == ["campaign", "rtype", "workflow", "run", "run",
                                              "runinfo", "job", "job", "lock"]
    assert built[3].fields == {"status": "new", "updated": 1.5, "fill": 8000,
                               "era": "Run2022C", "attempt": 0}
    assert type(built[3].fields["status"]) is str
    assert (built[7].fields["run"], built[7].fields["runs"]) == (355100, "355100,355101")


def test_points_written_are_read_back(client):
    client.write([schema.Point("run", (("campaign", "c"), ("task", "t a,b=c")),
                               {"status": 'say "hi"\\', "attempt": 3, "updated": 1.5,
                                "ok": True}, 380001)])
    assert client.select("SELECT * FROM run") == [
        {"time": 380001, "attempt": 3, "campaign": "c", "ok": True, "status": 'say "hi"\\',
         "task": "t a,b=c", "updated": 1.5}]


@pytest.mark.parametrize("status,body,words", [
    (200, b"<html><body>Login to the CERN SSO</body></html>\n", "is not InfluxDB's JSON"),
    (200, b"[1, 2]\n", "unexpected JSON"),
    (502, b"\n   \n", "HTTP 502 Bad Gateway"),
    (403, b"<html>\n<h1>Forbidden</h1></html>", "<html>"),
])
def test_something_else_than_influxdb_answering_is_a_one_line_error(status, body, words):
    """A proxy or portal in front of InfluxDB: a typed one-line error, not a crash."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(InfluxError) as err:
            Influx("db", f"http://127.0.0.1:{server.server_port}").select("SELECT * FROM run")
    finally:
        server.shutdown()
        server.server_close()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_quoted_string_matches_itself_and_nothing_else(client):
    """quote_str is the second line of defence behind name validation: quotes and
    backslashes stay inside the literal, so a value can neither break the query nor
    widen it."""
    tricky = ["it's", "x' OR task =~ /.*/ OR task = 'y", "back\\slash'"]
    client.write([schema.run_point("c1", task, 355100 + i, Status.NEW, 0.0)
                  for i, task in enumerate([*tricky, "other"])])
    for task in tricky:
        rows = client.select(f"SELECT status, task FROM run WHERE task = {quote_str(task)}")
        assert [row["task"] for row in rows] == [task]
