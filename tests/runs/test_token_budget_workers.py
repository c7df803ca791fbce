"""The token budget holds across worker processes: two real Celery workers run six runs of one
requester at once (sixteen under ``--full``) against the real embedded model, with a budget that
covers only some of them. Every call reserves its most (its prompt and its whole answer limit)
in Redis before it is sent, so the tokens counted for that requester never pass the budget; runs
that found it spent fail with the reason, without asking the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from pytest_django.fixtures import Settings

from playground.lib import paths, ratelimits
from playground.llm.registry import ModelSpec
from playground.programs.models import Program
from playground.runs.models import Run
from playground.runs.services import start_run
from playground.runs.tasks import execute_emulation, execute_real_run
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BUDGET = 1500


@pytest.fixture
def two_workers(embedded_llm: ModelSpec, tmp_path: Path) -> Iterator[tuple[str, list[Path]]]:
    """Two worker processes on a queue of their own, with the embedded model and the budget."""
    queue = f"test-budget-{uuid.uuid4().hex[:8]}"
    model = {
        "name": embedded_llm.name,
        "base_url": embedded_llm.base_url,
        "model": embedded_llm.model,
        "context_length": embedded_llm.context_length,
        "json_schema": "json_object",
        "tokenizer": "llama.cpp",
    }
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_MODELS": json.dumps([model]),
        "PLAYGROUND_LIMITS": f"model_tokens.user={BUDGET}/h",
        # Their one queue is the sandbox queue: they may run the programs too.
        "PLAYGROUND_SANDBOX_QUEUE": queue,
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = []
    for i, log in enumerate(logs):
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "playground",
                        "worker",
                        "-Q",
                        queue,
                        "--pool",
                        "threads",
                        "--concurrency",
                        "2",
                        "--without-mingle",
                        "--without-gossip",
                        "-n",
                        f"{queue}-{i}@%h",
                        "--loglevel",
                        "INFO",
                    ],
                    cwd=paths.REPO_DIR,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    yield queue, logs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_two_workers_never_spend_past_one_requesters_budget(
    two_workers: tuple[str, list[Path]], embedded_llm: ModelSpec, settings: Settings, full: bool
) -> None:
    queue, logs = two_workers
    runs_at_once = 16 if full else 6
    settings.PLAYGROUND_LIMITS = ratelimits.table("load-test", {"model_tokens.user": f"{BUDGET}/h"})
    user = UserFactory()
    key = f"user:{user.pk}"
    ratelimits.spend("model_tokens.user", key, -ratelimits.used("model_tokens.user", key))
    program = Program.objects.create(
        title="sum", source="def f(xs):\n    return sum(xs) * 2\n", call="f([1, 2, 3])", owner=user
    )
    runs = [
        start_run(
            program=program,
            user=user,
            anon_token=None,
            method="direct",
            model=embedded_llm.name,
            max_tokens=48,
            enqueue=False,
        )
        for _ in range(runs_at_once)
    ]
    for run in runs:
        execute_real_run.apply_async(args=[run.pk], queue=queue)
        execute_emulation.apply_async(args=[run.pk], queue=queue)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (
            Run.objects.filter(pk__in=[r.pk for r in runs], status__in=Run.FINISHED).count()
            == runs_at_once
        ):
            break
        time.sleep(0.5)
    finished = list(Run.objects.filter(pk__in=[r.pk for r in runs]).order_by("pk"))
    assert all(r.is_finished for r in finished), [(r.pk, r.status) for r in finished]
    done = [r for r in finished if r.status == Run.Status.DONE]
    refused = [r for r in finished if r.status == Run.Status.FAILED]
    assert done, "the budget covers some runs"
    assert refused, "and not all of them"
    for run in refused:
        assert run.error.startswith("This run stopped before its next model call. Too many ")
        assert run.model_calls == 0  # the one call of "direct" was never sent
    spent = ratelimits.used("model_tokens.user", key)
    print(f"budget {BUDGET}: {len(done)} runs done, {len(refused)} refused, {spent} counted")
    assert spent <= BUDGET, spent
    # Both processes did the work.
    for log in logs:
        assert "execute_emulation" in log.read_text(errors="replace"), log.read_text()[-2000:]
