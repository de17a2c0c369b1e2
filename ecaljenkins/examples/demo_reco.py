"""Example workflow ``demo-reco``: the demo "reconstruction" of one run.

Copy this file to write a new task. A workflow is a :class:`ecaljenkins.Handler`
subclass that only says what to do with one run (override :meth:`process`);
the Handler does the rest:

* it reads ``--db``, ``--campaign`` and ``--run``/``--runs`` (by default from the
  ``DB``, ``CAMPAIGN``, ``RUN_NUMBER``/``RUNS`` variables every build gets);
* it calls :meth:`process` once per run; raising fails that run (the traceback
  goes to the build log), returning means the run is done;
* it reports ``running``/``done``/``failed`` to InfluxDB when run by hand, and
  leaves that to the build wrapper when run by a build (``ecalautomation.py run``,
  which Jenkins jobs and the local executor both use), so a build reports once.

The catalogue entry (``jobs/workflows.yaml``) runs it as a module of the
installed package, so it works from any directory::

    python3 -m ecaljenkins.examples.demo_reco --runs "${RUNS:-$RUN_NUMBER}" --campaign "$CAMPAIGN"

and by hand, with the ``ECAL_INFLUXDB_*`` variables set::

    python3 -m ecaljenkins.examples.demo_reco --db demo --campaign demo_rereco --run 362440

Outputs go under ``$ECAL_DEMO_DIR`` (``make demo`` sets it; default
``./demo-output``): ``data/<campaign>/demo-reco/<run>.txt``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from ecaljenkins import Handler


class DemoTask(Handler):
    """What both demo tasks share: the ``--output-dir`` option and their output files.

    ``add_arguments`` is how a workflow gets options of its own; their values
    are in ``self.args`` once :meth:`run` has parsed the command line.
    """

    def add_arguments(self, parser):
        parser.add_argument("--output-dir", default=os.environ.get("ECAL_DEMO_DIR")
                            or "demo-output",
                            help="where outputs go (default: $ECAL_DEMO_DIR or ./demo-output)")

    def output_path(self, name: str) -> Path:
        """An absolute path: a registered output is read by other builds, from other
        working directories (other Jenkins agents, in production)."""
        folder = Path(self.args.output_dir).resolve() / "data" / self.args.campaign / self.task
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


class DemoReco(DemoTask):
    """Pretends to reconstruct a run: a few numbers, the same for the same run."""

    def process(self, run: int) -> None:
        rng = random.Random(run)                 # deterministic: a rerun gives the same file
        events = rng.randint(50_000, 200_000)
        mean_energy = rng.uniform(40.0, 50.0)
        path = self.output_path(f"{run}.txt")
        path.write_text(f"run {run}\nevents {events}\nmean_energy_gev {mean_energy:.3f}\n",
                        encoding="utf-8")
        print(f"run {run}: {events} events reconstructed into {path}")
        # Register what this run produced: the tasks depending on demo-reco find it
        # with Handler.dependency_outputs(run) (demo_calib.py), analyses with
        # RunCtrl.get_output(task="demo-reco").
        self.register_output(run, path)


if __name__ == "__main__":
    sys.exit(DemoReco(task="demo-reco").run())
