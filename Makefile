# cylc-hub: the two commands a new machine needs (Debian 12, as root).
#   make demo   set up everything and run the demo hub on http://127.0.0.1:8000
#   make test   set up everything, build the docs and run every test
#   make docs   set up the venv and build the administrator's guide into build/docs/html

VENV ?= /opt/cylc-hub/venv
PYTEST_ARGS ?=

.PHONY: demo test docs setup-test reliability bench bench-access bench-batch bench-ssh

demo:
	scripts/demo.sh

setup-test:
	scripts/setup.sh test

test: setup-test docs
	scripts/run-tests.sh $(PYTEST_ARGS)

# Any Sphinx warning fails the build (-W), and -E rereads every page, so a
# warning in an unchanged page or a changed help string is never skipped.
docs: setup-test
	$(VENV)/bin/sphinx-build -W --keep-going -n -E -q -b html docs build/docs/html

# Run the fault, load and hostile-input tests and rewrite docs/reliability.md.
reliability: setup-test
	scripts/run-tests.sh -m reliability; status=$$?; \
	$(VENV)/bin/python scripts/reliability_page.py && exit $$status

# cylc-ssh: spawn to ready against its floor, and SSH connections per poll sweep.
bench-ssh: setup-test
	$(VENV)/bin/python bench/bench_ssh.py

# Every benchmark prints figures beside its baseline; nothing is asserted.
bench: bench-access bench-batch bench-ssh

# cylc-access: list and permission latency against a naive evaluator, and
# shares needed against one share per pair (bench/access_results.md).
bench-access: setup-test
	$(VENV)/bin/python bench/bench_access.py

# Batch spawners: scheduler queries per poll interval against batchspawner.
bench-batch: setup-test
	$(VENV)/bin/python bench/bench_batch_polling.py
