"""Evaluation pages: two evaluations compared item by item (counts, McNemar's p, the items one
got right and the other wrong), who may see what, the plots (buckets, intervals, escaped SVG)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.benchmarks import plots
from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.stats import wilson_interval
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


def _evaluation(*, status: str = "done", dataset: str = "cruxeval", **fields: Any) -> Evaluation:
    fields.setdefault("method", "direct")
    fields.setdefault("model", "tiny")
    return Evaluation.objects.create(dataset=dataset, status=status, **fields)


def _result(evaluation: Evaluation, index: int, key: str, passed: bool, **fields: Any) -> Result:
    return Result.objects.create(
        evaluation=evaluation, index=index, item_key=key, passed=passed,
        status=Result.Status.DONE, score_status="correct" if passed else "wrong", **fields,
    )  # fmt: skip


def _run() -> Run:
    program = ProgramFactory()
    return Run.objects.create(program=program, source=program.source, method="direct")


def _pair() -> tuple[Evaluation, Evaluation, dict[str, Run]]:
    """Ten shared items: both right on 2, only A on 6, only B on 1, neither on 1 (A 8/10, B 3/10);
    one item only A scored and one only B scored."""
    a, b = _evaluation(title="Eval A"), _evaluation(title="Eval B", method="cot")
    outcomes = [(True, True)] * 2 + [(True, False)] * 6 + [(False, True)] + [(False, False)]
    runs = {}
    for i, (right_a, right_b) in enumerate(outcomes):
        key = SCRIPT if i == 2 else f"sample_{i}"  # one of "only A right"
        runs[f"a{i}"], runs[f"b{i}"] = _run(), _run()
        _result(a, i, key, right_a, run=runs[f"a{i}"])
        # B's items in another order, with a second sample that does not count.
        _result(b, 100 - i, key, right_b, run=runs[f"b{i}"])
        Result.objects.create(evaluation=b, index=100 - i, sample=1, item_key=key,
                              passed=not right_b, status=Result.Status.DONE)  # fmt: skip
    _result(a, 50, "only_in_a", True)
    _result(b, 50, "only_in_b", False)
    return a, b, runs


def _compare(client: Client, a: Evaluation | int | str, b: Evaluation | int | str) -> Any:
    ids = [x.pk if isinstance(x, Evaluation) else x for x in (a, b)]
    return client.get(reverse("benchmarks:compare"), {"a": ids[0], "b": ids[1]})


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, element_id
    return match.group(1).strip()


def _section(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}".*?</(table|ul)>', html, re.S)
    assert match, element_id
    return match.group(0)


def test_compare_counts_and_exact_mcnemar_p(client: Client) -> None:
    a, b, _ = _pair()
    response = _compare(client, a, b)
    assert response.status_code == 200
    test = response.context["test"]
    # p = 2 * P(X <= 1), X ~ Binomial(7, 1/2) = 2 * (1 + 7) / 128
    assert test == {"n": 10, "b01": 1, "b10": 6, "both_right": 2, "both_wrong": 1, "p": 0.125}
    html = response.content.decode()
    assert _text(html, "both-right") == "2"
    assert _text(html, "only-a") == "6"
    assert _text(html, "only-b") == "1"
    assert _text(html, "both-wrong") == "1"
    assert _text(html, "p-value") == "0.1250"


def test_compare_lists_the_items_only_one_got_right_with_their_runs(client: Client) -> None:
    a, b, runs = _pair()
    html = _compare(client, a, b).content.decode()
    only_a = _section(html, "only-a-right")
    for i in range(2, 8):
        assert reverse("runs:detail", args=[runs[f"a{i}"].pk]) in only_a
        assert reverse("runs:detail", args=[runs[f"b{i}"].pk]) in only_a
    assert "sample_3" in only_a
    assert "sample_0" not in only_a
    assert "sample_8" not in only_a
    only_b = _section(html, "only-b-right")
    assert "sample_8" in only_b
    assert reverse("runs:detail", args=[runs["a8"].pk]) in only_b
    assert "sample_9" not in only_b
    assert "sample_3" not in only_b
    # A key from the data set is text, never markup.
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in only_a
    assert "only_in_a" in _section(html, "only-in-a")
    assert "only_in_b" in _section(html, "only-in-b")
    # Swapped, the roles swap.
    swapped = _compare(client, b, a).context["test"]
    assert (swapped["b01"], swapped["b10"], swapped["p"]) == (6, 1, 0.125)


def test_compare_refuses_different_data_sets_with_a_message(client: Client) -> None:
    a = _evaluation(title="On CRUXEval")
    b = _evaluation(title="On BBH", dataset="bbh")
    response = _compare(client, a, b)
    assert response.status_code == 400
    assert "only evaluations over the same data set and task can be compared" in _text(
        response.content.decode(), "compare-error"
    )
    for bad in [(a, "x"), (a, a)]:
        assert _compare(client, *bad).status_code == 400
    assert client.get(reverse("benchmarks:compare")).status_code == 400
    # CRUXEval-O against CRUXEval-I: one data set, two tasks, no item-by-item pairing.
    inputs = _evaluation(title="Inputs", method="input-cot", task="input")
    response = _compare(client, a, inputs)
    assert response.status_code == 400
    assert (
        "On CRUXEval is over CRUXEval output prediction and Inputs over CRUXEval-I input "
        "prediction" in _text(response.content.decode(), "compare-error")
    )


def test_unfinished_evaluations_are_their_owners_and_finished_ones_public(client: Client) -> None:
    owner = UserFactory()
    running = _evaluation(status="running", owner=owner)
    done = _evaluation(owner=owner)
    other = _evaluation()
    for evaluation in (running, done, other):
        _result(evaluation, 0, "sample_0", True)
    stranger = UserFactory()
    client.force_login(stranger)
    hidden = [
        reverse("benchmarks:detail", args=[running.pk]),
        reverse("benchmarks:export_json", args=[running.pk]),
        reverse("benchmarks:export_csv", args=[running.pk]),
    ]
    for url in hidden:
        assert client.get(url).status_code == 404, url
    assert _compare(client, running, other).status_code == 404
    assert _compare(client, other, running).status_code == 404
    for url in [
        reverse("benchmarks:detail", args=[done.pk]),
        reverse("benchmarks:export_json", args=[done.pk]),
        reverse("benchmarks:export_csv", args=[done.pk]),
    ]:
        assert client.get(url).status_code == 200, url
    assert _compare(client, done, other).status_code == 200
    # The owner sees theirs, and may compare it while it runs.
    client.force_login(owner)
    for url in hidden:
        assert client.get(url).status_code == 200, url
    assert _compare(client, running, other).status_code == 200


def test_detail_offers_evaluations_of_the_same_data_set_to_compare(client: Client) -> None:
    a = _evaluation(title="Mine")
    same = _evaluation(title="Same data set")
    _evaluation(title="Other data set", dataset="p3")
    _evaluation(title="Someone's running", status="running")
    html = client.get(a.get_absolute_url()).content.decode()
    match = re.search(r'<form[^>]*id="compare-form".*?</form>', html, re.S)
    assert match
    form = match.group(0)
    assert f'action="{reverse("benchmarks:compare")}"' in form
    assert f'<input type="hidden" name="a" value="{a.pk}">' in form
    assert f'<option value="{same.pk}">' in form
    assert "Same data set" in form
    assert "Other data set" not in form
    assert "running" not in form


def test_progress_partial_still_polls_while_running(client: Client) -> None:
    owner = UserFactory()
    evaluation = _evaluation(status="running", owner=owner, total=4)
    _result(evaluation, 0, "sample_0", True, lines=3)
    client.force_login(owner)
    response = client.get(evaluation.get_absolute_url(), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="progress"')
    assert 'hx-trigger="every 1s"' in html
    assert "1 / 4" in html
    assert "<svg" not in html  # the plots are not redrawn every second


def _keyed(chart: plots.Chart | None) -> dict[str, tuple[int, int | None]]:
    assert chart is not None
    return {bar.label: (bar.n, bar.passed) for bar in chart.bars}


def test_accuracy_buckets_by_lines_with_wilson_intervals() -> None:
    pairs = [(3, True), (5, False), (6, True), (10, True), (12, False), (40, True), (None, True)]
    chart = plots.accuracy_by(pairs, plots.LINE_BUCKETS, title="by lines")
    assert _keyed(chart) == {"1-5": (2, 1), "6-10": (2, 2), "11-20": (1, 0), "21+": (1, 1)}
    assert chart is not None
    first = chart.bars[0]
    assert first.value == 0.5
    assert (first.low, first.high) == wilson_interval(1, 2)
    # Taller bars for higher accuracy, whiskers around the bar's top.
    assert chart.bars[1].height > first.height > chart.bars[2].height == 0
    assert first.whisker_top is not None
    assert first.whisker_bottom is not None
    assert first.whisker_top < first.y < first.whisker_bottom
    assert plots.accuracy_by([(None, True)], plots.LINE_BUCKETS, title="none") is None


def test_divergence_histogram_counts() -> None:
    chart = plots.histogram([1, 5, 6, 13, 13, 81, None], plots.DIVERGENCE_BUCKETS, title="d")
    assert chart is not None
    assert [bar.n for bar in chart.bars] == [2, 1, 2, 0, 1]
    assert [bar.label for bar in chart.bars] == ["1-5", "6-10", "11-20", "21-50", "51+"]
    assert plots.histogram([None], plots.DIVERGENCE_BUCKETS, title="d") is None


def test_detail_draws_the_plots_and_their_tables(client: Client) -> None:
    evaluation = _evaluation(method="trace")
    for i, (lines, steps, diverged, passed) in enumerate(
        [(3, 8, None, True), (4, 9, 2, False), (8, 30, 7, False), (25, 200, 60, True)]
    ):
        _result(evaluation, i, f"sample_{i}", passed, lines=lines, steps=steps,
                divergence_step=diverged)  # fmt: skip
    response = client.get(evaluation.get_absolute_url())
    charts = response.context["plots"]
    assert _keyed(charts["lines"]) == {
        "1-5": (2, 1),
        "6-10": (1, 0),
        "11-20": (0, 0),
        "21+": (1, 1),
    }
    assert _keyed(charts["steps"])["1-10"] == (2, 1)
    # Stored steps 2, 7 and 60 are steps 3, 8 and 61 as the viewers count them.
    assert [bar.n for bar in charts["divergence"].bars] == [1, 1, 0, 0, 1]
    html = response.content.decode()
    for name in ("lines", "steps", "divergence"):
        assert f'<svg class="chart" id="plot-{name}"' in html
        assert f'id="plot-{name}-table"' in html
    assert "<rect" in html


def test_no_divergence_plot_for_methods_without_steps(client: Client) -> None:
    evaluation = _evaluation(method="direct")
    _result(evaluation, 0, "sample_0", True, lines=3, divergence_step=4)
    charts = client.get(evaluation.get_absolute_url()).context["plots"]
    assert charts["lines"] is not None
    assert charts["divergence"] is None
    assert charts["steps"] is None


def test_leaderboard_chart_by_method_and_model_is_escaped(client: Client) -> None:
    a = _evaluation(model="<b>evil</b>", method="direct")
    b = _evaluation(model="<b>evil</b>", method="cot")
    c = _evaluation(model="tiny", method="direct")
    _evaluation(status="running", model="secret")
    for evaluation, right in ((a, 3), (b, 1), (c, 2)):
        for i in range(4):
            _result(evaluation, i, f"sample_{i}", i < right)
    response = client.get(reverse("benchmarks:leaderboard"))
    (board,) = response.context["boards"]
    chart = board["chart"]
    assert [g.label for g in chart.groups] == ["<b>evil</b>", "tiny"]
    assert [(bar.series, bar.passed, bar.n) for bar in chart.bars] == [
        ("cot", 1, 4), ("direct", 3, 4), ("direct", 2, 4)
    ]  # fmt: skip
    assert dict(chart.legend).keys() == {"cot", "direct"}
    html = response.content.decode()
    svg = html[html.index('<svg class="chart"') : html.index("</svg>")]
    assert svg.count("<rect") == 3
    assert "<b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in svg
    assert a.get_absolute_url() in svg
    assert html.index('<svg class="chart"') < html.index('id="board-1"')
    assert "secret" not in html
