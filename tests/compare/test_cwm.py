"""Traces in CWM's format (compare/cwm.py): our export of real traces equals golden files written
by hand from Meta's published format, every eighth CRUXEval program's trace reads back to the
same frames (and, through the cwm-trace method's reader, to the real run's value and path), a
model's wrong frame is found exactly where it is, and no text makes the reader fail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground import sandbox
from playground.compare import compare_paths, compare_traces, cwm
from playground.emulation import cwm_trace
from playground.emulation.trace import result_of
from playground.sandbox import BatchSandbox
from playground.sandbox.schema import make_trace

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cwm"
DATASET = Path(__file__).resolve().parents[2] / "playground/programs/datasets/cruxeval"

# name -> (program, call); tests/golden/cwm/<name>.txt was written by hand from the format.
PROGRAMS = {
    "loop": (
        "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n",
        "f(3)",
    ),
    "nested_call": (
        "def square(x):\n    return x * x\n\ndef f(a, b):\n    s = square(a)\n    return s + b\n",
        "f(2, 1)",
    ),
    "exception": (
        "def check(v):\n    if v < 0:\n        raise ValueError('negative')\n    return v\n\n"
        "def f(v):\n    w = check(v)\n    return w\n",
        "f(-1)",
    ),
    "return_value": (
        "def f(name):\n    greeting = 'héllo, ' + name\n"
        "    return {'text': greeting, 'n': len(greeting)}\n",
        "f('B\"o')",
    ),
}


@pytest.fixture(scope="module")
def batch() -> Iterator[BatchSandbox]:
    runs = BatchSandbox()
    yield runs
    runs.close()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_export_of_a_real_trace_is_the_golden_file_byte_for_byte(
    batch: BatchSandbox, name: str
) -> None:
    source, call = PROGRAMS[name]
    real = batch.run(source, call)
    golden = (GOLDEN / f"{name}.txt").read_bytes()
    assert cwm.export(real, source, call=call).encode() == golden
    parsed = cwm.parse(golden.decode(), source)
    assert parsed.ended
    assert not parsed.unfinished
    assert parsed.unreadable == 0
    assert [f.key() for f in parsed.frames] == [
        f.key() for f in cwm.frames_of(real, source, call=call)
    ]
    assert [f.line for f in parsed.frames] == [
        f.line for f in cwm.frames_of(real, source, call=call)
    ]


def test_the_prompt_is_the_golden_files_head() -> None:
    """What a CWM model is sent is the export up to the first ``<|frame_sep|>``."""
    for name, (source, call) in PROGRAMS.items():
        golden = (GOLDEN / f"{name}.txt").read_text()
        assert golden.startswith(cwm.prompt(source, call)), name
        assert golden.count(cwm.MARKER) == 1


def test_the_exception_leaving_a_frame_reads_back_as_an_unwind_and_the_call_raises() -> None:
    source, call = PROGRAMS["exception"]
    real = sandbox.run(source, call=call)
    reader = cwm_trace.FrameReader(source, call)
    reader.feed((GOLDEN / "exception.txt").read_text())
    assert [s.get("event", "line") for s in reader.steps][-4:] == [
        "exception", "unwind", "exception", "unwind",
    ]  # fmt: skip
    emulated = make_trace(status="exception", steps=reader.steps)
    assert compare_traces(real, emulated, from_call=True).full_match
    assert reader.complete
    assert reader.problem() is None


def _unsayable(real: dict[str, Any]) -> bool:
    """Whether the real trace has facts the format has no place for (locals changed at a return
    or exception step, output): a perfect CWM answer cannot reproduce those."""
    return bool(real.get("stdout")) or any(
        set(s.get("locals", {})) - {"__return__"}
        for s in real["steps"]
        if s.get("event") in ("return", "exception", "unwind") and s.get("func") != "<module>"
    )


def test_every_eighth_cruxeval_trace_round_trips_through_the_format(batch: BatchSandbox) -> None:
    """export -> parse gives the same frames and lines; read as a model's answer, the same
    value and path, and the step comparison agrees wherever the format can say everything."""
    lines = (DATASET / "cruxeval.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines][::8]
    full = 0
    for item in items:
        source, call = item["code"], f"f({item['input']})"
        real = batch.run(source, call)
        text = cwm.export(real, source, call=call)
        frames = cwm.frames_of(real, source, call=call)
        parsed = cwm.parse(text, source)
        assert parsed.ended, item["id"]
        assert parsed.unreadable == 0, item["id"]
        assert [f.key() for f in parsed.frames] == [f.key() for f in frames], item["id"]
        assert [f.line for f in parsed.frames] == [f.line for f in frames], item["id"]
        assert cwm.compare_frames(frames, parsed.frames)["full_match"], item["id"]

        reader = cwm_trace.FrameReader(source)
        body = cwm.trace_part(text)
        for at in range(0, len(body), 50):  # as it streams
            reader.feed(body[at : at + 50])
        assert reader.complete, item["id"]
        assert reader.problem() is None, item["id"]
        emulated = make_trace(status="ok", steps=reader.steps, result=result_of(reader.steps))
        if real["status"] == "ok":
            assert emulated["result"] == real["result"], item["id"]
        assert compare_paths(real, emulated, from_call=True)["status"] == "agrees", item["id"]
        comparison = compare_traces(real, emulated, from_call=True)
        assert comparison.full_match or _unsayable(real), (item["id"], comparison.first_divergence)
        full += comparison.full_match
    assert len(items) == 100
    assert full >= 95  # 98 when written: two return a value from a line that changed a local


# --- a model's mistakes are found where they are ------------------------------------------------


def _frames(name: str) -> tuple[str, list[cwm.Frame]]:
    source, _ = PROGRAMS[name]
    return source, cwm.parse((GOLDEN / f"{name}.txt").read_text(), source).frames


def _with(frames: list[cwm.Frame], index: int, **changes: Any) -> list[cwm.Frame]:
    frame = frames[index]
    fields = {
        "kind": frame.kind, "source": frame.source, "line": frame.line,
        "locals": frame.locals, "value": frame.value,
    }  # fmt: skip
    return [*frames[:index], cwm.Frame(**{**fields, **changes}), *frames[index + 1 :]]


def test_a_wrong_local_is_found_at_its_frame() -> None:
    _source, real = _frames("loop")
    wrong = _with(real, 5, locals={"n": "..", "total": "..", "i": "7"})
    divergence = cwm.compare_frames(real, wrong)["first_divergence"]
    assert divergence["frame"] == 5
    assert (divergence["kind"], divergence["variable"]) == ("value", "i")
    assert (divergence["expected"], divergence["got"], divergence["line"]) == ("1", "7", 4)
    assert divergence["message"] == "Frame 6: i is 1, the model says 7."
    assert cwm.compare_frames(real, wrong)["matched"] == 5


def test_a_placeholder_for_a_changed_value_is_wrong_and_a_repeated_value_is_not() -> None:
    _, real = _frames("loop")
    stale = _with(real, 6, locals={"n": "..", "total": "..", "i": ".."})  # total became 1
    divergence = cwm.compare_frames(real, stale)["first_divergence"]
    assert (divergence["frame"], divergence["variable"]) == (6, "total")
    assert (divergence["expected"], divergence["got"]) == ("1", "0")
    spelled_out = _with(real, 6, locals={"n": "3", "total": "1", "i": "1"})
    assert cwm.compare_frames(real, spelled_out)["full_match"]


def test_a_placeholder_with_nothing_to_stand_for_is_not_a_value() -> None:
    """After a callee returns the demo's walk back stops: ".." there stands for nothing."""
    _, real = _frames("nested_call")
    lazy = _with(real, 5, locals={"a": "..", "b": "..", "s": "4"})
    divergence = cwm.compare_frames(real, lazy)["first_divergence"]
    assert (divergence["frame"], divergence["variable"], divergence["got"]) == (5, "a", None)


def test_a_skipped_frame_a_wrong_line_and_a_wrong_exception_are_named() -> None:
    _, real = _frames("exception")
    skipped = real[:3] + real[4:]  # the `if` line
    divergence = cwm.compare_frames(real, skipped)["first_divergence"]
    assert (divergence["frame"], divergence["kind"]) == (3, "control_flow")
    no_exception = real[:5] + real[6:]
    divergence = cwm.compare_frames(real, no_exception)["first_divergence"]
    assert (divergence["frame"], divergence["kind"]) == (5, "exception")
    elsewhere = _with(real, 3, source="    return v")
    divergence = cwm.compare_frames(real, elsewhere)["first_divergence"]
    assert (divergence["frame"], divergence["kind"], divergence["got"]) == (
        3, "control_flow", "return v",
    )  # fmt: skip
    other = _with(real, 5, value="TypeError: negative")
    divergence = cwm.compare_frames(real, other)["first_divergence"]
    assert (divergence["frame"], divergence["kind"]) == (5, "exception")
    assert cwm.compare_frames(real, _with(real, 5, value="ValueError"))["full_match"]
    returned = _with(real, 5, kind="return", value="-1")
    divergence = cwm.compare_frames(real, returned)["first_divergence"]
    assert (divergence["frame"], divergence["kind"]) == (5, "exception")
    longer = cwm.compare_frames(real, [*real, real[-1]])["first_divergence"]
    assert (longer["frame"], longer["kind"], longer["expected"]) == (
        len(real),
        "control_flow",
        None,
    )
    shorter = cwm.compare_frames(real, real[:-2])["first_divergence"]
    assert (shorter["frame"], shorter["got"]) == (len(real) - 2, None)


# --- reading what a model writes -----------------------------------------------------------------


def test_a_chat_models_layout_is_read_the_same_way() -> None:
    """The prompt echoed, a line break after each frame, the marker repeated on the call's line,
    trailing spaces, and a wrong closing token: the same frames."""
    source, _call = PROGRAMS["nested_call"]
    golden = (GOLDEN / "nested_call.txt").read_text()
    frames = cwm.parse(golden, source).frames
    chatty = golden.replace(cwm.FRAME_SEP, cwm.FRAME_SEP + "\n")
    chatty = chatty.replace("def f(a, b):<|frame", "def f(a, b):  # << START_OF_TRACE  <|frame")
    chatty = "Sure! Here is the trace:\n" + chatty.replace(cwm.END, "") + "\n<|eot_id|>"
    parsed = cwm.parse(chatty, source)
    assert [f.key() for f in parsed.frames] == [f.key() for f in frames]
    assert [f.line for f in parsed.frames] == [f.line for f in frames]
    assert not parsed.ended
    assert parsed.unfinished == "<|eot_id|>"
    only_frames = cwm.trace_part(golden)
    assert [f.key() for f in cwm.parse(only_frames).frames] == [f.key() for f in frames]


def test_off_format_values_are_read_as_python_reprs_and_bad_frames_say_why() -> None:
    text = (
        '<|call_sep|>{"n": 3, "ok": true, "xs": [1, 2], "s": "\'a\'"}<|action_sep|>def f(n):'
        "<|frame_sep|><|line_sep|>{not json<|action_sep|>    x = 1<|frame_sep|>"
        "<|return_sep|><|action_sep|>    return x<|arg_sep|>5<|frame_sep|>"
        "<|exception_sep|><|action_sep|>    return x<|arg_sep|>KeyError: 'k'<|frame_sep|>"
        "<|line_sep|>{}<|frame_sep|>just words<|frame_sep|><|line_sep|>{}<|action_sep|>    y"
    )
    parsed = cwm.parse(text)
    call, bad, ret, exc, no_source, words = parsed.frames
    assert call.locals == {"n": "3", "ok": "True", "xs": "[1, 2]", "s": "'a'"}
    assert (bad.kind, bad.locals, bad.problem) == (
        "line",
        None,
        "Its locals are not a JSON object.",
    )
    assert (ret.value, exc.value) == ("5", "KeyError: 'k'")
    assert (no_source.kind, words.kind) == ("unreadable", "unreadable")
    assert parsed.unfinished == "<|line_sep|>{}<|action_sep|>    y"
    assert parsed.unreadable == 2


def test_nothing_a_model_writes_runs() -> None:
    """Values are text: a payload in a local or a return value is kept, never evaluated."""
    payload = "__import__('os').system('touch /tmp/cwm-pwned')"
    text = (
        f"<|call_sep|>{json.dumps({'x': payload})}<|action_sep|>def f(x):<|frame_sep|>"
        f"<|return_sep|><|action_sep|>def f(x):<|arg_sep|>{payload}<|frame_sep|>"
    )
    frames = cwm.parse(text).frames
    assert frames[0].locals == {"x": payload}
    assert frames[1].value == payload
    assert not Path("/tmp/cwm-pwned").exists()


def test_a_token_inside_a_value_cannot_end_the_frame() -> None:
    source = "def f(s):\n    return s\n"
    real = sandbox.run(source, call="f('<|frame_sep|><|end_of_text|>')")
    text = cwm.export(real, source, call="f('x')")
    assert "\\u003c|frame_sep|>" in text
    parsed = cwm.parse(text, source)
    assert parsed.frames[0].locals == {"s": "'<|frame_sep|><|end_of_text|>'"}
    assert parsed.frames[-1].value == "'<|frame_sep|><|end_of_text|>'"


_PIECES = st.sampled_from(
    [*cwm.KIND_TOKENS.values(), cwm.FRAME_SEP, cwm.ACTION_SEP, cwm.ARG_SEP, cwm.END,
     cwm.CONTEXT_START, cwm.BEGIN, cwm.MARKER, '{"a": "1"}', '{"a": ".."}', "..", "{", "[" * 50,
     '"\\ud800"', "\x00", "\n", "    x = 1", "def f(a):", '"None"', "null", "1e999", "é"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=20)), max_size=60))
def test_no_text_makes_the_reader_fail(pieces: list[str]) -> None:
    text = "".join(pieces)
    source = "def f(a):\n    x = 1\n    x = 1\n    return x\n"
    parsed = cwm.parse(text, source)
    for frame in parsed.frames:
        assert frame.kind in {*cwm.KIND_TOKENS, "unreadable"}
        assert frame.line is None or 1 <= frame.line <= 4
        assert all(type(k) is str and type(v) is str for k, v in (frame.locals or {}).items())
        assert frame.value is None or len(frame.value) <= cwm.MAX_VALUE
    cwm.compare_frames(parsed.frames, parsed.frames[::-1])
    reader = cwm_trace.FrameReader(source)
    for piece in pieces:
        for step in reader.feed(piece):
            assert step["by"] == "lm"
            assert type(step["line"]) is int
            json.dumps(step)  # storable as it is
    reader.problem("length")


def test_huge_and_deep_text_is_bounded() -> None:
    deep = "<|line_sep|>" + "[" * 100_000 + "<|action_sep|>    x<|frame_sep|>"
    assert cwm.parse(deep).frames[0].problem == "Its locals are not a JSON object."
    many = "<|line_sep|>{}<|action_sep|>x<|frame_sep|>" * (cwm.MAX_FRAMES + 5)
    parsed = cwm.parse(many)
    assert len(parsed.frames) == cwm.MAX_FRAMES
    assert parsed.cut
    huge = json.dumps({f"v{n}": "x" * 5000 for n in range(300)})
    frame = cwm.parse(f"<|call_sep|>{huge}<|action_sep|>def f():<|frame_sep|>").frames[0]
    assert (frame.kind, frame.problem) == ("unreadable", "The frame is too long to read.")
    wide = json.dumps({f"v{n}": "x" * 2000 for n in range(300)})
    frame = cwm.parse(f"<|call_sep|>{wide}<|action_sep|>def f():<|frame_sep|>").frames[0]
    assert frame.locals is not None
    assert len(frame.locals) == cwm.MAX_LOCALS
    assert {len(v) for v in frame.locals.values()} == {cwm.MAX_VALUE}


def test_the_marker_goes_on_the_called_functions_first_line() -> None:
    source = "def g():\n    pass\n\n@staticmethod\ndef f(x):\n    return x\n\nx = 1\n"
    assert cwm.entry_line(source, "f(1)") == 4
    assert cwm.entry_line(source, "") == 1
    assert cwm.entry_line(source, "obj.f(1)") is None
    assert cwm.entry_line("def f(:\n", "f()") is None
    text = cwm.context(source, "f(1)")
    assert re.findall(r".*START_OF_TRACE", text) == ["@staticmethod  # << START_OF_TRACE"]
    assert text.endswith("\n\nf(1)\n")
