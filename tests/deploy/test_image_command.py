"""The container image's web command is the launcher's, by construction: the image runs
``python -m playground.launcher serve web``, which becomes the very process `make run` starts
(the review of 2026-12 found the image's hand-written uvicorn line missing
``--ws-per-message-deflate false``, compression the streaming benchmark had removed on purpose)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.launcher import processes
from playground.lib import paths
from tests.stack import free_port, web_process

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_starts_the_web_server_through_the_launcher() -> None:
    lines = (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    assert json.loads(cmd.removeprefix("CMD ")) == [
        "python", "-m", "playground.launcher", "serve", "web", "--host", "0.0.0.0",  # noqa: S104
        "--port", "8000",
    ]  # fmt: skip


@pytest.mark.django_db
def test_serve_web_becomes_the_process_that_make_run_starts() -> None:
    with web_process(via_launcher=True) as (port, pid):  # answering /healthz
        # The same pid, now the web server itself, with `make run`'s argv to the letter.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert cmdline == processes("127.0.0.1", port, model=False)["web"]
        assert "--ws-per-message-deflate" in cmdline


def test_serve_refuses_a_process_it_does_not_have(tmp_path: Path) -> None:
    env = {**os.environ, "PLAYGROUND_EMBEDDED_LLM": "off", "PLAYGROUND_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "playground.launcher", "serve", "llm-server"],
        cwd=paths.REPO_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "No process 'llm-server' here" in done.stderr


def test_a_web_process_refuses_to_sign_with_a_key_of_its_own(tmp_path: Path) -> None:
    """PLAYGROUND_SECRET_KEY_UNUSED is for processes that sign nothing (compose's sandbox
    worker); set by mistake on a web process, which signs sessions, it stops the start."""
    env = {
        **os.environ,
        "PLAYGROUND_SECRET_KEY_UNUSED": "true",
        "DATABASE_URL": paths.embedded_database_url(tmp_path),  # never reached
    }
    done = subprocess.run(
        [sys.executable, "-m", "playground.launcher", "serve", "web", "--host", "127.0.0.1",
         "--port", str(free_port())],
        cwd=paths.REPO_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "a web process signs sessions and links" in done.stdout + done.stderr
