"""The leaderboard tells its rows apart: each names its evaluation (a link), its owner and when
it finished (on 3103616 five identical "smollm2-135m · direct · 5 · 0.000" rows could not be
told apart), in a table that scrolls inside its box; the user's own evaluations are a table too,
and an evaluation's items count from 1."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground.benchmarks.models import Evaluation, Result
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _done(title: str, owner: object, day: int) -> Evaluation:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="smollm2-135m", status="done", title=title,
        owner=owner, total=1, finished_at=datetime(2026, 12, day, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    Result.objects.create(evaluation=evaluation, index=0, item_key="sample_0", passed=False,
                          status=Result.Status.DONE, score_status="wrong")  # fmt: skip
    return evaluation


def test_each_row_names_its_evaluation_owner_and_date() -> None:
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    first = _done("Baseline <b>run</b>", ada, 3)
    second = _done("", bob, 5)
    for n in range(5):
        _done(f"More {n}", UserFactory(), 6)
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("benchmarks:leaderboard")).content.decode()
    board = page[page.index('<table class="table leaderboard"') :]
    board = board[: board.index("</table>")]
    assert f'<a href="{first.get_absolute_url()}">Baseline &lt;b&gt;run&lt;/b&gt;</a>' in board
    assert f'<a href="{second.get_absolute_url()}">Evaluation #{second.pk}</a>' in board
    assert re.search(
        r"by ada · <time datetime=\"2026-12-03T09:30:00[^\"]*\">3 Dec 2026, 09:30", board
    )
    assert "by bob · " in board
    assert '<div class="table-wrap">\n<table class="table leaderboard"' in page
    # Every bar says its value: at 0% a bar is otherwise only its whisker.
    chart = page[page.index('<svg class="chart"') : page.index("</svg>")]
    assert chart.count('<text class="bar-value"') == chart.count("<rect") == 7
    assert ">0%</text>" in chart
    # One query for the rows' owners, not one per row.
    assert sum("auth_user" in q["sql"] for q in queries.captured_queries) <= 2


def test_my_evaluations_are_a_table_and_items_count_from_one() -> None:
    me = UserFactory()
    mine = _done("Mine", me, 4)
    client = Client()
    client.force_login(me)
    page = client.get(reverse("benchmarks:leaderboard")).content.decode()
    table = page[page.index('id="my-evaluations"') :]
    assert f'<a href="{mine.get_absolute_url()}">Mine</a>' in table[: table.index("</tr>", 200)]
    assert '<span class="tag eval-done">Done</span>' in table
    detail = client.get(mine.get_absolute_url()).content.decode()
    row = detail[detail.index('<tr class="fail">') :]
    assert row.startswith('<tr class="fail"><td class="num">1</td>')
    assert 'id="failures-only"' in detail


def test_cruxeval_output_and_input_prediction_are_ranked_on_separate_boards() -> None:
    """An input prediction's accuracy is not on an output prediction's scale: two boards, each
    paged by its own key, and an import tagged as such."""
    output = _done("Output run", None, 3)
    inputs = _done("Input run", None, 4)
    Evaluation.objects.filter(pk=inputs.pk).update(
        task="input", method="input-cot", origin="import", rules="official-1"
    )
    page = Client().get(reverse("benchmarks:leaderboard")).content.decode()
    o_board = page[page.index("<h2>CRUXEval-O output prediction</h2>") :]
    o_board = o_board[: o_board.index("</table>")]
    i_board = page[page.index("<h2>CRUXEval-I input prediction</h2>") :]
    i_board = i_board[: i_board.index("</table>")]
    assert "Output run" in o_board
    assert "Input run" not in o_board
    assert "Input run" in i_board
    assert "Output run" not in i_board
    assert ">imported</span>" in i_board
    only = Client().get(reverse("benchmarks:leaderboard") + "?dataset=cruxeval-input")
    text = only.content.decode()
    assert "Input run" in text
    assert "Output run" not in text
    assert output.pk != inputs.pk
