# `make test`, `make run` and `make lint` create .venv on first use, with the exact versions of
# requirements.lock (those CI tested); `make lock` regenerates that file, `make format` rewrites the
# code into the form `make lint` checks.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# First working interpreter >= 3.12: python3.13, python3.12, then pyenv's installs.
# (pyenv shims exist on PATH even when they cannot run, so each candidate is executed.)
PYTHON ?= $(shell for p in python3.13 python3.12 $(wildcard /root/.pyenv/versions/3.1[23].*/bin/python3.1[23]); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)

.PHONY: test run lint format lock clean

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.12 found (tried python3.13, python3.12, /root/.pyenv/versions/3.1[23].*); install one or pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Two pytest processes (pytest-xdist), each taking whole test files (module fixtures are built once):
# many files spend their time waiting on Snakemake or SLURM subprocesses, so two share CI's 2 CPUs well.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# ruff (lint + format, pyproject.toml) on the Python code; snakefmt (.snakefmt.toml) on the Snakefile and rules
SNAKEMAKE_FILES := Snakefile workflow/rules
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --config .snakefmt.toml --check $(SNAKEMAKE_FILES)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/snakefmt --config .snakefmt.toml $(SNAKEMAKE_FILES)

# The whole workflow on config/config.yaml; a second run with nothing changed does nothing.
run: $(STAMP)
	$(VENV)/bin/snakemake --cores all
	$(VENV)/bin/snakemake --report results/report.zip
	@echo "Reports: $(CURDIR)/results/index.html (per dataset and q bin: results/<dataset>/<q folder>/report.html)"
	@echo "Snakemake report: $(CURDIR)/results/report.zip (unzip it and open report/report.html)"

# requirements.lock from pyproject.toml (dependencies, the test and lint extras) for CPython 3.12 on Linux,
# with the sha256 of every file of each release. Pins already in the file are kept where they still
# satisfy pyproject.toml; `make lock UPGRADE=1` takes the newest releases instead. uv runs from a
# throwaway venv.
UV_VERSION := 0.13.9
lock:
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.12 found; pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(PYTHON) -m venv "$$tmp" && \
	"$$tmp/bin/pip" install -q uv==$(UV_VERSION) && \
	"$$tmp/bin/uv" pip compile pyproject.toml --extra test --extra lint --generate-hashes \
		--python-version 3.12 --python-platform linux --custom-compile-command 'make lock' \
		$(if $(UPGRADE),--upgrade) --output-file requirements.lock

clean:
	rm -rf $(VENV) .cache results logs resources .snakemake
