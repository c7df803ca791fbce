"""Hostile output on the protocol descriptor: the parent's parsing never raises, stays linear in
time and bounded in memory, and turns every malformed message into a clear crash of the program.

The user's program shares the runner's process and can write on the descriptor the runner
answers on (fd 3 inside the sandbox): these programs do, through the real sandbox.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest

from playground import sandbox
from playground.sandbox.collect import Collector, assemble
from playground.sandbox.inside.tracer import Execution
from playground.sandbox.jail import SandboxUnavailable
from playground.sandbox.limits import Limits
from playground.sandbox.lmulator import LMRequest

CAP = 4 * 1024 * 1024  # protocol.MAX_LINE_BYTES, a literal: this file also runs on old code


def _write(payload: str) -> str:
    """A program that writes ``payload`` (Python expression of bytes) on the protocol descriptor."""
    return f"import os\nos.write(3, {payload})\nprint('after')\n"


def _error(trace: dict[str, Any]) -> str:
    error = trace["error"] or {}
    return f"{error.get('type')}: {error.get('message')}"


# (name, what the program writes, words the error must contain)
MALFORMED = [
    ("deep-nesting", "b'{\"a\":' + b'[' * 100_000 + b'\\n'", "nested too deeply"),
    ("event-of-wrong-type", "b'{\"steps\":[{\"i\":0,\"event\":[],\"line\":1}]}\\n'",
     "step 0 has an unknown event"),
    ("steps-of-wrong-type", "b'{\"steps\":{\"i\":0}}\\n'", "steps is not a list"),
    ("locals-of-wrong-type", "b'{\"steps\":[{\"i\":0,\"line\":1,\"locals\":{\"a\":[]}}]}\\n'",
     "a value is not a string"),
    ("final-status-of-wrong-type", "b'{\"final\":{\"status\":[]}}\\n'",
     "a malformed final record (bad status)"),
    ("final-result-of-wrong-type", "b'{\"final\":{\"status\":\"ok\",\"result\":{}}}\\n'",
     "a malformed final record (bad result)"),
    ("huge-line", "b'[' * 6_000_000", "a line longer than 4,194,304 bytes"),
    ("many-small-containers", "b'[' + b'{},' * 1_300_000 + b'{}]\\n'",
     "a line that would take too much memory to read"),
    ("huge-number", "b'{\"steps\":[{\"i\":' + b'9' * 5000 + b'}]}\\n'",
     "not a well-formed message (ValueError)"),
    ("not-ascii", "'{\"fatal\":\"é\"}\\n'.encode()", "not ASCII"),
    ("two-keys", "b'{\"steps\":[],\"final\":{}}\\n'", "not an object with one key"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "payload", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_message_is_a_clear_crash_of_the_program(
    name: str, payload: str, words: str
) -> None:
    trace = sandbox.run(_write(payload))
    assert trace["status"] == "crash", (name, _error(trace))
    assert trace["error"]["type"] == "TraceInvalid"
    assert trace["error"]["message"] == (
        "The program wrote something that is not a trace on the tracer's channel: " + words + "."
    ), name


def test_a_forged_fatal_is_a_crash_not_an_unavailable_sandbox(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """L9: before, this raised SandboxUnavailable with the program's own lines in the message
    (shown as "the sandbox is not available", logged at ERROR with its newlines)."""
    forged = (
        _write('b\'{"fatal":"forged\\\\nERROR root: the database is gone\\\\u2028"}\\n\'')
        + "import sys\nsys.exit(1)\n"
    )
    with caplog.at_level("DEBUG"):
        trace = sandbox.run(forged)
    assert trace["status"] == "crash"
    assert "after the program started" in trace["error"]["message"]
    assert not [r for r in caplog.records if "\n" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_fatal_before_the_program_starts_is_one_clean_line() -> None:
    """Only the runner writes before "started" (its setup failed): that stays a setup problem,
    and its text reaches logs and users as one line."""
    collector = Collector(Limits())
    collector.feed(b'{"fatal":"could not load the filter:\\nsecond line\\r\\u0085x"}\n')
    with pytest.raises(SandboxUnavailable) as caught:
        assemble(
            collector, timed_out=False, returncode=3, cpu_s=0.01, stderr=b"",
            limits=Limits(), wall_ms=1.0,
        )  # fmt: skip
    assert str(caught.value) == (
        "The sandbox could not start the program: could not load the filter: second line x"
    )


def test_a_model_request_of_the_wrong_type_ends_a_chain_of_code_run() -> None:
    def lmulator(request: LMRequest) -> str:
        raise AssertionError("a malformed request must never reach the model")

    program = _write('b\'{"lm":{"line":1,"kind":[]}}\\n\'')
    trace = sandbox.run(program, lmulator=lmulator)
    assert trace["status"] == "crash"
    assert trace["error"]["message"].endswith("a model request has an unknown kind.")
    assert trace["method"] == "coc"


# The parsing path itself, in this process: memory and time.


def _feed(data: bytes, chunk: int = 1 << 16) -> Collector:
    collector = Collector(Limits(max_steps=1_000_000))
    view = memoryview(data)
    for offset in range(0, len(data), chunk):
        collector.feed(view[offset : offset + chunk])
        if collector.problem is not None:
            break
    return collector


# (opening, repeated unit, closing) of hostile lines: json.loads alone makes the first ~24 times
# its size, the emoji one ~6 times.
HOSTILE = {
    "empty dicts": (b"[", b"{},", b"{}]"),
    "empty lists": (b"[", b"[],", b"[]]"),
    "one-key dicts": (b"[", b'{"a":1},', b"{}]"),
    "short strings": (b"[", b'"ab",', b'""]'),
    "numbers": (b"[", b"1000,", b"0]"),
    "a string widened by an emoji": (b'{"fatal":"', b"a", b'\\ud83d\\ude00"}'),
    "commas in a string": (b'{"fatal":"', b",,,,", b'"}'),
    "minimal steps": (b'{"steps":[', b'{"i":0,"line":1,"func":"f"},', b"]}"),
}


def _line(name: str, count: int) -> bytes:
    opening, unit, closing = HOSTILE[name]
    if name == "minimal steps":  # valid ones, in sequence: each is kept
        body = b"".join(unit.replace(b'"i":0', b'"i":%d' % i) for i in range(count))
        return opening + body[:-1] + b"]}\n"
    return opening + unit * count + closing + b"\n"


def _largest_admitted(name: str) -> bytes:
    """The longest line of this pattern the parent still parses (the bound's edge)."""
    from playground.sandbox import protocol

    cap = CAP
    low, high = 1, cap // len(HOSTILE[name][1])
    while low < high:
        mid = (low + high + 1) // 2
        text = _line(name, mid).decode()
        if protocol.admits(text, 4 * cap - 3 * len(text) - (1 << 16)):
            low = mid
        else:
            high = mid - 1
    return _line(name, low)


def _peak(data: bytes) -> tuple[int, Collector]:
    tracemalloc.start()
    try:
        collector = _feed(data)
        return tracemalloc.get_traced_memory()[1], collector
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", HOSTILE)
def test_parsing_a_hostile_line_stays_within_four_times_the_line_cap(name: str) -> None:
    cap = CAP
    digits = 5 if name == "minimal steps" else 0  # its "i" grows up to 5 digits
    refused = _line(name, (cap - 64) // (len(HOSTILE[name][1]) + digits))
    peak, collector = _peak(refused)
    assert peak <= 4 * cap, f"{name}, refused: {peak / cap:.1f}x"
    assert collector.reason in ("a line that would take too much memory to read", ""), name
    admitted = _largest_admitted(name)
    peak, collector = _peak(admitted)
    assert collector.reason != "a line that would take too much memory to read", name
    assert peak <= 4 * cap, f"{name}, parsed: {peak / cap:.1f}x"


def test_a_line_without_end_is_refused_at_the_cap_and_costs_no_quadratic_time() -> None:
    """Before, 24 MB without a line break in 64 KB chunks took seconds (the whole buffer was
    copied and split again for every chunk) and was never refused."""
    t0 = time.perf_counter()
    collector = _feed(b"x" * 24_000_000)
    assert time.perf_counter() - t0 < 1.0
    assert collector.problem == "invalid"
    assert collector.reason == "a line longer than 4,194,304 bytes"


def _padded_lines(count: int, line: int) -> bytes:
    return (b'{"steps":[' + b" " * (line - 13) + b"]}\n") * count


def test_time_to_parse_grows_linearly_with_the_length_of_lines() -> None:
    """Six lines of 0.75 MB, then six of 3 MB, in 64 KB chunks: 4x the bytes should take about
    4x the time (before, every chunk copied and split the whole line so far: 16x)."""

    def seconds(line: int) -> float:
        data = _padded_lines(6, line)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            collector = _feed(data)
            best = min(best, time.perf_counter() - t0)
            assert collector.problem is None, collector.reason
        return best

    short, long = seconds(750_000), seconds(3_000_000)
    assert long < 8 * short, (short, long)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_lines_split_anywhere_read_the_same(chunk: int) -> None:
    steps = [{"i": i, "line": i + 1, "func": "f", "locals": {"x": repr("é" * i)}} for i in range(5)]
    final = {"status": "ok", "result": "'\\u00e9'", "stdout": "", "error": None}
    messages = [{"started": True}, {"steps": steps[:2]}, {"steps": steps[2:]}, {"final": final}]
    data = b"".join((json.dumps(message) + "\n").encode() for message in messages)
    whole, split = _feed(data, len(data)), _feed(data, chunk)
    assert split.problem is None
    assert whole.problem is None
    assert split.steps == whole.steps == steps
    assert split.final == whole.final == final


def test_the_tracer_flushes_large_steps_before_a_line_gets_big() -> None:
    """Each call of ``f`` is a step holding 150 variables of 300 characters (12 bytes each once
    escaped, 540 KB a step): by count alone a batch of 200 steps would be a 27 MB line."""
    params = ", ".join(f"a{i}" for i in range(150))
    source = (
        f"def f({params}):\n    return 0\n\n"
        "for k in range(60):\n"
        "    v = chr(0x1F600) * 298 + str(k % 10)\n"
        f"    f({', '.join(['v'] * 150)})\n"
    )
    lines: list[int] = []

    def emit(batch: list[dict[str, Any]]) -> None:
        lines.append(len(json.dumps({"steps": batch})))  # ensure_ascii, as the runner writes

    execution = Execution(source, None, max_steps=10_000, max_stdout=64_000, emit=emit,
                          finish=lambda final: None)  # fmt: skip
    execution.run()
    assert sum(lines) > 5 * CAP  # the trace is large...
    from playground.sandbox.inside.tracer import BATCH_CHARS

    assert max(lines) <= 12 * BATCH_CHARS + 12 * 150 * 310  # ...its lines are not
    assert max(lines) < CAP // 2


def test_a_steps_counted_size_covers_its_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch cap counts each step's ids and heap by an estimate made as the heap is walked
    (no repr of it): the estimate must never be below the characters those fields add."""
    from playground.sandbox.inside.tracer import Tracer

    counted: list[tuple[int, int]] = []
    original = Tracer._identity

    def checked(self: Tracer, step: dict[str, Any], *args: Any) -> int:
        size = original(self, step, *args)
        fields = {key: step[key] for key in ("ids", "heap") if key in step}
        names = sum(map(len, step.get("ids", {})))  # counted with the step's locals
        counted.append((size, len(json.dumps(fields, ensure_ascii=False)) - names))
        return size

    monkeypatch.setattr(Tracer, "_identity", checked)
    source = (
        "def f(n):\n"
        "    rows = [[i, str(i) * 3] for i in range(n)]\n"
        "    table = {'k' + str(i): row for i, row in enumerate(rows)}\n"
        "    flat = {i: 'x' * i for i in range(50)}\n"
        "    tags = {'a', 'bb', 'c' * 30}\n"
        "    for row in rows:\n"
        "        row.append({'w': [row]})\n"
        "        flat[len(flat)] = (1.5, None, 'q')\n"
        "    class P:\n"
        "        pass\n"
        "    p = P()\n"
        "    p.rows, p.me = rows, p\n"
        "    return table, tags\n"
    )
    execution = Execution(source, "f(12)", max_steps=10_000, max_stdout=64_000,
                          emit=lambda batch: None, finish=lambda final: None)  # fmt: skip
    execution.run()
    assert len(counted) > 20
    assert all(size >= real for size, real in counted), [c for c in counted if c[0] < c[1]]


def test_a_large_legitimate_trace_runs_and_is_capped_in_size() -> None:
    """M8: valid steps past the trace cap are counted, not kept, and the trace says so."""
    source = "for k in range(3000):\n    s = str(k) * 40\n"
    trace = sandbox.run(source, limits=Limits(max_trace_bytes=100_000))
    assert trace["status"] == "ok", _error(trace)
    stats = trace["stats"]
    assert stats["capped"] is True
    assert stats["total_steps"] == 6003  # call, 2 lines per turn, the last for line, return
    assert 100 < stats["steps"] == len(trace["steps"]) < 1000
    assert len(json.dumps(trace["steps"])) <= 100_000 * 1.1
    assert [s["i"] for s in trace["steps"]] == list(range(stats["steps"]))


def test_forged_valid_steps_are_capped_too() -> None:
    program = (
        "import os, sys\n"
        "sys.settrace(None)\n"  # the tracer's own steps stay in its batch, never written
        'step = b\'{"i":%d,"line":1,"func":"\' + b\'x\' * 150 + b\'"}\'\n'
        "os.write(3, b'{\"steps\":[' + b','.join(step % i for i in range(3000)) + b']}\\n')\n"
        "os._exit(0)\n"
    )
    trace = sandbox.run(program, limits=Limits(max_trace_bytes=50_000))
    assert trace["status"] == "crash"  # it exited without a final record
    assert trace["stats"]["capped"] is True
    assert trace["stats"]["total_steps"] == 3000
    assert len(json.dumps(trace["steps"])) <= 50_000 * 1.1
