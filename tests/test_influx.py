"""The InfluxDB client's reading side: chunked answers, odd text, the paused collector."""

import gc

import pytest
from influxdb_client import Point

from ecaljenkins.errors import DatabaseNotFound, InfluxError
from ecaljenkins.influx import QUERY_CHUNK, Influx, gc_paused


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
