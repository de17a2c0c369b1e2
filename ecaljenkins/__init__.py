"""ECAL automation on Jenkins: campaigns in InfluxDB, one build per (run, task).

Workflow authors subclass :class:`Handler`; everything else is driven by the
``ecalrunctrl.py`` and ``ecalautomation.py`` commands.
"""

__all__ = ["Handler", "__version__"]

#: the one place the version is written (setup.cfg reads it, ``--version`` prints it)
__version__ = "0.1.0"


def __getattr__(name):
    """``ecaljenkins.Handler``, imported on first use: the commands, which import
    this package too, need not pay for the Handler's imports."""
    if name == "Handler":
        from .handler import Handler
        return Handler
    raise AttributeError(f"module 'ecaljenkins' has no attribute {name!r}")
