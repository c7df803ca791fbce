"""An evaluation's items ranked by the model's surprise along their real traces: its runs scored
from the evaluation's page (eager tasks, the oracle scoring as vLLM), at most a capped number at
a time, the owner's only; then sorted by the mean surprise per token or by the most surprising
step, which rank differently, the items not scored last."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground import sandbox
from playground.benchmarks.models import Evaluation, Result
from playground.lib import ratelimits
from playground.runs.models import Run, RunSurprise, Trace
from tests.factories import ProgramFactory, UserFactory
from tests.oracle import Oracle, oracle_server

pytestmark = pytest.mark.django_db(transaction=True)

# The oracle's own trace is wrong at step 4 of every call (the first value changed there).
# SHORT: one character wrong ('3') in a short trace: a high mean, a low top step.
SHORT = ("def f(n):\n    a = n\n    b = 2\n    c = 3\n    d = 4\n    return d\n", "f(1)")
# LONG: twenty digits wrong in a long trace: a low mean, a high top step.
LONG = (
    "def h(n):\n    a = 1\n    b = 2\n    d = 12345678901234567890\n    x = 0\n"
    "    for i in range(n):\n        x += i\n    return x\n",
    "h(150)",
)
# RIGHT: fewer than five steps, so the oracle is right everywhere: no surprise at all.
RIGHT = ("def g(x):\n    return x\n", "g(1)")


@pytest.fixture
def oracle(eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    knows = Oracle(error_step=4, prompt_logprobs=True)
    with oracle_server(knows) as model:
        entry = {"name": "oracle", "base_url": model.base_url, "model": "oracle"}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([{**entry, "tokenizer": "vllm"}]))
        yield knows


def _run(owner: Any, source: str, call: str) -> Run:
    real = sandbox.run(source, call=call)
    run = Run.objects.create(
        program=ProgramFactory(source=source, call=call, owner=owner),
        owner=owner,
        method="trace",
        model="oracle",
        status=Run.Status.DONE,
        emulation_done=True,
        source=source,
        call=call,
        sent_as_tasks=False,
    )
    Trace.objects.create(
        run=run, kind="real", status=real["status"], step_count=len(real["steps"]), data=real
    )
    return run


def _evaluation(owner: Any) -> Evaluation:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="trace", model="oracle", status="done", total=4, owner=owner
    )
    items = [("right", RIGHT), ("short", SHORT), ("long", LONG), ("no-run", None)]
    for index, (key, program) in enumerate(items):
        run = _run(owner, *program) if program else None
        Result.objects.create(
            evaluation=evaluation, index=index, item_key=key, status="done", passed=False, run=run
        )
    return evaluation


def _order(client: Client, evaluation: Evaluation, sort: str = "") -> list[str]:
    page = client.get(evaluation.get_absolute_url() + (f"?sort={sort}" if sort else ""))
    assert page.status_code == 200
    table = page.content.decode().split('id="results"', 1)[1]
    return re.findall(r'<td class="long">([a-z-]+)</td>', table)


def _score(client: Client, evaluation: Evaluation, capture: Callable[..., Any]) -> Any:
    with capture(execute=True):
        return client.post(reverse("benchmarks:surprise", args=[evaluation.pk]), follow=True)


def test_items_rank_by_mean_surprise_or_by_their_most_surprising_step(
    oracle: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    owner = UserFactory()
    client = Client()
    client.force_login(owner)
    evaluation = _evaluation(owner)
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="surprise-score-form"' in page
    assert "Surprise <span" not in page  # no column before anything is scored

    answer = _score(client, evaluation, django_capture_on_commit_callbacks)
    assert "3 runs sent to be scored" in answer.content.decode()
    rows = {r.run.program.call: r for r in RunSurprise.objects.select_related("run__program")}
    assert {call: row.state for call, row in rows.items()} == dict.fromkeys(
        (SHORT[1], LONG[1], RIGHT[1]), "done"
    )
    short, long = rows[SHORT[1]], rows[LONG[1]]
    assert rows[RIGHT[1]].mean == 0
    assert rows[RIGHT[1]].max_step == 0
    assert short.mean > long.mean > 0  # type: ignore[operator]
    assert long.max_step > short.max_step > 0  # type: ignore[operator]

    assert _order(client, evaluation) == ["right", "short", "long", "no-run"]
    assert _order(client, evaluation, "surprise-mean") == ["short", "long", "right", "no-run"]
    assert _order(client, evaluation, "surprise-max") == ["long", "short", "right", "no-run"]
    page = client.get(evaluation.get_absolute_url() + "?sort=surprise-max").content.decode()
    assert "Sorted by surprise of the most surprising step" in page
    assert "3 runs scored" in page
    assert 'id="surprise-score-form"' not in page  # nothing left to score
    assert _order(client, evaluation, "anything-else") == ["right", "short", "long", "no-run"]


def test_scoring_an_evaluation_is_the_owners_capped_and_counted(
    oracle: Oracle, settings: Settings, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    owner = UserFactory()
    evaluation = _evaluation(owner)
    stranger = Client()
    stranger.force_login(UserFactory())
    assert _score(stranger, evaluation, django_capture_on_commit_callbacks).status_code == 404
    assert (
        'id="surprise-score-form"'
        not in stranger.get(evaluation.get_absolute_url()).content.decode()
    )
    assert not RunSurprise.objects.exists()

    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "public", {"surprise_runs.user": 1, "surprises.user": "2/h"}
    )
    client = Client()
    client.force_login(owner)
    answer = _score(client, evaluation, django_capture_on_commit_callbacks).content.decode()
    assert "1 run sent to be scored; 2 more not scored yet (at most 1 at a time)" in answer
    assert RunSurprise.objects.get().run.program.call == RIGHT[1]  # the items' order
    _score(client, evaluation, django_capture_on_commit_callbacks)
    assert RunSurprise.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(reverse("benchmarks:surprise", args=[evaluation.pk]))
    assert refused.status_code == 429
    assert "surprise scorings asked for" in refused.content.decode()
    assert RunSurprise.objects.count() == 2
