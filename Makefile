# Each target creates or refreshes .venv from the pinned requirements first, so one command
# alone does all the setup on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= example
STAMP := $(VENV)/.installed

.PHONY: plan test bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

plan: $(STAMP)
	$(PY) -m infra plan --stack $(STACK)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) tests/benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check infra tests __main__.py
	shellcheck scripts/*.sh

clean:
	rm -rf build $(VENV)
