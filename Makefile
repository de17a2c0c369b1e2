# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench influxd clean

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

test: $(STAMP) influxd
	$(BIN)/python -m pytest -q

# The whole system end to end on this machine (ecaljenkins/demo.py), outputs in
# ./demo-output; DEMO_ARGS='--runs 6' or DEMO_ARGS='--era Run2022F' to change it.
demo: influxd $(STAMP)
	@$(BIN)/python -m ecaljenkins.demo $(DEMO_ARGS)

# The benchmark at the scale of a data-taking year (docs/performance.md);
# BENCH_ARGS=--quick or BENCH_ARGS='--sizes 1000,10000' to shorten it.
bench: $(STAMP) influxd
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info demo-output
