"""An evaluation of Chain of Code over programs Python runs alone: those items never reach the
model, so they are counted apart ("no model needed") and never as the model being right, in the
summary, the leaderboard, the detail page, the plots and a paired comparison."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.benchmarks import execution, services
from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.summary import summarise
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

PURE = "def f(xs):\n    return sorted(xs)[::-1]\n"
HELPER = (
    "def count_fruits(words):\n    count = 0\n    for w in words:\n"
    "        if is_fruit(w):\n            count += 1\n    return count\n"
)


def _fruit(line: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {"__value__": variables["w"] in ("'apple'", "'pear'")}


def _text(response: Any) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_items_without_a_model_call_are_counted_apart(
    monkeypatch: pytest.MonkeyPatch, client: Client
) -> None:
    pure = [ProgramFactory(source=PURE, call=f"f([{i}, 3, 1])", is_public=True) for i in range(3)]
    helper = ProgramFactory(
        source=HELPER, call="count_fruits(['apple', 'chair', 'pear'])", is_public=True
    )
    ids = [p.pk for p in [*pure, helper]]
    oracle = Oracle(knowledge=_fruit)
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        coc = services.create_evaluation(
            dataset="programs", subset=ids, method="coc", model="oracle", start=False
        )
        execution.execute(coc.pk)
    assert oracle.seen["lmulator"] == 3  # only the helper's line, once per word

    statuses = dict(Result.objects.filter(evaluation=coc).values_list("index", "score_status"))
    # The helper's item reached the model; the benchmark's own check (the call in the sandbox,
    # where is_fruit does not exist) fails it, as it would any method's answer.
    assert statuses == {0: "no_model", 1: "no_model", 2: "no_model", 3: "fail"}
    assert not Result.objects.filter(score_status="no_model", passed=True).exists()
    summary = summarise(Evaluation.objects.get(pk=coc.pk))
    # One item reached the model: 0/1, not 3/4.
    assert (summary["n"], summary["passed"], summary["no_model"]) == (1, 0, 3)

    # Evaluations of programs are their owner's; make it a CRUXEval one to see the leaderboard.
    Evaluation.objects.filter(pk=coc.pk).update(dataset="cruxeval")
    board = _text(client.get(reverse("benchmarks:leaderboard")))
    assert "+3 without the model" in board
    detail = _text(client.get(reverse("benchmarks:detail", args=[coc.pk])))
    assert "0/1 = 0%" in detail
    assert "3 items needed no model call" in detail
    assert detail.count("no model needed") == 3

    # Paired with another evaluation of the same items, those three are left out of the test.
    other = Evaluation.objects.create(dataset="cruxeval", method="direct", model="x",
                                      status="done")  # fmt: skip
    for result in Result.objects.filter(evaluation=coc):
        Result.objects.create(evaluation=other, index=result.index, item_key=result.item_key,
                              passed=False, score_status="fail", status="done")  # fmt: skip
    response = client.get(reverse("benchmarks:compare"), {"a": coc.pk, "b": other.pk})
    assert response.context["test"]["n"] == 1
    assert "3 items A ran without asking its model" in _text(response)
