"""Example workflow ``demo-split``: a task of many HTCondor jobs, several per run.

A heavy task does not run in its build: the build splits each run into chunks
(:meth:`jobs`), submits them as one HTCondor cluster and ends; each job runs
this same module with ``--jid`` (:meth:`process_job`) on an execute node and
reports itself. The scheduler checks the jobs each cycle, resubmits the failed
ones (``max_retries`` per job) and rolls them up into the (run, task), whose
output is every job's (docs/scheduler.md, "Tasks of many jobs").

``make demo DEMO_ARGS='--executor htcondor'`` runs it on a private pool: chunk 1
of the run ``$ECAL_DEMO_FAIL_ONCE`` fails once, and its resubmission succeeds.
By hand, with ``CONDOR_CONFIG`` and the ``ECAL_INFLUXDB_*`` variables set::

    python3 -m ecaljenkins.examples.demo_split --db demo --campaign demo_rereco --run 362440
"""

from __future__ import annotations

import os
import random
import sys

from ecaljenkins.condorjobs import JobSpec
from ecaljenkins.examples.demo_reco import DemoTask

#: jobs per run
CHUNKS = 3


class DemoSplit(DemoTask):
    """Pretends to reconstruct each run in chunks of lumisections, one job per chunk."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--chunk", type=int, help="the chunk a job processes")
        parser.add_argument("--fail-once", type=int,
                            default=int(os.environ.get("ECAL_DEMO_FAIL_ONCE") or 0) or None,
                            help="a run whose chunk 1 fails the first time "
                                 "(default: $ECAL_DEMO_FAIL_ONCE; none)")

    def jobs(self, runs: list[int]) -> list[JobSpec]:
        """The build: one job per chunk of each run (the jobs get the build's options)."""
        common = ["--output-dir", os.path.abspath(self.args.output_dir)]
        if self.args.fail_once:
            common += ["--fail-once", str(self.args.fail_once)]
        return [JobSpec(f"{run}-{chunk}", (run,), ("--chunk", str(chunk), *common))
                for run in runs for chunk in range(CHUNKS)]

    def process_job(self, jid: str, runs: list[int]) -> None:
        """One job, on an execute node: its chunk of the run, into one file."""
        run, chunk = runs[0], self.args.chunk
        path = self.output_path(f"{run}-chunk{chunk}.txt")
        marker = path.with_suffix(".failed-once")
        if run == self.args.fail_once and chunk == 1 and not marker.exists():
            marker.write_text("the first attempt failed on purpose\n", encoding="utf-8")
            raise RuntimeError(f"chunk {chunk} of run {run}: input file unreadable "
                               "(on purpose, once: the scheduler resubmits this job)")
        events = random.Random(f"{run}-{chunk}").randint(10_000, 60_000)
        path.write_text(f"run {run}\nchunk {chunk}\nevents {events}\n", encoding="utf-8")
        print(f"job {jid}: {events} events of chunk {chunk} of run {run} into {path}")
        self.register_output(run, path)


if __name__ == "__main__":
    sys.exit(DemoSplit(task="demo-split").run())
