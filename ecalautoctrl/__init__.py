"""``ecalautoctrl``: the API ECAL's existing scripts are written against, on ecaljenkins.

ECAL's workflow scripts and HTCondor payloads import ``RunCtrl``, ``JobCtrl`` and
``QueryOMS`` from the package ecaljenkins replaces. These classes keep those
names, arguments and return shapes and only adapt them to ecaljenkins' library:
campaigns (:mod:`ecaljenkins.campaign`), tasks of many jobs and their roll-up
(:mod:`ecaljenkins.taskjobs`) and the run registry (:mod:`ecaljenkins.registry`).
What differs from the original is listed in the README's migration section.

Errors are ecaljenkins' typed errors (:mod:`ecaljenkins.errors`), whose message
is one line.
"""

from .jobctrl import JobCtrl
from .omsquery import QueryOMS
from .runctrl import RunCtrl

__all__ = ["JobCtrl", "QueryOMS", "RunCtrl"]
