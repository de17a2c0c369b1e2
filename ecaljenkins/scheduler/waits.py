"""Why a (run, task) is not triggered this cycle: one small type per reason.

The planner records a wait with what explains it (the dependency and its status,
the end of a back-off, ...); ``str(wait)`` is the one line the dry run shows
(its class's ``line``, formatted with the wait), and ``wait.reason`` the short
text its table counts. Code that acts on a reason (the demo waits for
back-offs) tests the type and reads named fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .clock import utc


@dataclass(frozen=True, slots=True)
class Wait:
    """A (run, task) left waiting; subclasses name the reason and what explains it."""

    run: int
    reason: ClassVar[str] = "waiting"
    line: ClassVar[str] = "{self.reason}"

    def __str__(self) -> str:
        return self.line.format(self=self)


@dataclass(frozen=True, slots=True)
class Inactive(Wait):
    """No run type of the campaign lists the task any more."""
    reason: ClassVar[str] = "inactive task"


@dataclass(frozen=True, slots=True)
class NoDefinition(Wait):
    """The task is active, but neither the campaign nor the catalogue defines it."""
    reason: ClassVar[str] = "inactive: no workflow definition"


@dataclass(frozen=True, slots=True)
class Dependency(Wait):
    """A task of ``depends_on`` is not done for this run (``status`` None: no row)."""
    task: str
    status: str | None
    reason: ClassVar[str] = "dependency not done"
    line: ClassVar[str] = "{self.reason}: {self.task} is {self.found}"

    @property
    def found(self) -> str:
        return self.status or "missing for this run"


@dataclass(frozen=True, slots=True)
class BackOff(Wait):
    """Failed, with retries left, until ``until`` (Unix seconds)."""
    until: float
    reason: ClassVar[str] = "back-off"
    line: ClassVar[str] = "{self.reason} until {self.when}"

    @property
    def when(self) -> str:
        return utc(self.until)


@dataclass(frozen=True, slots=True)
class Exhausted(Wait):
    """Failed after ``attempts`` builds, more than ``max_retries`` allows."""
    attempts: int
    reason: ClassVar[str] = "retries exhausted"
    line: ClassVar[str] = "{self.reason} ({self.attempts} attempts)"


@dataclass(frozen=True, slots=True)
class Cap(Wait):
    """The task has ``in_flight`` builds queued or running: its ``max_in_flight``."""
    in_flight: int
    max_in_flight: int
    reason: ClassVar[str] = "cap reached"
    line: ClassVar[str] = ("{self.reason} (max_in_flight {self.max_in_flight}, "
                           "{self.in_flight} already in flight)")


@dataclass(frozen=True, slots=True)
class GroupNotReady(Wait):
    """``blocking`` runs of its fill/era group (``group_by`` ``key``) are on their way."""
    group_by: str
    key: object
    blocking: int
    reason: ClassVar[str] = "rest of its group not ready"
    line: ClassVar[str] = ("{self.reason}: {self.blocking} run(s) of {self.group_by} "
                           "{self.key} still on their way")


#: why the group of a prompt campaign's newest run waits when nothing says more
MAY_GROW = "holds the newest run and may grow"


@dataclass(frozen=True, slots=True)
class GroupOpen(Wait):
    """Its fill/era group holds the newest run of a prompt campaign and may grow:
    ``why`` says what is known (the fill has not ended, a run of it is still open,
    the registry could not tell; an era group always just may grow)."""
    group_by: str
    key: object
    why: str = MAY_GROW
    reason: ClassVar[str] = "group still open"
    line: ClassVar[str] = "{self.reason}: {self.group_by} {self.key} {self.why}"


@dataclass(frozen=True, slots=True)
class Limit(Wait):
    """Ready, but the cycle already planned ``budget`` builds (``--max-triggers``)."""
    budget: int
    reason: ClassVar[str] = "trigger limit of this cycle"
    line: ClassVar[str] = "{self.reason} ({self.budget} builds)"


@dataclass(frozen=True, slots=True)
class UnknownStatus(Wait):
    """A status the lifecycle does not know (written by hand?)."""
    status: str
    reason: ClassVar[str] = "unknown status"
    line: ClassVar[str] = "{self.reason} {self.status!r}"
