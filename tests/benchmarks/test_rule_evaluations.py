"""Evaluations under a semantic rule end to end (issue 21), from the command line as a user runs
them: the oracle (it answers from the real trace, under the rule the prompt states) scores 100%
under the rule, and a model that answers what Python normally returns is wrong under it,
counted as following its priors, paired with its standard twin."""

from __future__ import annotations

import json
import os
import signal
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from pytest_django.fixtures import Settings

from playground.benchmarks import services
from playground.benchmarks.models import Evaluation, Result
from playground.lib import paths
from playground.programs.library import import_library
from playground.programs.models import Program
from tests.benchmarks.test_evaluations import _wait_until, _worker
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server


def _use(monkeypatch: pytest.MonkeyPatch, name: str, base_url: str, model: str) -> None:
    entry = {"name": name, "base_url": base_url, "model": model}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))


def _bench(*args: Any, **options: Any) -> dict[str, Any]:
    out = StringIO()
    call_command("bench", *args, json=True, stdout=out, **options)
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_the_oracle_scores_everything_under_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import_library()
    with oracle_server(Oracle()) as model:
        _use(monkeypatch, model.name, model.base_url, model.model)
        under = _bench("cruxeval", method="direct", model="oracle", limit=20, rule="swap-lt-gt")
        standard = _bench("cruxeval", method="direct", model="oracle", limit=20)
    assert under["rule"] == "swap-lt-gt"
    # Of the first 20 items, 3 have a < > <= or >= to swap; the rest are left out, counted.
    # Under the rule sample_7 pops from an empty list: no value to predict, counted apart.
    assert (under["n"], under["no_value"], under["not_offered"]) == (2, 1, 17)
    # Right on both, but sample_12's output is its input, which counts as wrong (LiveCodeBench's
    # rule: a prediction that repeats an argument), even the oracle's.
    assert (under["passed"], under["leakage"], under["errors"]) == (1, 1, 0)
    results = Result.objects.filter(evaluation_id=under["id"]).select_related("run")
    outcome = {r.item_key: (r.score_status, r.leakage, r.changed) for r in results}
    # sample_18's value changes under the rule, sample_12's does not.
    assert outcome == {
        "sample_7": ("no_value", False, True),
        "sample_12": ("fail", True, False),
        "sample_18": ("pass", False, True),
    }
    for result in results:
        assert result.run is not None
        assert result.run.rule == "swap-lt-gt"
        real, usual = result.run.real_trace, result.run.standard_trace
        assert real is not None
        assert usual is not None
        assert (real.data.get("result") != usual.data.get("result")) == result.changed
    # The standard run pairs with it: the same items, both right everywhere.
    [row] = standard["paired"]
    assert (row["rule"], row["rule_id"], row["standard_id"]) == (
        "swap-lt-gt", under["id"], standard["id"],
    )  # fmt: skip
    assert (row["n"], row["changed"]["n"], row["left_out"]) == (2, 1, 1)
    assert (row["only_standard_right"], row["only_rule_right"], row["p"]) == (0, 0, 1.0)
    assert row["under_rule"]["accuracy"] == row["standard"]["accuracy"] == 0.5
    assert row["changed"]["under_rule"]["accuracy"] == 1.0
    assert row["complete"] is True


SOURCE_SUM = (
    "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
)
SOURCE_DEC = "def f(x):\n    return x - 1\n"


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_chain_of_code_is_evaluated_under_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chain of Code under swap-lt-gt: Python runs every line of these programs under the rule,
    so they never reach the model (counted apart, as without a rule); sample_7's call raises
    under the rule (a pop from an empty list: Chain of Code asks the model about that line), and
    has no value to predict."""
    import_library()
    with oracle_server(Oracle()) as model:
        _use(monkeypatch, model.name, model.base_url, model.model)
        under = _bench("cruxeval", method="coc", model="oracle", limit=20, rule="swap-lt-gt")
    assert (under["rule"], under["method"]) == ("swap-lt-gt", "coc")
    results = Result.objects.filter(evaluation_id=under["id"]).select_related("run")
    outcome = {r.item_key: (r.score_status, r.changed) for r in results}
    assert outcome == {
        "sample_7": ("no_value", True),
        "sample_12": ("no_model", False),
        "sample_18": ("no_model", True),
    }
    for result in results:
        assert result.run is not None
        assert result.run.rule == "swap-lt-gt"
        real = result.run.real_trace
        assert real is not None
        assert real.data["rule"] == "swap-lt-gt"
        if result.score_status == "no_model":  # the run under the rule's own value
            emulated = result.run.emulated_trace
            assert emulated is not None
            assert emulated.data["rule"] == "swap-lt-gt"
            assert result.run.model_calls == 0
            assert result.run.prediction == real.data["result"]


@pytest.mark.django_db(transaction=True)
def test_an_answer_from_priors_is_wrong_under_the_rule_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # f(4) is 6 in Python and -6 when + and - swap; f(10) is 9, and 11 under the rule. The
    # model answers 6 to everything: right once in Python, and under the rule wrong with
    # Python's own answer once (its prior) and wrong otherwise once.
    programs = [
        Program.objects.create(title="sum", source=SOURCE_SUM, call="f(4)"),
        Program.objects.create(title="dec", source=SOURCE_DEC, call="f(10)"),
    ]
    ids = [p.pk for p in programs]
    answer = streaming([chunk("[ANSWER]\n6\n[/ANSWER]", finish="stop"), b"data: [DONE]\n\n"])
    with fake_server(answer) as (model, seen):
        _use(monkeypatch, model.name, model.base_url, model.model)
        standard = _bench("programs", program=ids, method="direct", model=model.name)
        under = _bench(
            "programs", program=ids, method="direct", model=model.name, rule="swap-add-sub"
        )
        out = StringIO()
        call_command(
            "bench", "programs", program=ids, method="direct", model=model.name,
            rule="swap-add-sub", stdout=out,
        )  # fmt: skip
    assert seen["requests"] == 6
    assert (standard["passed"], standard["n"]) == (1, 2)
    assert (under["passed"], under["n"], under["not_offered"]) == (0, 2, 0)
    priors = dict(Result.objects.filter(evaluation_id=under["id"]).values_list("item_key", "prior"))
    assert priors == {"sum": True, "dec": False}
    assert set(
        Result.objects.filter(evaluation_id=under["id"]).values_list("changed", flat=True)
    ) == {True}
    # The standard evaluation has no prior to check.
    assert set(
        Result.objects.filter(evaluation_id=standard["id"]).values_list("prior", flat=True)
    ) == {None}
    [row] = under["paired"]
    assert row["standard_id"] == standard["id"]
    assert (row["standard"]["passed"], row["under_rule"]["passed"]) == (1, 0)
    assert (row["only_standard_right"], row["only_rule_right"], row["p"]) == (1, 0, 1.0)
    assert row["difference"]["value"] == -0.5
    assert row["prior_following"] == {"count": 1, "checked": 2, "of": 2}
    # As the command prints it; the third evaluation pairs with the same twin.
    text = out.getvalue()
    assert "under swap-add-sub: 0/2 = 0.0%" in text
    assert "swap-add-sub vs standard" in text
    assert "2 items both scored: 50.0% -> 0.0%, difference -50.0%" in text
    assert "on the 2 whose outcome the rule changed: 50.0% -> 0.0%" in text
    assert "McNemar exact p = 1" in text
    assert "1 of 2 wrong answers are what Python normally returns" in text
    assert Evaluation.objects.filter(rule="swap-add-sub").count() == 2
    # Scored again under the current rules: the same scores and priors.
    rescored = StringIO()
    call_command("bench", "rescore", str(under["id"]), json=True, stdout=rescored)
    assert json.loads(rescored.getvalue())["rescored"]["changed"] == 0
    assert dict(
        Result.objects.filter(evaluation_id=under["id"]).values_list("item_key", "prior")
    ) == {"sum": True, "dec": False}


@pytest.mark.django_db(transaction=True)
def test_input_prediction_under_a_rule_with_the_oracle_and_from_priors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_library()
    # The oracle answers each program's own call: under the rule it returns the output shown.
    calls = {p.source.rstrip(): p.call for p in Program.objects.filter(dataset="cruxeval")}
    with oracle_server(Oracle(calls=calls)) as model:
        _use(monkeypatch, model.name, model.base_url, model.model)
        under = _bench(
            "cruxeval", method="input-direct", model="oracle", limit=20, rule="swap-lt-gt"
        )
    # Right on the two items with a value; sample_7 raises under the rule.
    assert (under["rules"], under["task"]) == ("site-1", "input")
    assert (under["n"], under["passed"], under["no_value"], under["errors"]) == (2, 2, 1, 0)
    # A model that inverts f as Python would: f(x) is x - 1, 11 under swap-add-sub (for f(10));
    # it answers f(12), right in Python (12 - 1), wrong under the rule (12 + 1).
    program = Program.objects.create(title="dec", source=SOURCE_DEC, call="f(10)")
    answer = streaming([chunk("f(12)\n[/ANSWER]", finish="stop"), b"data: [DONE]\n\n"])
    with fake_server(answer) as (fake, _):
        _use(monkeypatch, fake.name, fake.base_url, fake.model)
        wrong = _bench(
            "programs", program=[program.pk], method="input-direct", model=fake.name,
            rule="swap-add-sub",
        )  # fmt: skip
    [result] = Result.objects.filter(evaluation_id=wrong["id"])
    assert (result.score_status, result.prior, result.changed) == ("fail", True, True)
    assert "11 == f(12) under swap-add-sub is False" in result.reason
    # Scored again, the same (under its rule, the check of Python's semantics beside).
    out = StringIO()
    call_command("bench", "rescore", str(wrong["id"]), json=True, stdout=out)
    assert json.loads(out.getvalue())["rescored"]["changed"] == 0
    result.refresh_from_db()
    assert (result.score_status, result.prior) == ("fail", True)


@pytest.mark.slow
@pytest.mark.full_only  # two Celery workers start (about 20 s); the command line's form above
@pytest.mark.django_db(transaction=True)
def test_on_the_workers_the_checks_run_under_the_rule_on_the_sandbox_queue(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """As the site runs an evaluation: the batch worker may start no sandbox, so the real run,
    the check under the rule and the check under Python's own semantics all go to the sandbox
    queue's worker, each with its rule (or none)."""
    tag = f"{os.getpid()}-{time.monotonic_ns() % 10**6}"
    batch, sandbox_queue = f"batch-test-{tag}", f"sandbox-test-{tag}"
    settings.PLAYGROUND_BATCH_QUEUE = batch
    programs = [
        Program.objects.create(title="sum", source=SOURCE_SUM, call="f(4)"),
        Program.objects.create(title="dec", source=SOURCE_DEC, call="f(10)"),
    ]
    answer = streaming([chunk("[ANSWER]\n6\n[/ANSWER]", finish="stop"), b"data: [DONE]\n\n"])
    with fake_server(answer) as (model, _):
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        env = {
            **os.environ, "PLAYGROUND_MODELS": json.dumps([entry]),
            "DATABASE_URL": paths.database_url(connection.settings_dict),
            "PLAYGROUND_SANDBOX_QUEUE": sandbox_queue, "PLAYGROUND_BATCH_QUEUE": batch,
        }  # fmt: skip
        monkeypatch.setenv("PLAYGROUND_MODELS", env["PLAYGROUND_MODELS"])
        workers = [_worker(sandbox_queue, env, pool="prefork", concurrency=2),
                   _worker(batch, env, concurrency=2)]  # fmt: skip
        try:
            evaluation = services.create_evaluation(
                dataset="programs", subset=[str(p.pk) for p in programs], method="direct",
                model=model.name, rule="swap-add-sub", start=False,
            )  # fmt: skip
            services.send(evaluation.pk, "run")
            _wait_until(lambda: Evaluation.objects.get(pk=evaluation.pk).status == "done", 120)
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
    rows = Result.objects.filter(evaluation=evaluation)
    assert {r.item_key: (r.score_status, r.prior, r.changed) for r in rows} == {
        "sum": ("fail", True, True), "dec": ("fail", False, True),
    }  # fmt: skip
    assert "== 6 is False, not True" in rows.get(item_key="sum").reason
