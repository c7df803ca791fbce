"""An evaluation with a probe method: each item's run graded probe by probe against its real trace,
the evaluation's figures per probe kind and its incremental consistency (command line, JSON
summary, the evaluation's page); an oracle made wrong on the first question of every run fails
every item and exactly one probe of each run. Re-scoring by a benchmark's rules is refused."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.rescoring import refusal
from playground.emulation import probes
from playground.programs.library import import_library
from tests.oracle import Oracle, oracle_server

ITEMS = 8


def _bench(monkeypatch: pytest.MonkeyPatch, oracle: Oracle, **options: Any) -> dict[str, Any]:
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        out = StringIO()
        call_command(
            "bench", "cruxeval", model="oracle", limit=ITEMS, concurrency=2, json=True,
            stdout=out, **options,
        )  # fmt: skip
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_a_probe_evaluation_reports_each_kind_and_consistency(
    monkeypatch: pytest.MonkeyPatch, client: Any
) -> None:
    import_library()
    summary = _bench(monkeypatch, Oracle(), method="probe")
    assert summary["method"] == "probe"
    assert summary["n"] == summary["passed"] == ITEMS  # every probe of every run right
    found = summary["probes"]
    assert found["runs"] == ITEMS
    assert [row["kind"] for row in found["kinds"]] == list(probes.KINDS)
    for row in found["kinds"]:
        kind = row["kind"]
        assert row["correct"] == row["asked"] >= (ITEMS if kind in ("output", "sequence") else 1)
        assert row["accuracy"] == 1.0
    assert found["items"] >= ITEMS
    assert found["ic"]["value"] == 1.0
    assert found["prefix"] == 1.0
    # The path verdict of every run agrees: no right answer on a wrong path.
    assert set(Result.objects.values_list("path", flat=True)) == {"agrees"}
    assert summary["path"]["judged"] == ITEMS
    assert summary["path"]["right_wrong_path"]["count"] == 0
    evaluation = Evaluation.objects.get()
    assert evaluation.figures is not None
    assert evaluation.figures["probes"] == found  # kept with the evaluation
    assert refusal(evaluation) is not None
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="probe-figures"' in page
    for kind in probes.KINDS:
        assert f'<tr data-kind="{kind}">' in page
    assert 'data-kind="ic"' in page


@pytest.mark.django_db(transaction=True)
def test_one_wrong_and_one_unreadable_probe_per_run_show_in_their_kinds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_library()
    oracle = Oracle(probe_wrong=1, probe_unreadable=2)
    summary = _bench(monkeypatch, oracle, method="probe-chain")
    assert summary["n"] == ITEMS
    assert summary["passed"] == 0
    assert summary["errors"] == 0
    kinds = {row["kind"]: row for row in summary["probes"]["kinds"]}
    missed = sum(row["asked"] - row["correct"] for row in kinds.values())
    assert missed == 2 * ITEMS  # two probes of each run, no other
    assert sum(row["unparsable"] for row in kinds.values()) == ITEMS
    first_kinds: dict[str, int] = {}
    second_kinds: dict[str, int] = {}
    for result in Result.objects.select_related("run"):
        assert result.score_status == "fail"
        marks = result.run.verdict["probes"]  # type: ignore[union-attr]
        statuses = [m["status"] for m in marks]
        assert statuses == ["wrong", "unparsable"] + ["correct"] * (len(marks) - 2)
        first_kinds[marks[0]["kind"]] = first_kinds.get(marks[0]["kind"], 0) + 1
        second_kinds[marks[1]["kind"]] = second_kinds.get(marks[1]["kind"], 0) + 1
    for kind, row in kinds.items():
        assert row["unparsable"] == second_kinds.get(kind, 0)
        assert row["asked"] - row["correct"] == first_kinds.get(kind, 0) + row["unparsable"]
    assert summary["probes"]["ic"]["value"] < 1.0
