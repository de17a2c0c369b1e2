"""Lease: one scheduler at a time per database, without compare-and-set."""

from __future__ import annotations

import os
import socket
import time
import uuid

from ..influx import Influx
from ..schema import lock_point
from .clock import Clock, utc

#: seconds a scheduler holds its lease at most (longer than a cycle can take)
LEASE_SECONDS = 1800.0
#: seconds between writing the lease and reading it back, so that two
#: schedulers starting together both see the last writer
LEASE_SETTLE = 1.0


def holder_id() -> str:
    """``host:pid:random``: who holds a lease, unique even for two schedulers on one host."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """Who schedules a database now: a ``lock`` point, written then read back.

    InfluxDB has no compare-and-set, so the last writer wins: a scheduler that
    reads back another holder skips its cycle. A lease held by a crashed
    scheduler expires after ``seconds``.
    """

    def __init__(self, influx: Influx, holder: str, seconds: float = LEASE_SECONDS,
                 settle: float = LEASE_SETTLE, clock: Clock = time.time):
        self.influx, self.holder = influx, holder
        self.seconds, self.settle, self.clock = seconds, settle, clock

    def _read(self) -> dict | None:
        rows = self.influx.select("SELECT holder, expires FROM lock WHERE scope = 'schedule'")
        return rows[-1] if rows else None

    def _write(self, expires: float) -> None:
        self.influx.write([lock_point(self.holder, expires)])

    def _busy(self, current: dict | None) -> str | None:
        if current and current["holder"] != self.holder and \
                (current.get("expires") or 0) > self.clock():
            return (f"another scheduler ({current['holder']}) holds the lease of database "
                    f"{self.influx.db!r} until {utc(current['expires'])}: skipping this cycle")
        return None

    def acquire(self) -> str | None:
        """None once the lease is ours; else why this cycle must be skipped."""
        busy = self._busy(self._read())
        if busy:
            return busy
        self._write(self.clock() + self.seconds)
        if self.settle:
            time.sleep(self.settle)
        current = self._read()
        if not current or current["holder"] != self.holder:
            return self._busy(current) or (f"another scheduler took the lease of database "
                                           f"{self.influx.db!r}: skipping this cycle")
        return None

    def release(self) -> None:
        self._write(0)
