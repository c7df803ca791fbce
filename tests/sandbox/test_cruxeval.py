"""Every CRUXEval program of the library, run in the sandbox, returns the data set's output."""

from __future__ import annotations

import ast
from typing import Any


def _check(item: dict[str, Any], trace: dict[str, Any]) -> str | None:
    if trace["status"] != "ok":
        return f"{item['id']}: {trace['status']} {trace['error']}"
    if ast.literal_eval(trace["result"]) != ast.literal_eval(item["output"]):
        return f"{item['id']}: got {trace['result']!r}, expected {item['output']!r}"
    return None


def test_all_800_cruxeval_programs_return_the_expected_output(
    cruxeval_items: list[dict[str, Any]], cruxeval_plain_traces: dict[str, dict[str, Any]]
) -> None:
    """The runs themselves: tests/sandbox/conftest.py (test_coc.py reads them too)."""
    assert len(cruxeval_items) == 800
    traces = cruxeval_plain_traces
    failures = [f for item in cruxeval_items if (f := _check(item, traces[item["id"]]))]
    assert failures == []
