"""Evaluations end to end: an always-right model scores 100%, a model answering garbage 0%
without errors, an evaluation killed mid-way (a real SIGKILL) finishes on resume with every
item scored exactly once, and the embedded model runs 20 CRUXEval items from the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from pytest_django.fixtures import Settings

from playground.benchmarks import services
from playground.benchmarks.models import Evaluation, Result
from playground.lib import paths
from playground.llm.registry import ModelSpec
from playground.programs.library import import_library
from playground.runs.models import Run
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server

ROOT = Path(__file__).resolve().parents[2]


def _use(monkeypatch: pytest.MonkeyPatch, model: ModelSpec) -> dict[str, str]:
    entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
    value = json.dumps([entry])
    monkeypatch.setenv("PLAYGROUND_MODELS", value)
    return {"PLAYGROUND_MODELS": value}


def _bench(*args: Any, **options: Any) -> dict[str, Any]:
    out = StringIO()
    call_command("bench", *args, json=True, stdout=out, **options)
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_an_oracle_scores_everything_on_cruxeval(monkeypatch: pytest.MonkeyPatch) -> None:
    import_library()
    with oracle_server(Oracle()) as model:
        _use(monkeypatch, model)
        summary = _bench("cruxeval", method="direct", model="oracle", limit=20, concurrency=4)
    assert summary["dataset"] == "cruxeval"
    assert summary["method"] == "direct"
    assert summary["model"] == "oracle"
    # Right on every item, except that a prediction equal to an argument of the call counts as
    # wrong (LiveCodeBench's rule), even the oracle's on items whose output is their input.
    leaked = set(Result.objects.filter(leakage=True).values_list("item_key", flat=True))
    failed = list(
        Result.objects.filter(passed=False, leakage=False).values_list("item_key", "reason")
    )
    assert failed == []
    assert summary["n"] == 20
    assert summary["passed"] == 20 - len(leaked)
    assert summary["leakage"] == len(leaked)
    assert "sample_2" in leaked  # f('hbtofdeiequ') == 'hbtofdeiequ'
    low, high = summary["ci95"]
    assert low < summary["accuracy"] < high
    assert summary["errors"] == 0
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "done"
    # Every item has its run, judged like any run on the site.
    for result in Result.objects.select_related("run"):
        assert result.run is not None
        assert result.run.verdict["status"] == "correct"


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_garbage_scores_zero_without_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import_library()
    script = streaming([chunk("I am not sure. {]", finish="stop"), b"data: [DONE]\n\n"])
    with fake_server(script) as (model, seen):
        _use(monkeypatch, model)
        summary = _bench("cruxeval", method="cot", model=model.name, limit=10)
    assert (summary["n"], summary["passed"], summary["errors"]) == (10, 0, 0)
    assert seen["requests"] == 10
    reasons = set(Result.objects.values_list("score_status", flat=True))
    assert reasons == {"unparsable"}


@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_a_killed_evaluation_resumes_and_scores_each_item_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_library()
    oracle = Oracle()
    with oracle_server(oracle) as model:
        env = {
            **os.environ,
            **_use(monkeypatch, model),
            "DATABASE_URL": paths.database_url(connection.settings_dict),
            "PLAYGROUND_LEASE_S": "3",  # its hold on the evaluation lapses 3 s after the kill
        }
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "bench", "cruxeval", "--method", "trace",
             "--model", "oracle", "--limit", "30", "--concurrency", "2"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Result.objects.filter(status="done").count() >= 8:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait()
        evaluation = Evaluation.objects.get()
        before = {r.pk: r.scored_at for r in Result.objects.filter(status="done")}
        assert 8 <= len(before) < 30, "the kill came too late to test anything"
        # Until the dead process's hold lapses, resuming is refused (it might be alive).
        with pytest.raises(CommandError, match="being worked on"):
            _bench(resume=evaluation.pk)
        _wait_until(lambda: not services.held_elsewhere(evaluation), 10)
        summary = _bench(resume=evaluation.pk)
    assert (summary["n"], summary["total"], summary["errors"]) == (30, 30, 0)
    assert summary["passed"] + summary["leakage"] == 30  # the oracle is right on every item
    results = list(Result.objects.all())
    assert len(results) == 30
    assert all(r.status == "done" for r in results)
    # Scored once: what was scored before the kill was not scored again.
    for result in results:
        if result.pk in before:
            assert result.scored_at == before[result.pk]
    assert Evaluation.objects.get().status == "done"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_the_embedded_model_runs_twenty_cruxeval_items_from_the_cli(
    embedded_llm: ModelSpec, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    """Twenty items under `make test-full`, five in `make test` (the plumbing is the point)."""
    import_library()
    _use(monkeypatch, embedded_llm)
    n = 20 if full else 5
    summary = _bench("cruxeval", method="direct", model=embedded_llm.name, limit=n, max_tokens=64)
    assert summary["n"] == n
    assert 0 <= summary["passed"] <= n
    errors = list(Result.objects.filter(score_status="error").values_list("reason", flat=True))
    assert summary["errors"] == 0, errors[:3]
    assert summary["url"].startswith("/evaluations/")


def _wait_until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _worker(
    queue: str, env: dict[str, str], pool: str = "threads", concurrency: int = 1,
    log: Path | None = None,
) -> subprocess.Popen[str]:  # fmt: skip
    out = log.open("w") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", pool, "--concurrency", str(concurrency), "--without-mingle",
         "--without-gossip", "-n", f"{queue}-{time.monotonic_ns() % 10**6}@%h",
         "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_two_batch_workers_share_an_evaluation_and_a_killed_one_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    """One evaluation fanned out over two batch workers (and a sandbox worker for its code): one
    is killed midway; the other goes on, the reaper's sweep puts the dead one's items back
    once their leases lapse, and every item is scored exactly once."""
    import_library()
    tag = f"{os.getpid()}-{time.monotonic_ns() % 10**6}"
    batch, sandbox_queue = f"batch-test-{tag}", f"sandbox-test-{tag}"
    settings.PLAYGROUND_BATCH_QUEUE = batch
    with oracle_server(Oracle(latency=0.3)) as model:
        env = {
            **os.environ,
            **_use(monkeypatch, model),
            "DATABASE_URL": paths.database_url(connection.settings_dict),
            "PLAYGROUND_LEASE_S": "3",
            "PLAYGROUND_SANDBOX_QUEUE": sandbox_queue,
            "PLAYGROUND_BATCH_QUEUE": batch,
        }
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        workers = [_worker(sandbox_queue, env, pool="prefork", concurrency=2)]
        try:
            evaluation = services.create_evaluation(
                dataset="cruxeval", method="direct", model="oracle", limit=40, concurrency=4,
                start=False,
            )  # fmt: skip
            first = _worker(batch, env, concurrency=2, log=logs[0])
            workers.append(_worker(batch, env, concurrency=2, log=logs[1]))
            services.send(evaluation.pk, "run")
            _wait_until(lambda: Result.objects.filter(status="done").count() >= 10, 120)
            os.killpg(first.pid, signal.SIGKILL)  # one worker dies mid-evaluation
            first.wait()
            before = {r.pk: r.scored_at for r in Result.objects.filter(status="done")}
            assert 10 <= len(before) < 40, "the kill came too late to test anything"

            def swept_and_done() -> bool:
                services.reap_evaluations()  # what beat's reaper does every 30 s
                return Evaluation.objects.get(pk=evaluation.pk).status == "done"

            _wait_until(swept_and_done, 180)
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
    results = list(Result.objects.filter(evaluation=evaluation))
    assert len(results) == 40
    assert all(r.status == "done" and r.score_status != "error" for r in results)
    for result in results:  # scored once: nothing scored before the kill was scored again
        if result.pk in before:
            assert result.scored_at == before[result.pk]
    # One run per result, even for the items the dead worker had started.
    assert Run.objects.filter(pk__in=[r.run_id for r in results]).count() == 40
    # Both workers did part of it.
    for log in logs:
        assert "evaluate_item" in log.read_text(errors="replace"), log.name


@pytest.mark.django_db
def test_an_evaluation_is_started_from_the_site_and_can_be_cancelled(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from django.test import Client
    from django.urls import reverse

    from playground.benchmarks import execution
    from tests.factories import UserFactory

    import_library()
    with oracle_server(Oracle()) as model:
        _use(monkeypatch, model)
        client = Client()
        client.force_login(UserFactory())
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = client.post(
                reverse("benchmarks:start"),
                {"dataset": "cruxeval", "method": "direct", "model": "oracle", "limit": "12",
                 "samples": "1", "seed": "0", "concurrency": "2"},
            )  # fmt: skip
        evaluation = Evaluation.objects.get()
        assert response.status_code == 302
        assert response["Location"] == evaluation.get_absolute_url()
        assert len(queued) == 1  # run_evaluation, sent once the rows are committed
        assert evaluation.total == 12
        page = client.get(evaluation.get_absolute_url()).content.decode()
        assert "0 / 12" in page
        assert Client().get(evaluation.get_absolute_url()).status_code == 404  # not finished
        client.post(reverse("benchmarks:cancel", args=[evaluation.pk]))
        assert execution.execute(evaluation.pk) == "cancelled"
    assert Result.objects.filter(status="done").count() == 0  # nothing ran after the cancel
    refused = client.post(
        reverse("benchmarks:start"),
        {"dataset": "p3", "method": "trace", "model": "oracle"},
        follow=True,
    )
    assert "does not apply" in refused.content.decode()


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_p3_is_scored_by_sat_in_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    from playground import sandbox
    from playground.emulation.puzzle import PRELUDE
    from playground.programs.models import Puzzle

    import_library()
    puzzles = list(Puzzle.objects.order_by("source_index")[:3])
    solutions = {}
    for puzzle in puzzles[:2]:  # the oracle knows two of the three
        real = sandbox.run(PRELUDE + puzzle.reference_solutions()[0], call="sol()")
        solutions[puzzle.sat] = real["result"]
    with oracle_server(Oracle(solutions=solutions)) as model:
        _use(monkeypatch, model)
        summary = _bench("p3", method="puzzle", model="oracle", limit=3)
    assert (summary["n"], summary["passed"], summary["errors"]) == (3, 2, 0)
    statuses = dict(Result.objects.values_list("item_key", "score_status"))
    assert statuses == {puzzles[0].name: "pass", puzzles[1].name: "pass", puzzles[2].name: "fail"}


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_cruxeval_input_prediction_end_to_end_with_an_oracle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CRUXEval-I from the CLI: the oracle answers each item's own call (a right input), and
    three items get a wrong one, a call that raises and no call at all; each is checked the
    official way (``assert <output> == <call>`` in the sandbox), the last skipped."""
    from playground.programs.models import Dataset as ProgramDataset
    from playground.programs.models import Program

    import_library()
    programs = list(Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).order_by("id")[:12])
    calls = {p.source.rstrip(): p.call for p in programs}
    wrong, raises, none = programs[3], programs[5], programs[7]
    calls[wrong.source.rstrip()] = "f(" + ")"  # no argument: a TypeError in the check
    calls[raises.source.rstrip()] = "f(*[1] * 40)"
    calls[none.source.rstrip()] = "the answer"
    with pytest.raises(Exception, match="does not do input prediction"):
        _bench("cruxeval", method="direct", task=["input"], model="oracle", limit=2)
    with oracle_server(Oracle(calls=calls)) as model:
        _use(monkeypatch, model)
        summary = _bench(
            "cruxeval", method="input-direct", task=["input"], model="oracle", limit=12
        )
    assert (summary["dataset"], summary["task"], summary["method"]) == (
        "cruxeval",
        "input",
        "input-direct",
    )
    assert summary["rules"].startswith("official")
    assert (summary["n"], summary["passed"], summary["errors"]) == (12, 9, 0)
    results = {r.item_key: r for r in Result.objects.select_related("run")}
    assert results[none.external_id].score_status == "skipped"
    assert "no call of f" in results[none.external_id].reason
    for program in (wrong, raises):
        assert results[program.external_id].score_status == "fail"
    right = results[programs[0].external_id]
    assert right.passed
    assert right.prediction == programs[0].call
    assert right.reason.startswith(programs[0].expected_output[:20])
    assert right.reason.endswith(" holds.")
    # Each run is a normal run: the model's call ran in the sandbox and was judged.
    assert right.run is not None
    assert right.run.verdict["status"] == "correct"
    assert right.run.details["output_from"] == "data set"
    evaluation = Evaluation.objects.get()
    assert evaluation.benchmark == "CRUXEval-I input prediction"
