"""``manage.py emulate``: one program, and a batch in the ``trace --jsonl`` format."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from playground.llm.registry import ModelSpec
from tests.oracle import Oracle, oracle_server

PROGRAM = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"


def _use(monkeypatch: pytest.MonkeyPatch, model: ModelSpec) -> None:
    entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))


@pytest.mark.parametrize("method", ["direct", "cot", "trace", "coc", "tae"])
def test_one_program_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    out = StringIO()
    with oracle_server(Oracle()) as model:
        _use(monkeypatch, model)
        call_command(
            "emulate", str(path), method=method, call="f([1, 2, 3])", json=True, stdout=out
        )
    record = json.loads(out.getvalue())
    assert record["real"]["result"] == "6"
    assert record["emulated"]["prediction"] == "6"
    # Chain of Code runs this program in Python alone: no model call, its own verdict.
    assert record["verdict"]["status"] == ("no_model" if method == "coc" else "correct")
    assert record["emulated"]["model_calls"] == (0 if method == "coc" else 1 + (method == "tae"))
    assert record["comparison"]["result_match"] is True
    assert record["comparison"]["first_divergence"] is None
    if method in ("trace", "coc"):
        assert record["comparison"]["full_match"] is True
        assert record["emulated"]["trace"]["steps"]


def test_the_report_names_the_first_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    out = StringIO()
    with oracle_server(Oracle(error_step=2)) as model:
        _use(monkeypatch, model)
        call_command("emulate", str(path), method="trace", call="f([1, 2])", stdout=out)
    text = out.getvalue()
    assert '{"line": 1, "event": "call"' in text  # the model's answer streamed to the terminal
    assert "first divergence: Step 6 (line 3)" in text
    assert "2 of " in text


def test_a_batch_keeps_input_order_and_reports_bad_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [{"id": i, "code": PROGRAM, "call": f"f({list(range(i))})"} for i in range(6)] + [
        {"id": "bad", "code": 3}
    ]
    infile = tmp_path / "in.jsonl"
    infile.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    outfile = tmp_path / "out.jsonl"
    with oracle_server(Oracle()) as model:
        _use(monkeypatch, model)
        call_command("emulate", jsonl=str(infile), out=str(outfile), method="trace")
    records = [json.loads(x) for x in outfile.read_text().splitlines()]
    assert [r["id"] for r in records] == [0, 1, 2, 3, 4, 5, "bad"]
    for record in records[:6]:
        assert set(record) >= {"id", "emulated", "comparison"}
        assert record["comparison"]["result_match"] is True
        assert record["comparison"]["first_divergence"] is None
    assert "string 'code'" in records[-1]["error"]
    assert "7/7" in capsys.readouterr().err  # the progress bar


def test_an_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    with pytest.raises(CommandError, match="No model named 'nope'"):
        call_command("emulate", str(path), method="direct", model="nope", call="f([])")
