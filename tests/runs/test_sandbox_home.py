"""Untrusted code has one home, the sandbox queue's workers: a worker of any other queue refuses to
start a sandbox, and code sent from a process that may not start one runs there instead, with the
same trace, Chain of Code's pauses answered by the sender (which has the model); a job whose
sandbox worker is killed is sent again and finishes."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from pytest_django.fixtures import Settings

from playground import sandbox
from playground.lib import leases, paths
from playground.runs import sandboxing
from playground.runs.tasks import run_sandbox_job
from playground.sandbox.jail import SandboxRefused
from playground.sandbox.lmulator import LMRequest
from tests.stack import children_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

COUNT_FRUITS = """def count_fruits(words):
    count = 0
    for w in words:
        if is_fruit(w):
            count += 1
    return count
"""
FRUITS = {"apple", "pear"}
RULE = "swap-add-sub"


def _worker(queue: str, *, sandbox_queue: str, lease_s: int = 45) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_SANDBOX_QUEUE": sandbox_queue,
        "PLAYGROUND_LEASE_S": str(lease_s),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", "prefork", "--concurrency", "1", "--without-mingle", "--without-gossip",
         "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h", "--loglevel", "INFO"],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )  # fmt: skip


def _stop(*workers: subprocess.Popen[str]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


@contextmanager
def _forbidden_here() -> Iterator[None]:
    """This (test) process as a web process or an llm worker: it may not start a sandbox."""
    sandbox.forbid("the test, acting as an llm worker")
    try:
        yield
    finally:
        sandbox.jail._FORBIDDEN.clear()


def _is_fruit(request: LMRequest) -> str:
    return repr({"__value__": ast.literal_eval(request.locals["w"]) in FRUITS})


def test_a_worker_of_another_queue_refuses_to_start_a_sandbox() -> None:
    queue = f"test-llm-{uuid.uuid4().hex[:8]}"
    worker = _worker(queue, sandbox_queue="sandbox")
    try:
        payload = {"job": uuid.uuid4().hex, "source": "x = 1\n", "call": None, "stdin": "",
                   "limits": {}, "coc": False}  # fmt: skip
        answer = run_sandbox_job.apply_async(args=(payload,), queue=queue).get(timeout=60)
    finally:
        _stop(worker)
    assert answer == {
        "unavailable": f"This process may not run a sandbox (a worker of the queues {queue})."
    }


def test_code_from_a_process_that_may_not_run_it_runs_on_the_sandbox_queue(
    settings: Settings,
) -> None:
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    settings.PLAYGROUND_SANDBOX_QUEUE = queue
    call = "count_fruits(['apple', 'chair', 'pear'])"
    here = sandbox.run(COUNT_FRUITS, call=call, lmulator=_is_fruit)
    plain_here = sandbox.run("def f(x):\n    return [x] * 2\n", call="f(3)")
    worker = _worker(queue, sandbox_queue=queue)
    asked: list[LMRequest] = []

    def lmulator(request: LMRequest) -> str:
        asked.append(request)
        return _is_fruit(request)

    try:
        with _forbidden_here():
            with pytest.raises(SandboxRefused):
                sandbox.run("x = 1\n")
            with pytest.raises(SandboxRefused):
                sandbox.BatchSandbox().run("x = 1\n", None)
            there = sandboxing.run(COUNT_FRUITS, call=call, lmulator=lmulator)
            plain_there = sandboxing.run("def f(x):\n    return [x] * 2\n", call="f(3)")
            # Under a semantic rule (issue 21): the job carries it to the sandbox worker.
            ruled = sandboxing.run("def f(x):\n    return x + 1\n", call="f(3)", rule=RULE)
    finally:
        _stop(worker)
    # Chain of Code: every pause was answered here, where the model is, and the trace is the
    # one a local run gives (timings aside).
    assert there["status"] == "ok", there["error"]
    assert there["result"] == "2"
    assert [r.locals["w"] for r in asked] == ["'apple'", "'chair'", "'pear'"]
    for key in ("status", "result", "steps", "method", "source"):
        assert there[key] == here[key], key
        assert plain_there[key] == plain_here[key], key
    assert there["stats"]["lm_calls"] == 3
    assert (ruled["result"], ruled["rule"]) == ("2", RULE)


def _kill_mid_job(queue: str, kill: Callable[[], None]) -> dict[str, Any]:
    """Send a 1.5 s program from this (forbidden) process to ``queue``, call ``kill`` once a
    worker has taken it, and wait for the trace; what happened: the sends and the trace."""
    outcome: dict[str, Any] = {}
    original = sandboxing.Job._send

    def send(job: sandboxing.Job, attempt: int) -> Any:
        outcome.setdefault("attempts", []).append(attempt)
        outcome["job"] = job
        return original(job, attempt)

    def go() -> None:
        outcome["trace"] = sandboxing.run(
            "import time\ntime.sleep(1.5)\nx = 42\n", limits=sandbox.Limits(wall_s=5)
        )

    try:
        with _forbidden_here():
            sandboxing.Job._send = send  # type: ignore[method-assign]
            thread = threading.Thread(target=go)
            thread.start()
            deadline = time.monotonic() + 60
            while "job" not in outcome or not leases.redis_client().exists(
                outcome["job"].keys["taken"]
            ):
                assert time.monotonic() < deadline, "no worker took the job"
                time.sleep(0.05)
            kill()
            thread.join(90)
    finally:
        sandboxing.Job._send = original  # type: ignore[method-assign]
    return outcome


@pytest.mark.full_only  # the pool-child case below stays in `make test`
def test_a_job_whose_sandbox_worker_is_killed_is_sent_again_and_finishes(
    settings: Settings,
) -> None:
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    settings.PLAYGROUND_SANDBOX_QUEUE = queue
    workers = [_worker(queue, sandbox_queue=queue, lease_s=2)]

    def kill() -> None:
        os.killpg(workers[0].pid, signal.SIGKILL)  # the sandbox worker dies mid-run
        workers[0].wait()
        workers.append(_worker(queue, sandbox_queue=queue, lease_s=2))

    try:
        outcome = _kill_mid_job(queue, kill)
    finally:
        _stop(*workers)
    assert outcome["attempts"] == [1, 2]
    trace = outcome["trace"]
    assert trace["status"] == "ok", trace
    assert trace["steps"][-1]["locals"]["x"] == "42"


def test_a_job_whose_pool_child_is_killed_is_sent_again_and_finishes(settings: Settings) -> None:
    """Only the pool process running the job is killed: Celery hands the job out again at once,
    that copy finds the dead child's lease and returns; the sender waits for the lease to lapse
    and sends the job again."""
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    settings.PLAYGROUND_SANDBOX_QUEUE = queue
    worker = _worker(queue, sandbox_queue=queue, lease_s=2)

    def kill() -> None:
        pool = children_of(worker.pid)
        assert len(pool) == 1, pool
        os.kill(pool[0], signal.SIGKILL)

    try:
        outcome = _kill_mid_job(queue, kill)
    finally:
        _stop(worker)
    assert outcome["attempts"] == [1, 2]
    assert outcome["trace"]["status"] == "ok", outcome["trace"]
    assert outcome["trace"]["steps"][-1]["locals"]["x"] == "42"
