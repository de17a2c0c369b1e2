"""The suite's shared fixtures, registered as plugins (see tests/fixtures/).

Test modules never import this file: they use fixtures by name and import
helpers from ``fixtures.*``, ``jenkins_fake``, ``oms_fake`` and ``scheduling``.
"""

pytest_plugins = ["fixtures.leaks", "fixtures.influx", "fixtures.cli", "fixtures.condor",
                  "fixtures.git", "jenkins_fake", "oms_fake"]
