"""Every CRUXEval program of the library, run in the sandbox, returns the data set's output."""

from __future__ import annotations

import ast
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playground import sandbox
from playground.programs.library import DATASETS_DIR


def _check(item: dict[str, Any]) -> str | None:
    trace = sandbox.run(item["code"], call=f"f({item['input']})")
    if trace["status"] != "ok":
        return f"{item['id']}: {trace['status']} {trace['error']}"
    if ast.literal_eval(trace["result"]) != ast.literal_eval(item["output"]):
        return f"{item['id']}: got {trace['result']!r}, expected {item['output']!r}"
    return None


def test_all_600_cruxeval_programs_return_the_expected_output() -> None:
    path = DATASETS_DIR / "cruxeval" / "cruxeval.jsonl"
    items = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(items) == 600
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(_check, items) if f]
    assert failures == []
