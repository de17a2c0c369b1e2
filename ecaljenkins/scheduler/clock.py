"""The scheduler's time: Unix seconds from an injectable clock, shown in UTC.

Every stage takes ``now`` (or a clock) from the cycle instead of reading the
time itself, so that tests move time by hand instead of sleeping.
"""

import time
from typing import Callable

#: what the scheduler reads the time from (``time.time`` outside tests)
Clock = Callable[[], float]


def utc(seconds: float) -> str:
    """Unix seconds as the UTC time the scheduler's messages show."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
