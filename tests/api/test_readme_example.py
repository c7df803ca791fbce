"""The README's "Use it from Python" example, taken from README.md as it is and run against the
whole site (web, workers, the embedded model: tests/stack.py) with a personal API token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from playground.lib import paths
from tests.stack import Stack

pytestmark = [pytest.mark.slow]
MAKE_TOKEN = """
import django; django.setup()
from django.contrib.auth import get_user_model
from playground.accounts.tokens import create_token
user = get_user_model().objects.create_user("scripter", password="not used here")
print(create_token(user=user, name="README example", scope="run")[1])
"""


def readme_example() -> str:
    """The first Python block under the README's "Use it from Python" heading."""
    readme = (paths.REPO_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Use it from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no ```python block under 'Use it from Python'"
    return match.group(1)


def _stack_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(PLAYGROUND_VAR_DIR=str(stack.var_dir), DJANGO_SETTINGS_MODULE="playground.settings")
    return env


def test_the_readme_python_example_runs_against_the_live_site(stack: Stack) -> None:
    made = subprocess.run(
        [sys.executable, "-c", MAKE_TOKEN], env=_stack_env(stack), cwd=paths.REPO_DIR,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    token = made.stdout.strip().splitlines()[-1]
    env = {
        "PATH": os.environ["PATH"],
        "PLAYGROUND_URL": f"http://127.0.0.1:{stack.port}",
        "PLAYGROUND_TOKEN": token,
    }
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", readme_example()], env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "models: smollm2-135m", done.stdout
    assert lines[1] == "status: done", done.stdout
    assert lines[2] == "real result: 9", done.stdout
    assert lines[3].startswith("the model says: "), done.stdout
    assert re.fullmatch(r"verdict: (correct|wrong|unparsable|unknown)", lines[4]), done.stdout
    print(f"the README example took {time.monotonic() - t0:.1f} s:\n{done.stdout}")

    # Over ASGI too, the token lists its owner's run and follows its event stream to the end.
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=env["PLAYGROUND_URL"], headers=bearer, timeout=30) as api:
        listed = api.get("/api/runs").json()
        assert listed["count"] == 1
        run = listed["results"][0]
        assert (run["status"], run["method"], run["model"]) == ("done", "direct", "smollm2-135m")
        with api.stream("GET", f"/runs/{run['id']}/events") as events:
            assert events.status_code == 200
            body = "".join(events.iter_text())  # a finished run's stream ends by itself
        assert "event: done" in body
        assert httpx.get(f"{env['PLAYGROUND_URL']}/runs/{run['id']}/events").status_code == 404

    # A revoked token ends the script with a clear 401.
    revoke = MAKE_TOKEN.split("user =")[0] + (
        "from playground.accounts.tokens import revoke_all\n"
        "print(revoke_all(get_user_model().objects.get(username='scripter')))\n"
    )
    revoked = subprocess.run(
        [sys.executable, "-c", revoke], env=_stack_env(stack), cwd=paths.REPO_DIR,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert revoked.stdout.strip().endswith("1"), revoked.stderr[-3000:]
    again = subprocess.run(
        [sys.executable, "-c", readme_example()], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert again.returncode != 0
    assert "401 Unauthorized" in again.stderr
