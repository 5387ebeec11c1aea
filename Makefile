# cylc-hub: the two commands a new machine needs (Debian 12, as root).
#   make demo   set up everything and run the demo hub on http://127.0.0.1:8000
#   make test   set up everything and run every test

VENV ?= /opt/cylc-hub/venv
PYTEST_ARGS ?=

.PHONY: demo test setup-test bench bench-ssh

demo:
	scripts/demo.sh

setup-test:
	scripts/setup.sh test

test: setup-test
	scripts/run-tests.sh $(PYTEST_ARGS)

# cylc-ssh: spawn to ready against its floor, and SSH connections per poll sweep.
bench-ssh: setup-test
	$(VENV)/bin/python bench/bench_ssh.py

# Print the cylc-access benchmarks (figures only, nothing is asserted);
# see bench/access_results.md. Add other benchmark scripts to the list.
bench:
	for script in bench/bench_access*.py; do $(VENV)/bin/python "$$script" || exit 1; done
