"""The model's surprise along the real trace: the real run's steps, written as the ``trace``
method's answer would be, scored under a model after the ``trace`` method's own prompt
(teacher-forced: ``llm/logprobs.py``), then summed per step and per variable value.

Surprise is the negative natural log of a token's probability, in nats: 0 where the model was
certain of what the real run did, large where it expected something else. A step owns the
tokens that start on its line (its newline included); a value owns every token that overlaps
its JSON string (the quotes included), so a token that spans a value's end counts for it.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from typing import Any

from playground.emulation import trace as trace_method
from playground.llm.embedded import EmbeddedModelMissing
from playground.llm.logprobs import Backend, LogprobsError, NotSupported, Scored, backend_for
from playground.llm.registry import ModelSpec

END = "\n[/TRACE]"


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of the scored text."""

    start: int
    end: int


@dataclass(frozen=True)
class StepSpans:
    """Where one step is in the rendered trace: its line, and each changed value's JSON
    string by the variable's name."""

    index: int  # the step's "i" in the real trace
    line: int
    span: Span
    values: dict[str, Span] = field(default_factory=dict)


@dataclass(frozen=True)
class Surprise:
    """Summed and mean surprise (nats) over ``tokens`` tokens."""

    total: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.total / self.tokens if self.tokens else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"total": round(self.total, 4), "mean": round(self.mean, 4), "tokens": self.tokens}


@dataclass(frozen=True)
class StepSurprise:
    index: int
    line: int
    surprise: Surprise
    values: dict[str, Surprise]

    def to_json(self) -> dict[str, Any]:
        return {
            "i": self.index,
            "line": self.line,
            **self.surprise.to_json(),
            "values": {name: s.to_json() for name, s in self.values.items()},
        }


@dataclass(frozen=True)
class TraceSurprise:
    """The real trace's surprise under one model: per step, per value, and overall (``end``:
    the closing ``[/TRACE]``)."""

    engine: str
    steps: list[StepSurprise]
    overall: Surprise
    end: Surprise
    scored: Scored
    supported: bool = True
    # Steps of the call in the real trace; more than ``len(steps)`` when only the first were
    # scored (``limit``): then the text has no ``[/TRACE]`` and ``end`` is empty.
    call_steps: int = 0

    def to_json(self) -> dict[str, Any]:
        """What a run stores: the figures without the tokens themselves."""
        return {
            "supported": True,
            "engine": self.engine,
            **self.overall.to_json(),
            "end": self.end.to_json(),
            "steps": [s.to_json() for s in self.steps],
            "call_steps": max(self.call_steps, len(self.steps)),
        }


def render(steps: list[dict[str, Any]], limit: int | None = None) -> tuple[str, list[StepSpans]]:
    """The real trace's steps from the call on, as the ``trace`` method writes them (ending in
    ``[/TRACE]``), and where each step and each of its values is in that text. With ``limit``,
    only the first ``limit`` steps of the call, and no ``[/TRACE]`` when that leaves some out
    (the model would not have ended there)."""
    lines: list[str] = []
    spans: list[StepSpans] = []
    offset = 0
    called = trace_method.call_steps(steps)
    for step in called[:limit] if limit is not None else called:
        line = trace_method.render_step(step)
        values: dict[str, Span] = {}
        changed = line.find('"changed": {')
        cursor = changed
        for name, value in (step.get("locals") or {}).items() if changed >= 0 else ():
            key = json.dumps(name, ensure_ascii=False) + ": "
            encoded = json.dumps(value, ensure_ascii=False)
            at = line.find(key + encoded, cursor)
            if at < 0:  # not rendered as expected: leave the value out rather than misplace it
                continue
            start = at + len(key)
            values[name] = Span(offset + start, offset + start + len(encoded))
            cursor = start + len(encoded)
        # A step's span runs from its line's start to the next line's (its newline included).
        span = Span(offset, offset + len(line) + 1)
        spans.append(StepSpans(step.get("i", len(spans)), step.get("line", 0), span, values))
        lines.append(line)
        offset += len(line) + 1
    cut = limit is not None and len(called) > limit
    return "\n".join(lines) + ("\n" if cut else END), spans


def attribute(scored: Scored, spans: list[StepSpans]) -> TraceSurprise:
    """Sum the tokens' surprise per step (the tokens that start in it) and per value (the tokens
    that overlap it); the rest (the closing ``[/TRACE]``) is ``end``."""
    offsets = scored.offsets
    cumulative = [0.0, *itertools.accumulate(scored.surprise)]

    def between(lo: int, hi: int) -> Surprise:
        hi = max(lo, hi)
        return Surprise(total=cumulative[hi] - cumulative[lo], tokens=hi - lo)

    steps = []
    for s in spans:
        own = between(bisect_left(offsets, s.span.start), bisect_left(offsets, s.span.end))
        values = {
            # From the token that holds the value's first character to the last that starts in it.
            name: between(max(0, bisect_right(offsets, v.start) - 1), bisect_left(offsets, v.end))
            for name, v in s.values.items()
        }
        steps.append(StepSurprise(s.index, s.line, own, values))
    last = bisect_left(offsets, spans[-1].span.end) if spans else 0
    return TraceSurprise(
        engine=scored.engine,
        steps=steps,
        overall=between(0, len(offsets)),
        end=between(last, len(offsets)),
        scored=scored,
    )


def score_trace(
    backend: Backend | NotSupported,
    source: str,
    call: str,
    steps: list[dict[str, Any]],
    rule: str = "",
    limit: int | None = None,
) -> TraceSurprise | NotSupported:
    """The real trace's surprise under ``backend``'s model, after the ``trace`` method's prompt
    for this program and call (under ``rule``, its note): scored is only the trace (its first
    ``limit`` steps of the call, if given)."""
    if isinstance(backend, NotSupported):
        return backend
    text, spans = render(steps, limit)
    scored = backend.score(trace_method.messages(source, call, rule), text)
    result = attribute(scored, spans)
    return replace(result, call_steps=len(trace_method.call_steps(steps)))


def measure(
    model: ModelSpec,
    source: str,
    call: str,
    steps: list[dict[str, Any]],
    rule: str = "",
    limit: int | None = None,
) -> dict[str, Any]:
    """A run's real trace scored under ``model``, as JSON for the run to keep: the figures
    (``supported: true``), or why there are none (``supported: false`` and ``reason``, the
    engine cannot; ``error``, it could but failed this time). Never an empty figure."""
    try:
        backend = backend_for(model)
        result = score_trace(backend, source, call, steps, rule, limit)
    except (LogprobsError, EmbeddedModelMissing) as exc:
        return {"supported": True, "engine": "", "error": str(exc)}
    return result.to_json()
