# Each target creates or refreshes .venv from the pinned requirements first, so one command
# alone does all the setup on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= example
STAMP := $(VENV)/.installed

.PHONY: plan test test-deps bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

plan: $(STAMP)
	$(PY) -m infra plan --stack $(STACK)

# Where it may install (root), the suite installs what it needs first; elsewhere the run ends by
# naming each skipped group and `sudo make test-deps`, the one command that enables it.
test: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then bash tests/setup/install.sh; fi
	$(PY) -m pytest -q tests

test-deps: $(STAMP)
	bash tests/setup/install.sh

bench: $(STAMP)
	$(PY) tests/benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check infra tests __main__.py
	shellcheck scripts/*.sh

clean:
	rm -rf build $(VENV)
