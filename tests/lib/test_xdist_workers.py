"""`make test` runs the suite in two pytest-xdist workers over one embedded PostgreSQL and Redis:
pytest-django gives each worker its own test database, and settings give each its own Redis
database, so one worker's cache, queues, leases and counters never meet the other's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from playground.lib import paths


def _redis_url(**env: str) -> str:
    environment = {
        k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PYTEST_XDIST_WORKER"}
    }
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.REDIS_URL)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**environment, "DJANGO_SETTINGS_MODULE": "playground.settings", **env},
        capture_output=True, text=True, check=True, cwd=paths.REPO_DIR, timeout=60,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("worker", "db"), [("", 0), ("gw0", 1), ("gw1", 2), ("gw11", 12)])
def test_each_worker_has_a_redis_database_of_its_own(
    worker: str, db: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    assert paths.xdist_worker_redis_db() == db


def test_settings_take_the_workers_database_unless_a_redis_url_is_given() -> None:
    assert _redis_url(PYTEST_XDIST_WORKER="gw1") == paths.embedded_redis_url(paths.var_dir(), db=2)
    given = "redis://127.0.0.1:6390/5"
    assert _redis_url(PYTEST_XDIST_WORKER="gw1", REDIS_URL=given) == given


def test_the_users_of_a_costly_shared_fixture_run_on_one_worker() -> None:
    """`--dist loadgroup` keeps the users of a shared costly fixture (the 800 plain CRUXEval
    traces) on one worker, and the rest of their modules by module: apart, each worker paid for
    the fixture (about 40 s each)."""
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            "-p", "tests.lib.print_groups",
            "tests/sandbox/test_cruxeval.py", "tests/sandbox/test_coc.py",
        ],
        capture_output=True, text=True, cwd=paths.REPO_DIR, timeout=120, check=False,
    )  # fmt: skip
    groups = dict(
        line.split("\t", 1)[1].split("\t") for line in done.stdout.splitlines() if "\t" in line
    )
    assert groups, done.stdout + done.stderr
    traces = {
        "tests/sandbox/test_cruxeval.py::test_all_800_cruxeval_programs_return_the_expected_output",
        "tests/sandbox/test_coc.py::"
        "test_fidelity_a_program_with_no_failing_line_traces_as_in_plain_mode",
    }
    assert {groups[n] for n in traces} == {"cruxeval-plain-traces"}
    others = {
        g
        for n, g in groups.items()
        if n.startswith("tests/sandbox/test_coc.py") and n not in traces
    }
    assert others == {"tests/sandbox/test_coc.py"}
