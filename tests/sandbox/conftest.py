"""The 800 CRUXEval programs of the library and their plain traces, for the two tests that read
them all: each returns the data set's output (test_cruxeval.py), and its Chain-of-Code trace is
the plain one step for step (test_coc.py). Each ran the same plain runs on its own before (about
15 s for 600 on two cores); now the first of them runs them once for both, kept while
tests/sandbox/ runs (package scope)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from playground import sandbox
from playground.programs.library import DATASETS_DIR


@pytest.fixture(scope="package")
def cruxeval_items() -> list[dict[str, Any]]:
    path = DATASETS_DIR / "cruxeval" / "cruxeval.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="package")
def cruxeval_plain_traces(cruxeval_items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each program's plain trace (``sandbox.run`` of its call), by item id."""

    def plain(item: dict[str, Any]) -> dict[str, Any]:
        return sandbox.run(item["code"], call=f"f({item['input']})")

    with ThreadPoolExecutor(max_workers=2) as workers:
        traces = list(workers.map(plain, cruxeval_items))
    return {item["id"]: trace for item, trace in zip(cruxeval_items, traces, strict=True)}
