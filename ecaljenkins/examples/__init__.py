"""The example workflows the demo runs, shipped in the package so the demo and the
catalogue's ``demo-*`` tasks work from any directory: ``python3 -m
ecaljenkins.examples.demo_reco``. Copy one to write a task (``examples/`` of a
checkout links here)."""
