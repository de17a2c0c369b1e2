# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench influxd htcondor lint clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# An influxd binary for the tests, the demo and the benchmark (Debian's package).
influxd:
	@if [ -n "$$ECAL_TEST_INFLUXD" ] || command -v influxd >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing influxd (Debian package influxdb)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb) >/dev/null; \
	else \
		echo "influxd not found: run 'sudo apt-get install influxdb' or set ECAL_TEST_INFLUXD=/path/to/influxd" >&2; \
		exit 2; \
	fi

# The private HTCondor pool's Debian 13 root filesystem (ecaljenkins/localcondor.py), built
# once (about 30 s) into $$ECAL_CONDOR_ROOTFS, default /var/cache/ecaljenkins/condor-rootfs.
# Where the pool cannot be had (not root, no Debian mirror) it says why and goes on.
htcondor: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && [ ! -x /usr/sbin/condor_master ] && ! command -v mmdebstrap >/dev/null 2>&1; then \
		echo "installing mmdebstrap (Debian package)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap) >/dev/null; \
	fi
	@$(BIN)/python -m ecaljenkins.localcondor

# The Jenkinsfile linted offline by npm-groovy-lint (version 15: Node.js 20 and Java 17;
# installed under .lint/ by this Makefile, with Debian's nodejs/npm/JRE when missing).
# A broken Jenkinsfile fails `make test`; it is linted again only when it changed since
# its last clean lint (the stamp), so the 15 s it takes are paid once per change.
LINT_DIR    := .lint
GROOVY_LINT := $(LINT_DIR)/node_modules/.bin/npm-groovy-lint

$(GROOVY_LINT):
	@if command -v npm >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing nodejs, npm and a Java runtime (Debian packages) for the Jenkinsfile lint"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			nodejs npm default-jre-headless) >/dev/null; \
	else \
		echo "npm and java not found: run 'sudo apt-get install nodejs npm default-jre-headless'" >&2; \
		exit 2; \
	fi
	npm install --silent --no-audit --no-fund --prefix $(LINT_DIR) npm-groovy-lint@15

$(LINT_DIR)/Jenkinsfile.linted: Jenkinsfile | $(GROOVY_LINT)
	$(GROOVY_LINT) --noserver --failon error --loglevel error --output txt Jenkinsfile
	touch $@

lint: $(LINT_DIR)/Jenkinsfile.linted

test: $(STAMP) influxd htcondor lint
	$(BIN)/python -m pytest -q

# The whole system end to end on this machine (ecaljenkins/demo.py), outputs in
# ./demo-output; DEMO_ARGS='--runs 6' or DEMO_ARGS='--era Run2022F' to change it.
demo: influxd $(STAMP)
	@$(BIN)/python -m ecaljenkins.demo $(DEMO_ARGS)

# The HTCondor figures on a private pool (bench/condor_bench.py; CONDOR_BENCH_ARGS=
# '--jobs 1000'), then the benchmark at the scale of a data-taking year, whose bench and
# bench-history lines come last (docs/performance.md); BENCH_ARGS=--quick or
# BENCH_ARGS='--sizes 1000,10000' to shorten it.
bench: $(STAMP) influxd htcondor
	$(BIN)/python bench/condor_bench.py $(CONDOR_BENCH_ARGS)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info demo-output $(LINT_DIR)
