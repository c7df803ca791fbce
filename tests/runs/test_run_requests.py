"""One check of a run request for the pages and the API (``runs.requests.resolve_run_request``):
the method for this kind of item, the model, the token budget clamp, the sandbox overrides and the
run-start limits. Each caller words a refusal its own way (tests/api/test_api.py, tests/runs/)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.test import RequestFactory
from pytest_django.fixtures import Settings

from playground.emulation.registry import max_tokens_for
from playground.lib import ratelimits
from playground.runs.requests import Refusal, RunRequest, resolve_run_request


@pytest.fixture(autouse=True)
def models(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [{"name": n, "base_url": "http://127.0.0.1:9", "model": n} for n in ("m1", "m2")]
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps(entries))


def _request() -> HttpRequest:
    # Rate-limit counters live in Redis for a minute: a new address starts from zero.
    address = "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))  # noqa: S311
    request = RequestFactory().post("/", REMOTE_ADDR=address)
    request.user = AnonymousUser()
    return request


def _resolve(**asked: object) -> RunRequest | Refusal:
    fields: dict[str, object] = {"kind": "program", "method": None, "model": None,
                                 "max_tokens": None, "limits": {}}  # fmt: skip
    return resolve_run_request(_request(), **{**fields, **asked})  # type: ignore[arg-type]


def test_defaults_per_kind_of_item() -> None:
    assert _resolve() == RunRequest("real", "", max_tokens_for("real"), {})
    puzzle = _resolve(kind="puzzle")
    assert isinstance(puzzle, RunRequest)
    assert (puzzle.method, puzzle.model) == ("puzzle", "m1")  # the first configured model


def test_an_unknown_method_is_refused_or_a_forms_default() -> None:
    refused = _resolve(method="trace", kind="puzzle")
    assert isinstance(refused, Refusal)
    assert refused.reason == "method"
    assert refused.message == "The method 'trace' does not apply to a puzzle; one of puzzle."
    lenient = _resolve(method="guess", unknown_method_is_default=True)
    assert isinstance(lenient, RunRequest)
    assert lenient.method == "real"


def test_the_model_must_be_configured() -> None:
    assert _resolve(method="direct", model="m2") == RunRequest(
        "direct", "m2", max_tokens_for("direct"), {}
    )
    unknown = _resolve(method="direct", model="")
    assert isinstance(unknown, Refusal)
    assert (unknown.reason, unknown.message) == ("model", "Unknown model ''")


def test_no_model_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_MODELS", "[]")
    refused = _resolve(method="direct")
    assert isinstance(refused, Refusal)
    assert refused.reason == "no_model"
    assert isinstance(_resolve(method="real"), RunRequest)  # a real run needs no model


def test_the_token_budget_is_lowered_never_raised_and_limits_clamped() -> None:
    budget = max_tokens_for("cot")
    assert isinstance(low := _resolve(method="cot", max_tokens=100), RunRequest)
    assert low.max_tokens == 100
    assert isinstance(high := _resolve(method="cot", max_tokens=budget * 10), RunRequest)
    assert high.max_tokens == budget
    assert isinstance(tiny := _resolve(method="cot", max_tokens=0), RunRequest)
    assert tiny.max_tokens == 16
    asked = _resolve(limits={"cpu_s": 10**6, "max_steps": None, "memory_mb": 1})
    assert isinstance(asked, RunRequest)
    assert set(asked.limits) == {"cpu_s"}  # unknown and empty overrides are dropped
    assert asked.limits["cpu_s"] < 10**6  # an anonymous requester only lowers a limit


@pytest.mark.django_db
def test_the_run_start_limits(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"runs.anon": "1/m"})
    request = _request()
    fields: dict[str, Any] = {"kind": "program", "method": None, "model": None,
                              "max_tokens": None, "limits": {}}  # fmt: skip
    assert isinstance(resolve_run_request(request, **fields), RunRequest)
    over = resolve_run_request(request, **fields)
    assert isinstance(over, Refusal)
    assert over.reason == "limit"
    assert over.limit is not None
    assert over.message.startswith("Too many runs started: at most 1 a minute.")
    assert over.limit.retry_after >= 1
