# The two commands: `make run` (the whole product, embedded services) and `make test` (CI).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAUNCH := $(PY) -m playground.lib.launcher

.PHONY: run test install system-deps lint typecheck pytest services bench clean

run: install system-deps ## Start PostgreSQL, Redis, migrations, library, web and workers; prints the URL
	@$(LAUNCH) run

test: install system-deps lint typecheck pytest ## Everything CI runs

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# OS packages: bubblewrap, Debian's python3 and libseccomp for the sandbox (make run and the
# tests), Chromium for the end-to-end tests.
system-deps:
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	test -x /usr/bin/python3 || missing="$$missing python3"; \
	test -e /usr/lib/$$(uname -m)-linux-gnu/libseccomp.so.2 || missing="$$missing libseccomp2"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing OS packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing OS packages:$$missing. Install them as root: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# pytest exits 5 when no test ran; make treats any non-zero exit as a failure.
pytest: install
	HF_HUB_OFFLINE=1 $(LAUNCH) exec -- $(VENV)/bin/pytest $(PYTEST_ARGS)

services: install ## Only PostgreSQL and Redis (for running pytest or manage.py by hand)
	@$(LAUNCH) services

bench: install
	$(LAUNCH) exec -- $(PY) bench/library_import.py

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache .pytest_cache
