"""Teacher-forced surprise without a real model: the windows, the token offsets, the mapping of
tokens onto steps and values, and a scripted vLLM-like oracle (zero surprise where it is
certain, the doubt exactly where it was put)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from playground.emulation import surprise
from playground.emulation import trace as trace_method
from playground.llm import logprobs
from playground.llm.logprobs import (
    LogprobsError,
    NotSupported,
    OpenAIPromptLogprobs,
    Scored,
    backend_for,
    char_offsets_of_bytes,
    char_offsets_of_strings,
    windows,
)
from playground.llm.registry import ModelSpec
from tests.llm.logprob_server import Script, logprob_server

SOURCE = trace_method.EXAMPLE_SOURCE
CALL = trace_method.EXAMPLE_CALL
MODULE_STEP = {"i": 1, "line": 1, "func": "<module>"}
STEPS = [MODULE_STEP, *trace_method.EXAMPLE_STEPS]


def test_the_rendered_trace_is_what_the_trace_method_would_write() -> None:
    text, spans = surprise.render(STEPS)
    assert text == trace_method.render(trace_method.EXAMPLE_STEPS) + "\n[/TRACE]"
    assert [s.index for s in spans] == [s["i"] for s in trace_method.EXAMPLE_STEPS]
    lines = text.split("\n")
    for span, line in zip(spans, lines, strict=False):
        assert text[span.span.start : span.span.end] == line + "\n"
    first = spans[0]
    assert text[first.values["text"].start : first.values["text"].end] == "\"'ab'\""
    ret = spans[-1]
    assert text[ret.values["__return__"].start : ret.values["__return__"].end] == '"2"'


def test_a_value_whose_text_repeats_a_name_is_found_at_its_own_place() -> None:
    steps = [{"i": 1, "line": 2, "func": "f", "locals": {"a": '"b": "1"', "b": "1"}}]
    text, (span,) = surprise.render(steps)
    assert json.loads(text[span.values["a"].start : span.values["a"].end]) == '"b": "1"'
    assert text[span.values["b"].start : span.values["b"].end] == '"1"'


def _scored(text: str, cuts: list[int], surprises: list[float]) -> Scored:
    return Scored(
        text=text,
        tokens=tuple(text[a:b] for a, b in zip(cuts, [*cuts[1:], len(text)], strict=True)),
        offsets=tuple(cuts),
        logprobs=tuple(-s for s in surprises),
        engine="hand",
    )


def test_tokens_are_summed_per_step_and_per_value() -> None:
    steps = [
        {"i": 3, "line": 1, "func": "f", "event": "call", "locals": {"x": "10"}},
        {"i": 4, "line": 2, "func": "f"},
    ]
    text, spans = surprise.render(steps)
    # '{"line": 1, "event": "call", "func": "f", "changed": {"x": "10"}}\n{"line": 2}\n[/TRACE]'
    value = text.index('"10"')
    second = text.index('{"line": 2}')
    end = text.index("[/TRACE]")
    # Tokens: the first line up to the value, '"1' (starts in the value), '0"}}' (ends the line,
    # overlaps the value), '\n', the second line, '\n[' and '/TRACE]' (after the last step's
    # newline: the end).
    cuts = [0, value, value + 2, second - 1, second, end - 1, end]
    result = surprise.attribute(_scored(text, cuts, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]), spans)
    first, last = result.steps
    assert (first.index, first.line) == (3, 1)
    assert first.surprise.total == 1 + 2 + 4 + 8
    assert first.surprise.tokens == 4
    assert first.values["x"].total == 2 + 4
    assert first.values["x"].mean == 3
    assert last.surprise.total == 16 + 32  # '\n[' starts on its line's newline
    assert result.end.total == 64
    assert result.overall.total == 127
    assert result.to_json()["steps"][0]["values"]["x"] == {"total": 6.0, "mean": 3.0, "tokens": 2}


def test_windows_see_the_prompt_and_overlap_and_cover_the_text_once() -> None:
    assert windows(100, 50, window=2048, overlap=256) == [(0, 0, 50)]
    parts = windows(100, 1000, window=500, overlap=100)
    assert parts[0] == (0, 0, 400)
    kept = [i for _context, start, end in parts for i in range(start, end)]
    assert kept == list(range(1000))
    for context, start, end in parts:
        assert 100 + end - context <= 500
        assert start - context == min(100, start)
    with pytest.raises(LogprobsError, match="too little"):
        windows(450, 10, window=500, overlap=100)


def test_offsets_are_characters_even_when_a_token_splits_one() -> None:
    text = "x = 'é€'"
    raw = text.encode()
    cut = raw.index("€".encode()) + 1  # a token that ends inside the euro sign
    pieces = [raw[:4], raw[4:cut], raw[cut:]]
    assert char_offsets_of_bytes(text, pieces) == [0, 4, 6]
    assert char_offsets_of_strings("ab€c", ["a", "b", "\ufffd", "€", "c"]) == [0, 1, 2, 2, 3]


def test_the_oracle_is_never_surprised_where_it_is_certain() -> None:
    text, spans = surprise.render(STEPS)
    # It doubts the value of count at step 8 (count becomes 1): its characters and no others.
    step = next(s for s in spans if s.index == 8)
    doubt = step.values["count"]
    with logprob_server(Script(truth=text, doubts=set(range(doubt.start, doubt.end)))) as model:
        result = surprise.score_trace(backend_for(model), SOURCE, CALL, STEPS)
    assert not isinstance(result, NotSupported)
    assert result.engine == "vLLM (prompt_logprobs)"
    assert "".join(result.scored.tokens) == text
    for s in result.steps:
        if s.index == 8:
            assert s.surprise.total == pytest.approx(2.0 * (doubt.end - doubt.start))
            assert s.values["count"].total == pytest.approx(2.0 * 3)  # '"1"'
        else:
            assert s.surprise.total == 0
            assert all(v.total == 0 for v in s.values.values())
    assert result.end.total == 0


def test_a_text_longer_than_the_window_is_scored_in_windows_with_the_same_figures() -> None:
    text, _spans = surprise.render(STEPS)
    doubts = {text.index('"1"') + 1, len(text) - 3}  # early and at the very end
    script = Script(truth=text, doubts=doubts, doubt_logprob=-1.5)
    with logprob_server(script) as model:
        prompt = len(trace_method.messages(SOURCE, CALL)[0]["content"]) + 2
        narrow = OpenAIPromptLogprobs(replace(model, context_length=prompt + 300))
        scored = narrow.score(trace_method.messages(SOURCE, CALL), text)
    assert len(script.completions) >= 3
    assert max(script.completions) <= prompt + 300
    assert "".join(scored.tokens) == text
    assert [i for i, lp in enumerate(scored.logprobs) if lp] == sorted(doubts)
    assert sum(scored.surprise) == pytest.approx(3.0)


def test_an_engine_without_prompt_logprobs_says_so() -> None:
    text, _spans = surprise.render(STEPS)
    with (
        logprob_server(Script(truth=text, prompt_logprobs=False)) as model,
        pytest.raises(LogprobsError, match="without prompt log-probabilities"),
    ):
        surprise.score_trace(backend_for(model), SOURCE, CALL, STEPS)


def test_a_model_without_such_an_engine_is_not_supported_rather_than_empty() -> None:
    hosted = ModelSpec(name="h", base_url="https://example.invalid/v1", model="m", label="Hosted")
    result = surprise.score_trace(backend_for(hosted), SOURCE, CALL, STEPS)
    assert isinstance(result, NotSupported)
    assert result.to_json()["supported"] is False
    assert "cannot be measured" in result.reason
    assert set(logprobs.ENGINES) >= {"vllm", "llama.cpp", "transformers"}


def test_an_invalid_log_probability_is_refused() -> None:
    text, _spans = surprise.render(STEPS)
    with (
        logprob_server(Script(truth=text, doubts={0}, doubt_logprob=math.nan)) as model,
        pytest.raises(LogprobsError, match="invalid"),
    ):
        OpenAIPromptLogprobs(model).score(trace_method.messages(SOURCE, CALL), text)


def test_what_a_run_keeps_is_figures_or_a_reason_never_nothing() -> None:
    text, _spans = surprise.render(STEPS)
    with logprob_server(Script(truth=text, doubts={0})) as model:
        kept = surprise.measure(model, SOURCE, CALL, STEPS)
    assert kept["supported"] is True
    assert [s["i"] for s in kept["steps"]] == [s["i"] for s in trace_method.EXAMPLE_STEPS]
    assert kept["steps"][0]["total"] == 2.0
    assert json.loads(json.dumps(kept)) == kept
    with logprob_server(Script(truth=text, prompt_logprobs=False)) as model:
        failed = surprise.measure(model, SOURCE, CALL, STEPS)
    assert "without prompt log-probabilities" in failed["error"]
    hosted = ModelSpec(name="h", base_url="https://example.invalid/v1", model="m", label="Hosted")
    refused = surprise.measure(hosted, SOURCE, CALL, STEPS)
    assert refused["supported"] is False
    assert "cannot be measured" in refused["reason"]
