# Two commands for a user: `make demo` (the whole lifecycle on the local stack) and `make test`.
# Both install what they need into .venv/ and node_modules/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
INFRA_VENV := .venv-infra
# The dashboard's browser tests (tests/dashboard) drive Debian's chromium through Python Playwright (never
# `playwright install`, which downloads a browser build): installed from Debian's packages when missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test unit lint faults chains install up bench clean browser

demo: install
	$(VENV)/bin/mlops demo

test: install $(INFRA_VENV)/.installed $(CHROMIUM)
	$(PY) -m pytest -q --durations=20 -m "not faults and not chains"

# the fast tests alone: no Azurite, local stack, server process, nor the slow ones (under a minute)
unit: install
	$(PY) -m pytest -q -m "not stack and not slow and not faults and not chains"

# ruff over the whole tree; mypy over the packages that are type-clean (pyproject.toml configures both)
MYPY_PATHS := lifecycle functions monitoring training function_app.py tests/faults bench mlops/dashboard \
              mlops/simulation mlops/simulate_command.py
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_PATHS)

# the fault suite: replays, poison, simultaneous triggers, and the crash matrix (the whole stack killed at 21
# points of the lifecycle and started again); ~35 min
faults: install
	$(PY) -m pytest -q -s -m faults

# whole chains end to end: several models in one app on one local stack (tests/test_own_models.py), the
# promotion from preprod to prod (tests/test_promotion_chain.py), and monitoring closing the loop
# (tests/test_monitoring_loop.py); ~11 min
chains: install
	$(PY) -m pytest -q --durations=10 -m chains

up: install
	$(VENV)/bin/mlops up

bench: install
	$(PY) bench/cold_start.py
	$(PY) bench/package.py
	$(PY) bench/event_latency.py
	$(PY) bench/router.py
	$(PY) bench/drift.py
	$(PY) bench/monitor.py
	$(PY) bench/faults.py
	$(PY) bench/simulate.py

# drift detection quality beside Evidently and NannyML, which the bench installs into their own venvs under
# /tmp/mlops-bench-peers (not the project's dependencies); ~45 min at every size, `--quick` in a few minutes
bench-quality: install
	$(PY) bench/drift_quality.py

install: $(VENV)/.installed node_modules/.installed

browser: $(CHROMIUM)
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

$(VENV)/.installed: pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt -e '.[dev]'
	touch $@

# The offline infrastructure checks (tests/infra): checkov pins packages that clash with the project's venv,
# so it lives in its own; pycep-parser 0.7 beside checkov's older pin parses the newer Bicep syntax;
# check-jsonschema (installed with checkov, in one resolution) validates the CI/CD files (.github/workflows,
# azure-pipelines.yml) against the schemas it vendors, offline.
$(INFRA_VENV)/.installed: Makefile
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet "checkov==3.3.30" "check-jsonschema==0.39.0"
	$(INFRA_VENV)/bin/pip install --quiet --no-deps "pycep-parser>=0.7.1,<0.8"
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .mlops
