"""A real Celery worker process picks a run up from Redis and stores its trace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection

from playground.lib import paths
from playground.runs.models import Run
from playground.runs.tasks import execute_real_run
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A sandbox worker on a queue of its own (so a developer's `make run` cannot take the task)."""
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": paths.database_url(connection.settings_dict)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", "threads", "--concurrency", "2", "--without-mingle", "--without-gossip",
         "-n", f"{queue}@%h", "--loglevel", "INFO"],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield queue
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_worker_runs_the_program_and_stores_the_trace(worker_queue: str) -> None:
    program = ProgramFactory(source="def f(x):\n    return x * 3\n", call="f(14)", is_public=True)
    run = Run.objects.create(program=program, source=program.source, call=program.call)
    execute_real_run.apply_async(args=[run.pk], queue=worker_queue)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            break
        time.sleep(0.2)
    assert run.status == Run.Status.DONE, run.error
    trace = run.real_trace
    assert trace is not None
    assert trace.data["result"] == "42"

    # A redelivered task (acks_late) finds the run finished and leaves it alone.
    assert execute_real_run.run(run.pk) == "skipped"
