"""An evaluation of a stepping method (issue 22): the oracle model steps each CRUXEval program
of the library, every run graded step by step against its real trace; the evaluation's figures
per step (as a whole, per part, each variable), by step kind, by step index and by trace
length, and free mode's re-syncs, in the command's JSON, kept with the evaluation, in its JSON
export and on its page (a table and two SVG plots). An oracle wrong at one step of every run
is counted wrong exactly there."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from playground.benchmarks import plots
from playground.benchmarks.models import Evaluation, Result
from playground.programs.library import import_library
from tests.oracle import Oracle, oracle_server

ITEMS = 4  # CRUXEval sample_0 to sample_3: 18, 11, 7 and 5 steps from the call on
WRONG = 2  # the oracle's wrong step (from 0): the third step of every run


def _bench(monkeypatch: pytest.MonkeyPatch, oracle: Oracle, method: str) -> dict[str, Any]:
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        out = StringIO()
        call_command("bench", "cruxeval", model="oracle", limit=ITEMS, concurrency=2,
                     json=True, stdout=out, method=method)  # fmt: skip
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def _graded_steps() -> list[dict[str, Any]]:
    return [r.run.verdict["figures"] for r in Result.objects.select_related("run")]  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_an_oracle_stepping_evaluation_is_right_at_every_step(
    monkeypatch: pytest.MonkeyPatch, client: Any
) -> None:
    import_library()
    summary = _bench(monkeypatch, Oracle(), "step")
    assert summary["n"] == ITEMS
    # Every run right at every step; sample_2's answer repeats its argument, which the rules
    # count wrong (leakage) whatever the steps.
    assert {r.run.verdict["status"] for r in Result.objects.select_related("run")} == {"correct"}  # type: ignore[union-attr]
    assert summary["passed"] == ITEMS - summary["leakage"] == ITEMS - 1
    found = summary["stepping"]
    graded = sum(f["graded"] for f in _graded_steps())
    assert found["runs"] == ITEMS
    assert found["step"] == {"right": graded, "of": graded, "share": 1.0,
                             "ci95": found["step"]["ci95"]}  # fmt: skip
    assert [p["part"] for p in found["parts"]] == [
        "line", "variables", "each variable", "output", "value"
    ]  # fmt: skip
    assert all(p["share"] == 1.0 for p in found["parts"])
    assert {k["kind"] for k in found["kinds"]} >= {"call", "line", "return"}
    assert found["resyncs"] is None  # re-synced mode: the real step is given back every time
    assert sum(row[2] for row in found["by_index"]) == graded
    assert [row[0] for row in found["by_index"]][:3] == [1, 2, 3]
    evaluation = Evaluation.objects.get()
    assert evaluation.figures is not None
    assert evaluation.figures["stepping"] == found  # kept with the evaluation

    response = client.get(reverse("benchmarks:export_json", args=[evaluation.pk]))
    exported = json.loads(b"".join(response.streaming_content))
    assert exported["summary"]["stepping"] == found
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="stepping-figures"' in page
    assert f"<td>{graded} / {graded}</td>" in page
    for chart in ("plot-step-index", "plot-step-length"):
        assert f'<svg class="chart" id="{chart}"' in page
        assert f'id="{chart}-table"' in page


@pytest.mark.django_db(transaction=True)
def test_one_wrong_step_per_run_is_counted_at_its_index_and_resynced_in_free_mode(
    monkeypatch: pytest.MonkeyPatch, client: Any
) -> None:
    import_library()
    summary = _bench(monkeypatch, Oracle(error_step=WRONG), "step-free")
    # Every run has one wrong step (the item is scored by its value, which is right).
    assert {r.run.verdict["status"] for r in Result.objects.select_related("run")} == {"wrong"}  # type: ignore[union-attr]
    found = summary["stepping"]
    graded = sum(f["graded"] for f in _graded_steps())
    assert found["step"]["right"] == graded - ITEMS
    by_index = {step: (right, of) for step, right, of in found["by_index"]}
    assert by_index[WRONG + 1] == (0, ITEMS)  # every run wrong at that step, none elsewhere
    assert all(right == of for step, (right, of) in by_index.items() if step != WRONG + 1)
    assert found["resyncs"] == {"runs": ITEMS, "total": ITEMS, "per_step": ITEMS / graded}
    # The plot's first bucket (steps 1-5) holds the wrong steps.
    chart = plots.stepping_charts(found)["step_index"]
    assert chart is not None
    first = chart.bars[0]
    assert (first.passed, first.n) == (5 * ITEMS - ITEMS, 5 * ITEMS)
    evaluation = Evaluation.objects.get()
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="stepping-resyncs"' in page
    assert f"re-synced {ITEMS} times in {ITEMS} free runs" in page
