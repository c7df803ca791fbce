"""Under every semantic rule, the oracle model (tests/oracle.py) scores 100%: it learns the rule
only from the sentence each prompt states and answers from the program run under it, so a full
score proves that every method tells the model the rule, runs what it runs itself under it,
and is judged against the rewritten program's real run. Each rule is tried on a CRUXEval
program whose result the rule changes, so a method that forgot the rule anywhere would be
judged wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from playground.emulation.registry import REGISTRY
from playground.programs.library import import_library
from playground.programs.models import Dataset, Program
from playground.runs.models import Run, Trace
from playground.runs.services import start_run
from playground.sandbox.inside.semantics import RULES
from tests.factories import ProgramFactory
from tests.oracle import Oracle, _rule, oracle_server

pytestmark = pytest.mark.django_db
# For each rule, a CRUXEval program whose call returns something else under it (the first of the
# library's first 80 that does; _check asserts that the two results differ).
CHANGED = {
    "swap-add-sub": "sample_13", "swap-lt-gt": "sample_18", "swap-eq-ne": "sample_12",
    "swap-and-or": "sample_12", "floordiv-rounds-up": "sample_41",
    "range-includes-end": "sample_20", "index-from-one": "sample_65", "len-plus-one": "sample_37",
}  # fmt: skip


@pytest.fixture
def oracle(db: None, eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    import_library()
    knows = Oracle(
        calls={p.source.rstrip(): p.call for p in Program.objects.filter(dataset=Dataset.CRUXEVAL)}
    )
    with oracle_server(knows) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield knows


@pytest.fixture
def run_under(
    oracle: Oracle, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Run]:
    def start(method: str, rule: str) -> Run:
        program = Program.objects.get(dataset=Dataset.CRUXEVAL, external_id=CHANGED[rule])
        with django_capture_on_commit_callbacks(execute=True):
            run = start_run(
                program=program, user=AnonymousUser(), anon_token="oracle-rules", method=method,
                model="oracle", max_tokens=REGISTRY[method].max_tokens, rule=rule, seed=3,
            )  # fmt: skip
        assert not oracle.seen["unknown"]
        return Run.objects.get(pk=run.pk)

    return start


def _check(run: Run, rule: str) -> None:
    assert run.status == Run.Status.DONE, run.error
    spec = run.spec
    assert spec is not None
    if not spec.lm_lines:  # (Chain of Code's verdict, no model needed, is checked below)
        assert run.verdict["status"] == "correct", (rule, run.method, run.verdict)
    real = run.traces.get(kind=Trace.Kind.REAL).data
    standard = run.traces.get(kind=Trace.Kind.STANDARD).data
    assert real["rule"] == rule
    assert real["result"] != standard["result"]  # the rule changes the answer...
    if spec.asks_probes:
        scores = run.verdict["scores"]
        assert all(s["correct"] == s["asked"] for s in scores.values()), scores
    elif spec.predicts_input:  # the model's call, run under the rule, returns the output
        called = run.emulated_trace
        assert called is not None
        assert called.data["rule"] == rule
        assert called.data["result"] == real["result"]
    else:  # ...and the model answered the rule's value, not Python's
        assert run.prediction is not None
        assert run.prediction.strip() not in (standard["result"], "")
    if spec.lm_lines:  # Chain of Code: Python ran every line of these, under the rule
        assert run.verdict["status"] == "no_model", (rule, run.verdict)
        assert run.model_calls == 0
        assert run.prediction == real["result"]
        emulated = run.emulated_trace
        assert emulated is not None
        assert emulated.data["rule"] == rule
    if spec.compares_steps:
        assert run.comparison is not None
        assert run.comparison["full_match"] is True


def test_the_oracle_scores_every_rule_with_output_trace_and_probes(
    run_under: Callable[..., Run],
) -> None:
    assert set(CHANGED) == set(RULES)  # every rule of the catalogue
    for rule in RULES:
        for method in ("direct", "trace", "probe"):
            _check(run_under(method, rule), rule)


def test_the_oracle_scores_the_other_methods_under_a_rule(run_under: Callable[..., Run]) -> None:
    rule = "swap-lt-gt"
    others = [
        m.name for m in REGISTRY.values()
        if "program" in m.kinds and m.changed_semantics
        and m.name not in ("direct", "trace", "probe")
    ]  # fmt: skip
    assert {"cot", "input-direct", "input-cot", "tae", "probe-chain", "coc"} <= set(others)
    for method in others:
        _check(run_under(method, rule), rule)


def test_chain_of_code_runs_every_rule_in_python(run_under: Callable[..., Run]) -> None:
    """Python runs every line of these programs: under each rule, Chain of Code's trace is the
    real run's under the rule (a full match) and its value the rule's, without the model."""
    for rule in RULES:
        _check(run_under("coc", rule), rule)


# Line 4 calls a helper nobody defined: the model stands in for it, `+` the rule's there too.
WEIGHED = """def f(words):
    total = 10
    for word in words:
        total += weight_of(word) + 1
    return total - 1
"""


def test_chain_of_code_asks_the_model_its_lines_under_the_rule(
    oracle: Oracle,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """A run under swap-add-sub whose line 4 the model simulates: every LMulator prompt states
    the rule, the oracle (which reads it there) answers under it, and Python runs the rest under
    it. The real run stops at the undefined helper, so there is no value to judge against."""
    prompts: list[str] = []
    asked = oracle.answer

    def listen(prompt: str) -> str:
        prompts.append(prompt)
        return asked(prompt)

    def knowledge(line: str, variables: dict[str, Any]) -> dict[str, Any]:
        weight, total = len(variables["word"]), variables["total"]
        if _rule(prompts[-1]) == "swap-add-sub":
            return {"total": total - (weight - 1)}
        return {"total": total + weight + 1}

    monkeypatch.setattr(oracle, "answer", listen)
    oracle.knowledge = knowledge
    program = ProgramFactory(source=WEIGHED, call="f(['fig', 'pear'])")
    with django_capture_on_commit_callbacks(execute=True):
        started = start_run(
            program=program, user=AnonymousUser(), anon_token="oracle-rules", method="coc",
            model="oracle", max_tokens=REGISTRY["coc"].max_tokens, rule="swap-add-sub",
        )  # fmt: skip
    run = Run.objects.get(pk=started.pk)
    assert run.status == Run.Status.DONE, run.error
    assert run.model_calls == 2
    assert len(prompts) == 2
    assert all(RULES["swap-add-sub"].text in prompt for prompt in prompts)
    emulated = run.emulated_trace
    assert emulated is not None
    assert emulated.data["rule"] == "swap-add-sub"
    assert [s["line"] for s in emulated.data["steps"] if s.get("by") == "lm"] == [4, 4]
    assert run.prediction == "6"  # 10 - 2 - 3 by the model, then 5 - 1 adds: Python, 18
    real = run.traces.get(kind=Trace.Kind.REAL).data
    assert (real["rule"], real["error"]["type"]) == ("swap-add-sub", "NameError")
