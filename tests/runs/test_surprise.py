"""A run's surprise, end to end through the view, the Celery task (eager) and the database,
against the oracle model server scoring as vLLM does (tests/oracle.py, ``prompt_logprobs``):
zero surprise where it is certain, all of it at the step its own emulation got wrong; the
"not supported by this engine" state; a task that runs twice, or finds its work held, doubles
nothing; who may ask, how often; and what a run keeps is bounded."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from pytest_django.fixtures import Settings

from playground import sandbox
from playground.compare import compare_traces
from playground.emulation import trace as trace_method
from playground.lib import leases, ratelimits, worktimes
from playground.runs import surprise
from playground.runs.models import Run, RunSurprise
from playground.runs.pipeline import work_key
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory, UserFactory, store_traces
from tests.oracle import Oracle, oracle_server

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = (
    "def f(n):\n"
    "    label = '<b>x</b>'\n"
    "    total = 0\n"
    "    for i in range(n):\n"
    "        total += i\n"
    "    return total\n"
)
CALL = "f(3)"
WRONG = 4  # the oracle's step 4 of the call (and the model's emulation) is wrong


def _models(oracle: Oracle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        if oracle.prompt_logprobs:
            entry["tokenizer"] = "vllm"
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield oracle


@pytest.fixture
def scoring(eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    """The oracle with prompt log-probabilities, wrong at step ``WRONG`` of the call."""
    yield from _models(Oracle(error_step=WRONG, prompt_logprobs=True), monkeypatch)


def finished_run(owner: Any, *, error_step: int | None = WRONG, call: str = CALL) -> Run:
    """A finished trace-method run of the oracle whose emulation is wrong at ``error_step``."""
    real = sandbox.run(SOURCE, call=call or None)
    emulated = copy.deepcopy(real)
    called = trace_method.call_steps(emulated["steps"])
    if error_step is not None:
        step = called[error_step]
        name = next(iter(step.get("locals") or {"oracle_error": ""}))
        step["locals"] = {**step.get("locals", {}), name: "'the oracle is wrong here'"}
    comparison = compare_traces(real, emulated, from_call=True).as_dict()
    run = Run.objects.create(
        program=ProgramFactory(source=SOURCE, call=call, owner=owner),
        owner=owner,
        method="trace",
        model="oracle",
        status=Run.Status.DONE,
        emulation_done=True,
        verdict={"status": "wrong", "explanation": "The trace departs from the real run."},
        comparison=comparison,
        source=SOURCE,
        call=call,
    )
    store_traces(run, real, emulated)
    return run


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, run: Run, capture: Callable[..., Any], **headers: str) -> Any:
    with capture(execute=True):
        return client.post(reverse("runs:surprise", args=[run.pk]), **headers)


def test_the_oracle_is_surprised_only_where_its_own_trace_was_wrong(
    scoring: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    user = UserFactory()
    run = finished_run(user)
    client = _client(user)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="surprise-form"' in page
    assert "Score surprise" in page

    response = post(client, run, django_capture_on_commit_callbacks, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = RunSurprise.objects.get(run=run)
    assert row.state == RunSurprise.State.DONE, row.reason
    assert row.engine == "vLLM (prompt_logprobs)"
    assert scoring.scored >= 1
    called = trace_method.call_steps(run.real_trace.data["steps"])  # type: ignore[union-attr]
    steps = row.data["steps"]
    assert [s["i"] for s in steps] == [s["i"] for s in called]
    wrong = called[WRONG]["i"]
    for step in steps:
        if step["i"] == wrong:
            assert step["total"] > 0
            assert max(v["total"] for v in step["values"].values()) > 0
        else:
            assert step["total"] == 0, step  # certain: zero surprise
            assert all(v["total"] == 0 for v in step["values"].values())
    assert row.max_step == max(s["total"] for s in steps) > 0
    # The model read the trace's tokens: counted against the requester's model-token budget.
    key = f"user:{user.pk}"
    assert row.budget_key == key
    assert ratelimits.used(ratelimits.budget_name(key), key) == row.tokens > 0
    assert row.mean is not None
    assert row.mean > 0
    assert row.data["end"]["total"] == 0

    # The heat map, the divergence beside it, the figures in words, the program's text escaped.
    assert 'id="surprise-table"' in response.content.decode()
    page = client.get(run.get_absolute_url()).content.decode()
    assert f'id="surprise-step-{wrong + 1}" class="heat-row-' in page
    assert f"step {wrong + 1}</a>" in page  # the divergence, linked to its row
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page

    # Asked again: nothing is sent, nothing counted, the figures stay.
    before = scoring.scored
    post(client, run, django_capture_on_commit_callbacks)
    assert scoring.scored == before
    assert RunSurprise.objects.get(run=run).data == row.data


def test_a_model_that_is_right_everywhere_is_never_surprised(
    eager: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    for _ in _models(Oracle(prompt_logprobs=True), monkeypatch):
        user = UserFactory()
        run = finished_run(user, error_step=None)
        post(_client(user), run, django_capture_on_commit_callbacks)
        row = RunSurprise.objects.get(run=run)
        assert row.state == RunSurprise.State.DONE
        assert row.data["total"] == 0
        assert row.max_step == 0
        assert row.tokens > 100


def test_an_engine_without_prompt_logprobs_is_a_state_said_in_words(
    eager: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    for oracle in _models(Oracle(), monkeypatch):
        user = UserFactory()
        run = finished_run(user)
        client = _client(user)
        page = client.get(run.get_absolute_url()).content.decode()
        assert "Not supported by this engine." in page
        assert 'id="surprise-form"' not in page
        post(client, run, django_capture_on_commit_callbacks)  # e.g. from an old page
        row = RunSurprise.objects.get(run=run)
        assert row.state == RunSurprise.State.UNSUPPORTED
        assert "cannot be measured" in row.reason
        assert oracle.scored == 0
        page = client.get(run.get_absolute_url()).content.decode()
        assert "Not supported by this engine" in page
        assert "cannot be measured" in page


def test_an_engine_that_fails_is_failed_and_may_be_asked_again(
    scoring: Oracle,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    user = UserFactory()
    run = finished_run(user)
    client = _client(user)
    scoring.prompt_logprobs = False  # the server now answers 404 to /tokenize
    post(client, run, django_capture_on_commit_callbacks)
    row = RunSurprise.objects.get(run=run)
    assert row.state == RunSurprise.State.FAILED
    assert "did not return log-probabilities" in row.reason
    assert "127.0.0.1" not in row.reason  # the server's address stays out
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="surprise-failed"' in page
    assert "Try again" in page
    scoring.prompt_logprobs = True
    post(client, run, django_capture_on_commit_callbacks)
    assert RunSurprise.objects.get(run=run).state == RunSurprise.State.DONE


def test_a_second_copy_of_the_task_doubles_nothing_and_a_held_one_waits(scoring: Oracle) -> None:
    user = UserFactory()
    run = finished_run(user)
    surprise.request(run, send=False)
    # A worker holds the work (alive): a copy handed out meanwhile leaves it alone.
    with leases.Held([work_key("surprise", run.pk)], [1], worktimes.LEASE_S) as lease:
        assert lease.taken
        assert surprise.score(run.pk) == "held"
    assert RunSurprise.objects.get(run=run).state == RunSurprise.State.PENDING
    # The holder died before storing anything (its lease lapsed): the broker's copy scores it.
    assert surprise.score(run.pk) == "done"
    scored = scoring.scored
    assert surprise.score(run.pk) == "skipped"  # a late copy: nothing asked, nothing written
    assert scoring.scored == scored


def test_a_pending_row_no_task_can_still_hold_may_be_sent_again(
    scoring: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    user = UserFactory()
    run = finished_run(user)
    surprise.request(run, send=False)  # its message was lost
    client = _client(user)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="surprise-pending"' in page
    assert 'hx-trigger="every 2s"' in page
    post(client, run, django_capture_on_commit_callbacks)  # not stale yet: nothing sent
    assert RunSurprise.objects.get(run=run).state == RunSurprise.State.PENDING
    long_ago = RunSurprise.objects.get(run=run).requested_at.replace(year=2020)
    RunSurprise.objects.filter(run=run).update(requested_at=long_ago)
    assert "Score surprise again" in client.get(run.get_absolute_url()).content.decode()
    post(client, run, django_capture_on_commit_callbacks)
    assert RunSurprise.objects.get(run=run).state == RunSurprise.State.DONE


def test_only_the_owner_may_ask_and_asking_is_counted(
    scoring: Oracle,
    settings: Settings,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    owner = UserFactory()
    run = finished_run(owner)
    stranger = _client(UserFactory())
    assert post(stranger, run, django_capture_on_commit_callbacks).status_code == 404
    assert stranger.get(reverse("runs:surprise", args=[run.pk])).status_code == 404
    assert post(Client(), run, django_capture_on_commit_callbacks).status_code == 404
    assert not RunSurprise.objects.filter(run=run).exists()

    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"surprises.user": "1/h"})
    client = _client(owner)
    other = finished_run(owner)
    assert post(client, run, django_capture_on_commit_callbacks).status_code == 302
    refused = post(client, other, django_capture_on_commit_callbacks)
    assert refused.status_code == 429
    assert "surprise scorings asked for" in refused.content.decode()
    assert not RunSurprise.objects.filter(run=other).exists()


def test_a_run_that_cannot_be_scored_gets_a_clear_400(
    scoring: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    user = UserFactory()
    run = finished_run(user, error_step=None, call="")
    client = _client(user)
    response = post(client, run, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "Only the steps of a call are scored" in response.content.decode()
    assert 'id="surprise"' not in client.get(run.get_absolute_url()).content.decode()
    running = finished_run(user)
    Run.objects.filter(pk=running.pk).update(status=Run.Status.RUNNING)
    assert post(client, running, django_capture_on_commit_callbacks).status_code == 400


def test_what_a_run_keeps_is_bounded_and_the_page_says_so(
    scoring: Oracle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(surprise, "MAX_STEPS", 3)
    user = UserFactory()
    run = finished_run(user)
    surprise.request(run, send=False)
    assert surprise.score(run.pk) == "done"
    row = RunSurprise.objects.get(run=run)
    assert len(row.data["steps"]) == 3
    assert row.data["call_steps"] > 3
    assert row.data["end"]["tokens"] == 0  # no [/TRACE] after a cut trace
    page = _client(user).get(run.get_absolute_url()).content.decode()
    assert f"(the first of {row.data['call_steps']}: the rest were not scored)" in page
    long_name = {"x" * 500: {"total": 1.0, "mean": 1.0, "tokens": 1}}
    kept = surprise.bounded({"steps": [{"i": 0, "line": 1, "values": long_name}] * 5})
    assert [len(n) for n in kept["steps"][0]["values"]] == [surprise.NAME_CHARS]


def test_the_command_scores_runs_and_prints_the_figures(
    scoring: Oracle, capsys: pytest.CaptureFixture[str]
) -> None:
    run = finished_run(UserFactory())
    call_command("surprise", str(run.pk))
    out = capsys.readouterr().out
    assert f"run {run.pk}: " in out
    assert "nats over" in out
    assert "vLLM" in out
    assert RunSurprise.objects.get(run=run).state == RunSurprise.State.DONE
    call_command("surprise", str(run.pk))  # scored already: read, not scored again
    assert scoring.scored == 1


def test_a_model_no_longer_on_the_site_is_said_and_never_sent(
    scoring: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    user = UserFactory()
    run = finished_run(user)
    Run.objects.filter(pk=run.pk).update(model="gone-model")
    client = _client(user)
    page = client.get(run.get_absolute_url()).content.decode()
    assert escape(surprise.GONE) in page
    assert 'id="surprise-form"' not in page
    post(client, run, django_capture_on_commit_callbacks)  # an old page's button
    row = RunSurprise.objects.get(run=run)
    assert (row.state, row.reason) == (RunSurprise.State.FAILED, surprise.GONE)
    assert scoring.scored == 0


def test_a_share_link_shows_the_heat_map_read_only(
    scoring: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    user = UserFactory()
    run = finished_run(user)
    link = ShareLink.objects.create(run=run)
    anyone = Client()
    page = anyone.get(link.get_absolute_url()).content.decode()
    assert "Not scored yet." in page
    assert 'id="surprise-form"' not in page
    post(_client(user), run, django_capture_on_commit_callbacks)
    page = anyone.get(link.get_absolute_url()).content.decode()
    assert 'id="surprise-table"' in page
    assert 'id="surprise-form"' not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page
    # The share link does not open the owner's endpoint.
    assert anyone.get(reverse("runs:surprise", args=[run.pk])).status_code == 404
