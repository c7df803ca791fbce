"""``manage.py trace``: one program as a table or JSON, and the JSON-lines batch mode."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

PROGRAM = (
    "def f(xs):\n    s = 0\n    for x in xs:\n        s += x\n    print('sum', s)\n    return s\n"
)


def test_table_shows_steps_changes_output_and_result(tmp_path: Path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    out = io.StringIO()
    call_command("trace", str(path), "--call", "f([1, 2])", stdout=out)
    text = out.getvalue()
    assert "s += x" in text
    assert "x = 2" in text
    assert "prints 'sum 3\\n'" in text
    assert "status: ok" in text
    assert "result: 3" in text


def test_json_reads_the_program_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PROGRAM.encode())))
    out = io.StringIO()
    call_command("trace", "-", "--call", "f([5])", "--json", stdout=out)
    trace = json.loads(out.getvalue())
    assert trace["schema"] == 3
    assert trace["result"] == "5"
    assert trace["stdout"] == "sum 5\n"


def test_failing_program_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("raise ValueError('nope')\n")
    with pytest.raises(SystemExit) as exit_info:
        call_command("trace", str(path), stdout=io.StringIO())
    assert exit_info.value.code == 1


def test_unreadable_or_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("trace", str(tmp_path / "missing.py"))
    bad = tmp_path / "latin1.py"
    bad.write_bytes("s = 'café'\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not valid UTF-8"):
        call_command("trace", str(bad))


def test_batch_keeps_input_order_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": f"p{i}", "code": f"def f():\n    return {i}\n", "call": "f()"})
        for i in range(12)
    ]
    lines.insert(3, "this is not json")
    lines.insert(7, json.dumps({"id": "no-code"}))
    infile = tmp_path / "in.jsonl"
    infile.write_text("\n".join(lines) + "\n")
    outfile = tmp_path / "out.jsonl"
    call_command("trace", "--jsonl", str(infile), "--out", str(outfile), "--workers", "2")

    records = [json.loads(line) for line in outfile.read_text().splitlines()]
    assert len(records) == 14
    good = [r for r in records if "trace" in r]
    assert [r["id"] for r in good] == [f"p{i}" for i in range(12)]
    assert [r["trace"]["result"] for r in good] == [str(i) for i in range(12)]
    assert records[3] == {"id": None, "error": "Expecting value: line 1 column 1 (char 0)"}
    assert records[7]["id"] == "no-code"
    assert "code" in records[7]["error"]
