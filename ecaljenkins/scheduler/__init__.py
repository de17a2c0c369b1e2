"""The scheduler: each cycle starts one build per ready (run, task), exactly once.

A cycle, per database (see docs/scheduler.md for the reasons), one module a stage:

1. :mod:`.lease`: takes the scheduling lease, so two schedulers never work on one
   database;
2. :mod:`.state` (read): the configuration of every campaign (one request) and,
   per campaign, every (run, task) row (one query): a constant number of queries
   whatever the number of runs;
3. :mod:`.fetch`: the new runs of prompt campaigns, from the run registry;
4. :mod:`.reconcile`: the builds in flight brought up to date with the executor
   (queued -> running -> done/failed, cancelled, lost);
5. :mod:`.plan`: pure, rows in, builds and typed waits (:mod:`.waits`) out;
6. :mod:`.trigger`: an *intent* for every build (status queued with a unique
   trigger id) in one write BEFORE triggering, the triggers, then the queue ids
   and the roll-backs of the builds Jenkins refused in a second write.

:mod:`.cycle` runs them in that order; :mod:`.report` holds what a cycle did.
A crash between 6's writes and triggers leaves intents that the next cycle finds
in Jenkins by their trigger id (or, after a grace period, triggers again, once).

Layering: ``clock`` < ``state`` < ``waits`` < ``plan`` < ``report`` < ``lease``,
``fetch``, ``reconcile``, ``trigger`` < ``cycle``; no module imports a later one.
"""

from .cycle import DEFAULT_MAX_TRIGGERS, EXECUTORS, Scheduler, make_executor
from .report import CampaignReport, CycleReport, Triggered

__all__ = ["DEFAULT_MAX_TRIGGERS", "EXECUTORS", "Scheduler", "make_executor", "CampaignReport",
           "CycleReport", "Triggered"]
