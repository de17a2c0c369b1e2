"""The InfluxDB client: chunked answers, odd text, the paused collector, line protocol."""

import gc
import random
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from influxdb_client import Point, WritePrecision

from ecaljenkins.errors import DatabaseNotFound, InfluxError
from ecaljenkins.influx import QUERY_CHUNK, Influx, gc_paused, line_protocol


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


def test_text_with_unusual_line_breaks_survives(client):
    text = "a\x85b\u2028c\u2029d\x1ce\nf\r\"g\\"
    client.write([Point("m").tag("campaign", "c").field("s", text).time(5)])
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
    """Points with every kind of name, tag and field value, escapes and edge cases."""
    rng = random.Random(6)
    alphabet = ["a", "Z", "0", " ", ",", "=", '"', "\\", "\n", "\t", "\r", "#", "é", "\x85"]

    def text(low=0):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, 6)))

    values = [0, -7, 2**62, 1.0, -0.5, 1e-7, 1e21, 3.14159, float("nan"), float("inf"),
              True, False, None, "", "done"]
    for i in range(count):
        point = Point(rng.choice(["run", "job", "m m", "a,b", text(1)]))
        for _ in range(rng.randint(0, 3)):
            point.tag(rng.choice(["campaign", "task", "", text(1)]),
                      rng.choice([None, "", "x\\", text(), "c1-step2"]))
        for _ in range(rng.randint(0, 5)):
            point.field(rng.choice(["status", "fill", "", text(1)]),
                        rng.choice(values + [text()]))
        yield point.time(rng.choice([None, 0, 380000 + i, time.time_ns()]))


@pytest.mark.filterwarnings("ignore:The measurement name:SyntaxWarning")
def test_line_protocol_is_influxdb_clients():
    points = list(_fuzzed_points(3000))
    assert [line_protocol(p) for p in points] == [p.to_line_protocol() for p in points]
    odd = [Point("m").field("d", Decimal("1.5")), Point("m").field("v", 1).time(True),
           Point("m").tag("t", 1).tag("u", 1.0).field("v", 1),
           Point("m").tag("t", 1.0).tag("u", 1).field("v", 1),
           Point("m").field("v", 2).time(datetime(2024, 5, 1, tzinfo=timezone.utc)),
           Point("m").field("v", 2).time(5, write_precision=WritePrecision.S),
           Point.from_dict({"measurement": "m", "fields": {"v": 3}, "time": 7},
                           field_types={"v": "float"})]
    assert [line_protocol(p) for p in odd] == [p.to_line_protocol() for p in odd]


def test_points_written_are_read_back(client):
    client.write([Point("run").tag("campaign", "c").tag("task", "t a,b=c")
                  .field("status", 'say "hi"\\').field("attempt", 3).field("updated", 1.5)
                  .field("ok", True).time(380001)])
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
