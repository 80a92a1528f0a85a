# Two commands: `make test` and `make run`. Both create .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# First working interpreter >= 3.12: python3.13, python3.12, then pyenv's installs.
# (pyenv shims exist on PATH even when they cannot run, so each candidate is executed.)
PYTHON ?= $(shell for p in python3.13 python3.12 $(wildcard /root/.pyenv/versions/3.1[23].*/bin/python3.1[23]); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: test run clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.12 found (tried python3.13, python3.12, /root/.pyenv/versions/3.1[23].*); install one or pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The whole workflow on config/config.yaml; a second run with nothing changed does nothing.
run: $(STAMP)
	$(VENV)/bin/snakemake --cores all
	$(VENV)/bin/snakemake --report results/report.html
	@echo "Reports: $(CURDIR)/results/index.html (per dataset and q bin: results/<dataset>/<q folder>/report.html)"
	@echo "Snakemake report: $(CURDIR)/results/report.html"

clean:
	rm -rf $(VENV) .cache results logs resources .snakemake
