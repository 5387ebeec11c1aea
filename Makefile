# cylc-hub: the two commands a new machine needs (Debian 12, as root).
#   make demo   set up everything and run the demo hub on http://127.0.0.1:8000
#   make test   set up everything and run every test

VENV ?= /opt/cylc-hub/venv
PYTEST_ARGS ?=

.PHONY: demo test setup-test

demo:
	scripts/demo.sh

setup-test:
	scripts/setup.sh test

test: setup-test
	scripts/run-tests.sh $(PYTEST_ARGS)
