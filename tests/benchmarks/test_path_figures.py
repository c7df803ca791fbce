"""Right answer, wrong execution in evaluations (issue 20): for a method with a path verdict, the
figures count the right answers on a diverging path among the right answers with a path verdict
(first samples, Chain of Code's no-model items aside) with a Wilson interval, and the wrong answers
on the real path; the items table has a path column and a filter for each disagreement; the
exports carry the path. A method without a path verdict has none of it."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.urls import reverse

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.stats import wilson_interval
from playground.benchmarks.summary import figures_of, summarise

# (passed, path) of the first sample of each item.
ITEMS = [
    (True, "agrees"), (True, "agrees"), (True, "diverges"), (True, "unknown"),
    (False, "agrees"), (False, "diverges"), (False, "diverges"), (True, ""),
]  # fmt: skip


def _evaluation(method: str = "trace") -> Evaluation:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method=method, model="tiny", status="done", total=len(ITEMS) + 2,
        samples=1,
    )  # fmt: skip
    rows = [
        Result(evaluation=evaluation, index=n, item_key=f"sample_{n}", status="done",
               passed=passed, score_status="pass" if passed else "fail", path=path)
        for n, (passed, path) in enumerate(ITEMS)
    ]  # fmt: skip
    # Not counted: a second sample, and an item no model was needed for.
    second = Result(evaluation=evaluation, index=0, sample=1, item_key="sample_0",
                    status="done", passed=True, path="diverges")  # fmt: skip
    no_model = Result(evaluation=evaluation, index=len(ITEMS), item_key="sample_x",
                      status="done", passed=False, score_status="no_model",
                      path="agrees")  # fmt: skip
    rows += [second, no_model]
    Result.objects.bulk_create(rows)
    return evaluation


def test_the_figures_count_each_disagreement_with_its_interval(db: None) -> None:
    evaluation = _evaluation()
    path = figures_of([evaluation])[evaluation.pk]["path"]
    assert path["judged"] == 6
    assert path["diverges"] == 3
    assert path["right_wrong_path"] == {
        "count": 1, "of": 3, "share": 1 / 3, "ci95": list(wilson_interval(1, 3)),
    }  # fmt: skip
    assert path["wrong_right_path"]["count"] == 1
    assert path["wrong_right_path"]["of"] == 3
    assert summarise(evaluation)["path"] == path  # kept with the done evaluation, and shown
    direct = _evaluation("direct")
    assert "path" not in figures_of([direct])[direct.pk]


def test_the_items_table_shows_the_path_and_filters_each_disagreement(
    db: None, client: Any
) -> None:
    evaluation = _evaluation()
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="path-figures"' in page
    # The table lists every sample: the second sample of item 0 is flagged too.
    assert page.count('<span class="tag flag">right answer, wrong execution</span>') == 2
    assert page.count('<span class="tag flag">wrong answer, right execution</span>') == 1
    only = client.get(evaluation.get_absolute_url() + "?path=right-wrong").content.decode()
    assert only.count('data-path="diverges"') == 2
    assert 'data-path="agrees"' not in only
    assert 'id="path-filter"' in only
    other = client.get(evaluation.get_absolute_url() + "?path=wrong-right").content.decode()
    assert other.count('data-path="agrees"') == 1
    assert "sample_x" not in other  # no model needed: not the model's
    ignored = client.get(evaluation.get_absolute_url() + "?path=%3Cb%3E").content.decode()
    assert 'id="path-filter"' not in ignored
    exported = client.get(reverse("benchmarks:export_csv", args=[evaluation.pk]))
    text = b"".join(exported.streaming_content).decode().lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["path"] for r in rows if r["sample"] == "0"][: len(ITEMS)] == [p for _, p in ITEMS]


@pytest.mark.parametrize("method", ["direct"])
def test_a_method_without_a_path_verdict_has_no_path_column(
    db: None, client: Any, method: str
) -> None:
    evaluation = _evaluation(method)
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="path-figures"' not in page
    assert "<th>Path</th>" not in page
