"""The files the package ships, found where they are installed.

Templates, the bundled run catalogue, the default workflow catalogue and the
example workflows live inside the package (``ecaljenkins/templates/``,
``ecaljenkins/data/``, ``ecaljenkins/examples/``), so a wheel installed on a
Jenkins agent or in a CVMFS/LCG release carries them, and a source checkout
reads the same single copy (the top-level ``templates/``, ``jobs/workflows.yaml``
and ``examples/`` are symbolic links into the package). They are located with
:mod:`importlib.resources`, never relative to the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(*parts: str) -> Path:
    """The path of a file or folder shipped in the package, e.g. ``shipped("templates")``.

    A real path, as jinja2's loader and the error messages need: pip always
    installs a wheel unpacked, so the package's resources are files on disk.
    """
    return Path(files(__package__).joinpath(*parts))
