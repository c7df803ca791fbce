"""The load harness (bench/load_test.py) run for real, briefly: the whole product, a class of
students through locust (sign in, item, run, verdict, answer) and a few viewers of the shared
link; every pass gets its verdict and nothing errs. `make test-full` only (about a minute)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.lib import paths

pytestmark = [pytest.mark.slow, pytest.mark.full_only]


def test_a_short_load_run_gets_every_verdict(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "bench/load_test.py", "--sandbox", "1", "--repeats", "1",
         "--rates", "1", "--step-s", "10", "--viewers", "3", "--json", str(out)],
        cwd=paths.REPO_DIR, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (step,) = json.loads(out.read_text())["1"][0]
    assert step["passes"] >= 8, step  # one a second for 10 s, give or take the start
    assert step["errors"] == 0, step
    assert 0 < step["p95"] < 30, step
    assert step["cpu"]["web"] > 0, step
