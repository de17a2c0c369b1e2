"""Example workflow ``demo-calib``: a calibration from the demo-reco outputs of a fill.

Copy this file for a task that depends on another one and processes a group
of runs together. The catalogue entry (``jobs/workflows.yaml``) says::

    demo-calib:
      command: python3 -m ecaljenkins.examples.demo_calib --runs "$RUNS" --campaign "$CAMPAIGN"
      depends_on: [demo-reco]
      group_by: fill

so the scheduler starts one build per fill, once demo-reco is done for every
run of it, with the fill's runs in ``RUNS``. Because this class defines
:meth:`process_group`, the Handler calls it once with all those runs (instead
of :meth:`process` per run); one failure fails the whole group, and the whole
group is retried.

For the demo it fails once on purpose, for the run named by
``--fail-once``/``$ECAL_DEMO_FAIL_ONCE``: a marker file remembers the first
attempt, so the retry succeeds and ``make demo`` shows the retry path. Leave
that part out of a real workflow.
"""

from __future__ import annotations

import os
import sys

from ecaljenkins.examples.demo_reco import DemoTask   # the shared --output-dir option


class DemoCalib(DemoTask):
    """Averages the demo-reco numbers of the runs of a fill into one constant."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        fail = os.environ.get("ECAL_DEMO_FAIL_ONCE")
        parser.add_argument("--fail-once", type=int, metavar="RUN",
                            default=int(fail) if fail else None,
                            help="fail the first attempt of the group holding this run "
                                 "(default: $ECAL_DEMO_FAIL_ONCE; none)")

    def process_group(self, runs: list[int]) -> None:
        energies = {}
        for run in runs:
            # {dependency task: its registered output}, for the tasks given as
            # deps_tasks below; a dependency's output is there once it is done.
            found = self.dependency_outputs(run)
            if "demo-reco" not in found:
                raise RuntimeError(f"run {run}: demo-reco registered no output")
            with open(found["demo-reco"], encoding="utf-8") as reco:
                values = dict(line.split() for line in reco if line.strip())
            energies[run] = float(values["mean_energy_gev"])
        self.fail_once(runs)
        constant = 45.0 / (sum(energies.values()) / len(energies))
        path = self.output_path(f"{runs[0]}.txt")      # a group is named by its first run
        path.write_text(f"runs {','.join(map(str, runs))}\nconstant {constant:.5f}\n",
                        encoding="utf-8")
        print(f"runs {','.join(map(str, runs))}: constant {constant:.5f} written to {path}")
        # every run of the group gets the group's output
        for run in runs:
            self.register_output(run, path)

    def fail_once(self, runs: list[int]) -> None:
        """The demo's deliberate failure: only the first attempt of one group."""
        run = self.args.fail_once
        if run not in runs:
            return
        marker = self.output_path(f"{run}.failed-once")
        if marker.exists():
            print(f"run {run}: failed on the previous attempt, processing it now")
            return
        marker.touch()
        raise RuntimeError(f"run {run}: simulated failure of the first attempt "
                           "(the retry succeeds)")


if __name__ == "__main__":
    sys.exit(DemoCalib(task="demo-calib", deps_tasks=["demo-reco"]).run())
