"""PLAYGROUND_LOG_FORMAT: ``json`` makes every line a real web process writes a JSON object,
the request's id among its fields; a value that is neither ``plain`` nor ``json`` stops every
process at its start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from playground.lib import paths
from tests.stack import web_process


def _start(tmp_path: Path, log_format: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, as every process does at its start."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGROUND_", "DATABASE_"))}
    keep.update(DJANGO_SETTINGS_MODULE="playground.settings",
                PLAYGROUND_VAR_DIR=str(tmp_path / "var"),
                PLAYGROUND_LOG_FORMAT=log_format)  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=paths.REPO_DIR, env=keep,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_log_format_other_than_plain_or_json_stops_the_process(tmp_path: Path) -> None:
    for bad in ["xml", "plain,json"]:
        done = _start(tmp_path, bad)
        assert done.returncode != 0, bad
        assert "ImproperlyConfigured: PLAYGROUND_LOG_FORMAT must be plain" in done.stderr
        assert f"not {bad!r}" in done.stderr
    done = _start(tmp_path, "JSON")  # the case does not matter
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.django_db(transaction=True)
def test_every_line_of_a_web_process_is_json_with_the_request_id(tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    with web_process({"PLAYGROUND_LOG_FORMAT": "json"}, log=log) as (port, _pid):
        answer = httpx.get(
            f"http://127.0.0.1:{port}/no-such-page/",
            headers={"X-Request-ID": "json-click-1"},
            timeout=10,
        )
        assert answer.status_code == 404
        assert answer.headers["X-Request-ID"] == "json-click-1"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each one parses, uvicorn's too
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    not_found = [r for r in records if r["message"] == "Not Found: /no-such-page/"]
    assert len(not_found) == 1
    assert not_found[0]["request_id"] == "json-click-1"
    assert not_found[0]["logger"] == "django.request"
    assert any(r["logger"] == "uvicorn.access" for r in records)
