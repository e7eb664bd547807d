# The two commands a newcomer needs are `make demo` and `make test`; both set up what
# they need (virtualenv, packages, services) on a fresh Debian machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Extras installed for development and tests (reports = Evidently, grafana = grafana-client).
EXTRAS := dev,parquet,grafana,reports
STAMP  := $(VENV)/.installed-$(EXTRAS)

.PHONY: help venv demo test lint typecheck unit services-start services-stop services-status tools image clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11+" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)  ## create .venv and install modeltap with its test dependencies

demo: $(STAMP)  ## run modeltap end to end on the embedded default (SQLite, no Kafka)
	$(BIN)/monitor demo

test: $(STAMP)  ## start the real services, then lint, type-check and run every test
	scripts/test.sh

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict
	$(BIN)/mypy

services-start:  ## start PostgreSQL, Kafka and Prometheus (installing them if missing)
	scripts/services.sh start

services-stop:  ## stop the services started by services-start
	scripts/services.sh stop

services-status:  ## say which services run where
	scripts/services.sh status

tools: $(STAMP)  ## install Helm and the manifest validators used by the chart checks
	scripts/tools.sh

image:  ## build the container images modeltap and modeltap-sidecar (podman, no registry needed)
	scripts/image.sh build

clean:  ## remove the virtualenv, service state and demo output
	-scripts/services.sh stop
	rm -rf $(VENV) .state .modeltap-demo .mypy_cache .ruff_cache .pytest_cache .hypothesis
