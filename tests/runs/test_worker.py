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
from tests.stack import stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SERVER_ERROR = "The server failed while running this; the error was logged. Try again later."


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A sandbox worker on a queue of its own (so a developer's `make run` cannot take the task)."""
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    # The worker's only queue is its sandbox queue: it may start sandboxes (any other worker
    # refuses to: runs/signals.py).
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_SANDBOX_QUEUE": queue,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", "threads", "--concurrency", "2", "--without-mingle", "--without-gossip",
         "-n", f"{queue}@%h", "--loglevel", "INFO"],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield queue
    stop(proc)


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


# Programs that write hostile messages on the protocol descriptor (fd 3 in the sandbox).
HOSTILE = {
    "deep nesting": "import os\nos.write(3, b'{\"a\":' + b'[' * 100_000 + b'\\n')\n",
    "wrong type": 'import os\nos.write(3, b\'{"final":{"status":[]}}\\n\')\n',
    "many containers": "import os\nos.write(3, b'[' + b'{},' * 1_300_000 + b'{}]\\n')\n",
    "huge line": "import os\nos.write(3, b'[' * 6_000_000)\n",
    "forged fatal": (
        'import os, sys\nos.write(3, b\'{"fatal":"x\\\\nERROR y"}\\n\')\nsys.exit(1)\n'
    ),
}


def _wait(runs: list[Run], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(Run.objects.get(pk=run.pk).is_finished for run in runs):
            return
        time.sleep(0.2)


def test_hostile_output_and_errors_never_leave_a_run_running(worker_queue: str) -> None:
    """Before, the parent's parsing raised on most of these (the task died, the run stayed
    "running" for ever and was run again at every worker restart)."""
    runs = {}
    for name, source in HOSTILE.items():
        program = ProgramFactory(source=source, call="", is_public=True)
        runs[name] = Run.objects.create(program=program, source=source)
    # Limits nothing in the product would store, but nothing stops: the wall clock overflows
    # the worker's select() (an OverflowError, not a sandbox problem).
    program = ProgramFactory(source="x = 1\n", call="", is_public=True)
    absurd = Run.objects.create(program=program, source=program.source, limits={"cpu_s": 10**30})
    for run in [*runs.values(), absurd]:
        execute_real_run.apply_async(args=[run.pk], queue=worker_queue)
    _wait([*runs.values(), absurd], 45)

    for name, run in runs.items():
        run.refresh_from_db()
        assert run.status == Run.Status.DONE, (name, run.status, run.error)
        trace = run.real_trace
        assert trace is not None
        assert trace.status == "crash", name
        message = trace.data["error"]["message"]
        assert message.startswith("The program wrote something that is not a trace"), message
    absurd.refresh_from_db()
    assert absurd.status == Run.Status.FAILED
    assert absurd.error == SERVER_ERROR
