"""ECAL automation on Jenkins: campaigns in InfluxDB, one build per (run, task).

Workflow authors subclass :class:`Handler`; everything else is driven by the
``ecalrunctrl.py`` and ``ecalautomation.py`` commands.
"""

from .handler import Handler

__all__ = ["Handler"]
