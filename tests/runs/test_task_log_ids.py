"""A run started by a click is followed by one id from the web request to the worker: the
Celery task's log records (JSON, as in production) carry the run's id, the task's id and the
request id of the request that sent it, and the next task of the same pool process carries its
own, not the previous one's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from playground.lib import paths
from playground.runs.models import Run
from playground.runs.tasks import execute_real_run
from tests.factories import ProgramFactory, UserFactory
from tests.stack import stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A sandbox worker as the launcher starts it (prefork) on a queue of its own, logging JSON
    into the file it yields; the run button's task is sent to that queue."""
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    # The route of settings.CELERY_TASK_ROUTES gives way to the task's own queue: a developer's
    # `make run` must not take the task.
    monkeypatch.setattr(execute_real_run, "queue", queue, raising=False)
    monkeypatch.setattr(execute_real_run, "_exec_options", None)
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_SANDBOX_QUEUE": queue,
        "PLAYGROUND_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
             "--pool", "prefork", "--concurrency", "1", "--without-mingle", "--without-gossip",
             "-n", f"{queue}@%h", "--loglevel", "INFO"],
            cwd=paths.REPO_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield log
    finally:
        stop(proc)


def _click_run(client: Client, program_id: int, request_id: str | None) -> tuple[Run, str]:
    headers = {"X-Request-ID": request_id} if request_id else {}
    response = client.post(reverse("runs:start", args=[program_id]), headers=headers)
    assert response.status_code == 302
    run = Run.objects.get(pk=int(response["Location"].strip("/").split("/")[-1]))
    return run, response["X-Request-ID"]


def _finished(run: Run, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run.pk} is still {run.status}")


def _records(log: Path) -> list[dict[str, Any]]:
    """The worker's JSON lines (its start banner is printed, not logged)."""
    records = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_a_runs_task_logs_the_run_and_the_request_that_started_it(worker: Path) -> None:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user, source="def f(x):\n    return x * 3\n", call="f(14)")
    first, first_id = _click_run(client, program.pk, "click-run-a")
    assert first_id == "click-run-a"
    _finished(first)
    second, second_id = _click_run(client, program.pk, None)  # one generated for it
    _finished(second)
    assert first.status == second.status == Run.Status.DONE

    # Celery logs "succeeded" once the task has returned, after it stored the run as done: on a
    # loaded machine that line comes a moment after the run reads as finished.
    deadline = time.monotonic() + 30
    while True:
        records = _records(worker)
        logged = {r.get("run_id") for r in records if "succeeded" in r["message"]}
        if {str(first.pk), str(second.pk)} <= logged or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for run, request_id in [(first, first_id), (second, second_id)]:
        mine = [r for r in records if r.get("run_id") == str(run.pk)]
        # Celery's own "Task ... succeeded" at least, logged while the task works.
        assert any("succeeded" in r["message"] for r in mine), records[-5:]
        for record in mine:
            assert record["request_id"] == request_id, record
            assert record["task_id"] == f"run-{run.pk}-real-0", record
    # Nothing the worker logs outside a task claims one (the ids are reset after each).
    received = [
        r for r in records if r["message"].startswith("Task ") and "received" in r["message"]
    ]
    assert received
    assert not any("run_id" in r or "request_id" in r for r in received)
