# Two commands for a user: `make demo` (the whole lifecycle on the local stack) and `make test`.
# Both install what they need into .venv/ and node_modules/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test faults install up bench clean

demo: install
	$(VENV)/bin/mlops demo

test: install
	$(PY) -m pytest -q -m "not faults"

# the crash matrix: the whole stack killed at 21 points of the lifecycle and started again (~15 min)
faults: install
	$(PY) -m pytest -q -s -m faults

up: install
	$(VENV)/bin/mlops up

bench: install
	$(PY) bench/cold_start.py
	$(PY) bench/event_latency.py
	$(PY) bench/router.py
	$(PY) bench/drift.py
	$(PY) bench/monitor.py
	$(PY) bench/faults.py

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt -e '.[dev]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .mlops
