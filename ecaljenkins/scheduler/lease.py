"""Lease: one scheduler at a time per database, without compare-and-set.

A lease is a ``lock`` point: who holds it, since when, until when. It ends in
one of five ways, so that a stopped scheduler never blocks the next ones for
long, and never silently:

* released at the end of the cycle (``finally``), also when the process is
  stopped by SIGINT (Ctrl-C) or SIGTERM (what Jenkins sends a build it aborts):
  :func:`released_on_signals` turns SIGTERM into an exit through those
  ``finally`` blocks instead of a kill holding the lease;
* taken over at once when its holder is a dead process of this host;
* expired after :data:`LEASE_SECONDS` (a crashed scheduler on another host);
* broken by hand, naming the holder (:func:`break_lease`,
  ``schedule --break-lease``).

A cycle skipped because another scheduler has held the lease for more than two
cron periods (:data:`STALE_SECONDS`) says so (:attr:`Skip.stale`): the command
then exits with a status that makes the Jenkins build unstable, so a human looks.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from ..influx import Influx
from ..names import as_int
from ..schema import lock_point
from .clock import Clock, utc

#: seconds a scheduler holds its lease at most (longer than a cycle can take)
LEASE_SECONDS = 1800.0
#: seconds between writing the lease and reading it back, so that two
#: schedulers starting together both see the last writer
LEASE_SETTLE = 1.0
#: seconds between two scheduler cycles (the Jenkinsfile's ``H/10`` cron)
CRON_PERIOD = 600.0
#: a lease held longer than two cron periods is stale: a skipped cycle needs a human
STALE_SECONDS = 2 * CRON_PERIOD


def holder_id() -> str:
    """``host:pid:random``: who holds a lease, unique even for two schedulers on one host."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """Whether ``holder`` (a :func:`holder_id`) is a process of this host that has ended.

    Only a process of this host can be known dead; a pid reused since counts
    as alive (the lease then expires as usual).
    """
    host, _, rest = holder.partition(":")
    pid = as_int(rest.partition(":")[0])
    if host != socket.gethostname() or pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:      # alive, another user's
        return False
    return False


def held_since(lease: dict, seconds: float = LEASE_SECONDS) -> float:
    """When ``lease`` (a stored row) was taken; for a lease written before ``taken`` was
    recorded, its expiry less ``seconds``."""
    return lease.get("taken") or (lease["expires"] - seconds)


class Skip(str):
    """Why a cycle was skipped (the text), and whether a human should look (``stale``:
    the lease has been held longer than :data:`STALE_SECONDS`)."""

    stale: bool

    def __new__(cls, message: str, stale: bool = False) -> "Skip":
        skip = super().__new__(cls, message)
        skip.stale = stale
        return skip


class Lease:
    """Who schedules a database now: a ``lock`` point, written then read back.

    InfluxDB has no compare-and-set, so the last writer wins: a scheduler that
    reads back another holder skips its cycle.
    """

    def __init__(self, influx: Influx, holder: str, seconds: float = LEASE_SECONDS,
                 settle: float = LEASE_SETTLE, clock: Clock = time.time,
                 stale: float = STALE_SECONDS):
        self.influx, self.holder = influx, holder
        self.seconds, self.settle, self.clock, self.stale = seconds, settle, clock, stale
        #: the dead holder whose lease the last acquire took over, if any
        self.took_over: str | None = None

    def read(self) -> dict | None:
        """The lease as stored (``holder``, ``expires``, ``taken``), None if never taken."""
        rows = self.influx.select(
            "SELECT holder, expires, taken FROM lock WHERE scope = 'schedule'")
        return rows[-1] if rows else None

    def _write(self, expires: float) -> None:
        self.influx.write([lock_point(self.holder, expires, self.clock())])

    def _busy(self, current: dict | None) -> Skip | None:
        now = self.clock()
        if not current or current["holder"] == self.holder or \
                (current.get("expires") or 0) <= now:
            return None
        if holder_is_dead(current["holder"]):
            self.took_over = current["holder"]
            return None
        taken = held_since(current, self.seconds)
        message = (f"another scheduler ({current['holder']}) holds the lease of database "
                   f"{self.influx.db!r} since {utc(taken)}, until {utc(current['expires'])}: "
                   "skipping this cycle")
        stale = now - taken > self.stale
        if stale:
            message += (f"; held for {(now - taken) / 60:.0f} minutes, more than two cron "
                        "periods: if that scheduler is gone, 'ecalautomation.py --db "
                        f"{self.influx.db} schedule --break-lease' breaks the lease")
        return Skip(message, stale)

    def acquire(self) -> Skip | None:
        """None once the lease is ours; else why this cycle must be skipped.

        Interrupted after writing the lease (a signal during the settle time),
        it releases the lease before the interruption goes on.
        """
        self.took_over = None
        busy = self._busy(self.read())
        if busy:
            return busy
        self._write(self.clock() + self.seconds)
        try:
            if self.settle:
                time.sleep(self.settle)
            current = self.read()
        except BaseException:
            self.release()
            raise
        if not current or current["holder"] != self.holder:
            return self._busy(current) or Skip(f"another scheduler took the lease of database "
                                               f"{self.influx.db!r}: skipping this cycle")
        return None

    def release(self) -> None:
        self._write(0)


def break_lease(influx: Influx, clock: Clock = time.time) -> dict | None:
    """Break the lease of ``influx``'s database whoever holds it (``schedule --break-lease``).

    Returns the lease that was broken (``holder``, ``expires``, ``taken``), or
    None when nobody held it. The holder, if still running, loses its lease:
    break it only when that scheduler is gone.
    """
    lease = Lease(influx, f"broken-by:{holder_id()}", clock=clock)
    current = lease.read()
    lease.release()
    if current and (current.get("expires") or 0) > clock():
        return current
    return None


@contextmanager
def released_on_signals() -> Iterator[None]:
    """Within this block SIGTERM ends the process as Ctrl-C does: through ``finally``.

    Jenkins aborts a build with SIGTERM, whose default action kills the
    process at once, holding its lease; raised as SystemExit (status 143)
    instead, it runs the ``finally`` that releases the lease. SIGINT already
    raises KeyboardInterrupt. Main thread only (where signals are handled).
    """
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
