"""What a cycle did (or, in a dry run, would do): typed results the CLI prints.

The stages add to the :class:`CampaignReport` of the campaign they work on;
nothing here is read back by the scheduler itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .plan import Build, Plan


@dataclass(frozen=True)
class Triggered:
    """A build started: Jenkins' queue item (0 when the executor gives none)."""

    build: Build
    trigger_id: str
    queue_id: int


@dataclass
class CampaignReport:
    """One campaign's part of a cycle."""

    campaign: str
    kind: str
    plan: Plan | None = None
    triggered: list[Triggered] = field(default_factory=list)
    #: reconciliation outcomes: new status -> number of (run, task)
    reconciled: Counter = field(default_factory=Counter)
    #: new runs of a prompt campaign injected (or, in a dry run, that would be);
    #: None when the run registry failed
    fetched: int | None = 0
    #: the first run read: the rows below are settled (docs/schema.md, the low-water mark)
    since: int = 0
    #: the first run of the fill/era group of ``since``
    groups_since: int = 0
    #: the low-water mark this cycle stored (None: none stored)
    mark: int | None = None
    #: the check of the jobs of tasks of many jobs (ecaljenkins.condorjobs.Checked)
    jobs: object = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: triggers Jenkins refused with an error status (a missing or disabled job, a
    #: permission): the cycle worked, but a human must look
    refused: list[str] = field(default_factory=list)


@dataclass
class CycleReport:
    """One database's cycle: skipped (the lease is taken), or one report per campaign."""

    db: str
    dry_run: bool
    #: why the cycle was skipped (a :class:`~.lease.Skip`: its ``stale`` says a human is needed)
    skipped: str | None = None
    #: the dead scheduler of this host whose lease this cycle took over
    took_over: str | None = None
    campaigns: list[CampaignReport] = field(default_factory=list)
    #: campaigns left alone because no run type has an active task
    inactive: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.errors for c in self.campaigns)

    @property
    def needs_attention(self) -> bool:
        """The cycle worked but a human should look: skipped for a lease held too long,
        or builds Jenkins refused."""
        return bool(getattr(self.skipped, "stale", False)) or \
            any(c.refused for c in self.campaigns)
