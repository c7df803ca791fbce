"""The pages of an evaluation under a rule (issue 21): the rule and the items it left out, the
paired table against its standard twin (escaped), starting the twin in one action, the start
form's rule, and the same figures in the JSON export and the API."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from playground.benchmarks import services
from playground.benchmarks.models import Evaluation, Result
from playground.sandbox import RULES
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


def _programs(owner: object) -> list[int]:
    """Three programs with a + (swap-add-sub changes them) and one without."""
    sources = [f"def f(x):\n    return x + {i}\n" for i in (1, 2, 3)]
    made = [ProgramFactory(owner=owner, source=source) for source in sources]
    made.append(ProgramFactory(owner=owner, source="def f(x):\n    return x * 2\n"))
    return [p.pk for p in made]


def _make(owner: object, ids: list[int], rule: str = "") -> Evaluation:
    return services.create_evaluation(
        dataset="programs", subset=[str(i) for i in ids], method="direct", model="tiny",
        owner=owner, title=SCRIPT, start=False, rule=rule,
    )  # fmt: skip


def _done(
    evaluation: Evaluation, passed: list[bool], priors: list[bool | None],
    changed: list[bool | None],
) -> None:  # fmt: skip
    rows = Result.objects.filter(evaluation=evaluation).order_by("index")
    for result, right, prior, change in zip(rows, passed, priors, changed, strict=True):
        result.status, result.passed, result.prior = Result.Status.DONE, right, prior
        result.changed = change
        result.score_status = "pass" if right else "fail"
        result.prediction = SCRIPT
        result.save()
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.DONE)


def test_the_page_shows_the_rule_and_one_escaped_table_per_rule(client: Client) -> None:
    owner = UserFactory()
    ids = _programs(owner)
    under = _make(owner, ids, "swap-add-sub")
    standard = _make(owner, ids)
    _done(under, [False, False, True], [True, False, None], [True, True, False])
    _done(standard, [True, True, True, False], [None] * 4, [None] * 4)
    client.force_login(owner)
    page = client.get(under.get_absolute_url()).content.decode()
    assert SCRIPT not in page
    assert html.escape(SCRIPT) in page
    text = html.unescape(page)
    assert RULES["swap-add-sub"].text in text
    assert "1 chosen item left out: the rule changes nothing in its program." in text
    raw_table = page[page.index('id="paired-swap-add-sub"') :]
    raw_table = raw_table[: raw_table.index("</table>")]
    # 3 items both scored: standard 3/3, under the rule 1/3; 2 right only standard (p: 2 *
    # C(2,0) / 2**2); one wrong answer is what Python normally returns. The rule changed the
    # outcome of 2 of them: both right in Python, both wrong under the rule.
    rows = {
        cells[0]: cells[1:]
        for line in re.findall(r"<tr[^>]*>(.*?)</tr>", raw_table, re.DOTALL)
        if (cells := [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                      for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", line, re.DOTALL)])
    }  # fmt: skip
    assert rows[""] == ["3 items both scored", "2 whose outcome the rule changed"]
    assert rows["Accuracy, Python's own semantics"][0].startswith("3 / 3 = 100%")
    assert rows["Accuracy, under the rule"][0].startswith("1 / 3 = 33%")
    assert rows["Accuracy, under the rule"][1].startswith("0 / 2 = 0%")
    assert rows["Difference (under the rule \u2212 standard), 95% interval"][0].startswith("-0.667")
    assert rows["Right only under Python's own semantics"] == ["2", "2"]
    assert rows["McNemar's exact p"] == ["0.5000", "0.5000"]
    assert rows["Wrong under the rule, with what Python normally returns (the model's priors)"] == [
        "1 of 2", "1 of 2",
    ]  # fmt: skip
    assert "1 chosen item the rule changes nothing in" in text
    assert f"#{standard.pk}</a>" in raw_table
    assert "No standard twin yet" not in text
    # The standard evaluation's page shows the same table.
    other = html.unescape(client.get(standard.get_absolute_url()).content.decode())
    assert 'id="paired-swap-add-sub"' in other
    assert f"#{under.pk}</a> against standard" in other
    # The JSON export's summary has the same figures.
    exported = json.loads(
        b"".join(client.get(reverse("benchmarks:export_json", args=[under.pk])).streaming_content)
    )
    [row] = exported["summary"]["paired"]
    assert (row["n"], row["only_standard_right"], row["only_rule_right"]) == (3, 2, 0)
    assert exported["summary"]["rule"] == "swap-add-sub"
    assert exported["summary"]["not_offered"] == 1
    assert [r["prior"] for r in exported["results"]] == [True, False, None]
    # And the API, to whoever may see it (a finished list of programs is its owner's).
    assert client.get(f"/api/evaluations/{under.pk}/paired").json() == [row]
    assert Client().get(f"/api/evaluations/{under.pk}/paired").status_code == 404
    listed = client.get("/api/evaluations?rule=swap-add-sub").json()["results"]
    assert [(r["id"], r["rule"], r["not_offered"]) for r in listed] == [
        (under.pk, "swap-add-sub", 1)
    ]


def test_the_standard_twin_starts_in_one_action(client: Client) -> None:
    owner = UserFactory()
    under = _make(owner, _programs(owner), "swap-add-sub")
    client.force_login(owner)
    page = html.unescape(client.get(under.get_absolute_url()).content.decode())
    assert "No standard twin yet" in page
    assert 'id="start-twin-form"' in page
    start = reverse("benchmarks:start_twin", args=[under.pk])
    response = client.post(start, follow=True)
    twin = Evaluation.objects.exclude(pk=under.pk).get()
    assert (twin.rule, twin.owner, twin.total) == ("", owner, 4)
    assert twin.config["digest"] == under.config["standard_twin"]
    assert f"Started its standard twin, #{twin.pk}" in html.unescape(response.content.decode())
    assert 'id="paired-swap-add-sub"' in response.content.decode()
    # Once there, it is not started again.
    again = html.unescape(client.post(start, follow=True).content.decode())
    assert f"Its standard twin is already #{twin.pk}" in again
    assert Evaluation.objects.count() == 2
    # Someone else cannot start one, nor see the page (a list of programs is its owner's).
    client.force_login(UserFactory())
    assert client.post(start).status_code == 404
    assert Evaluation.objects.count() == 2


def test_the_start_form_takes_a_rule_and_its_twin(client: Client) -> None:
    owner = UserFactory()
    ids = _programs(owner)
    client.force_login(owner)
    form = {
        "dataset": "programs", "programs": ", ".join(map(str, ids)), "method": "direct",
        "model": "embedded", "limit": "", "samples": "1", "seed": "0", "concurrency": "2",
        "title": "", "rule": "swap-add-sub", "twin": "on",
    }  # fmt: skip
    models = client.get(reverse("benchmarks:start")).context["form"].fields["model"].choices
    form["model"] = models[0][0]
    response = client.post(reverse("benchmarks:start"), form, follow=True)
    under, twin = Evaluation.objects.order_by("id")
    assert (under.rule, under.total, under.not_offered) == ("swap-add-sub", 3, 1)
    assert (twin.rule, twin.total) == ("", 4)
    assert twin.config["digest"] == under.config["standard_twin"]
    assert response.redirect_chain[-1][0] == under.get_absolute_url()
    # A rule that cannot apply is said next to the field, nothing made.
    unknown = client.post(reverse("benchmarks:start"), {**form, "rule": SCRIPT})
    assert "Choose a rule from the list" in html.unescape(unknown.content.decode())
    assert SCRIPT not in unknown.content.decode()
    assert Evaluation.objects.count() == 2
    # Chain of Code runs under a rule as any other method does (with no twin this time).
    coc = client.post(reverse("benchmarks:start"), {**form, "method": "coc", "twin": ""})
    assert coc.status_code == 302, html.unescape(coc.content.decode())
    made = Evaluation.objects.order_by("id").last()
    assert made is not None
    assert (made.method, made.rule, made.total) == ("coc", "swap-add-sub", 3)
    assert Evaluation.objects.count() == 3


def test_the_api_starts_an_evaluation_under_a_rule_and_its_twin(client: Client) -> None:
    owner = UserFactory()
    ids = _programs(owner)
    client.force_login(owner)
    body = {"dataset": "programs", "method": "direct", "programs": ids, "rule": "swap-add-sub",
            "twin": True, "title": SCRIPT}  # fmt: skip
    response = client.post("/api/evaluations", body, content_type="application/json")
    assert response.status_code == 201, response.content
    started = response.json()
    assert [(e["rule"], e["total"], e["not_offered"]) for e in started] == [
        ("swap-add-sub", 3, 1), ("", 4, 0),
    ]  # fmt: skip
    under, twin = (Evaluation.objects.get(pk=e["id"]) for e in started)
    assert twin.config["digest"] == under.config["standard_twin"]
    assert under.owner == owner
    # The start form's checks, as a 422 that says why; nothing made.
    for changes, words in (
        ({"rule": "plus-is-times"}, "Choose a rule from the list"),
        ({"programs": [10**9]}, "No program with id 1000000000"),
    ):
        refused = client.post("/api/evaluations", {**body, **changes},
                              content_type="application/json")  # fmt: skip
        assert refused.status_code == 422
        assert words in refused.json()["detail"]
    anonymous = Client().post("/api/evaluations", body, content_type="application/json")
    assert anonymous.status_code == 403
    assert Evaluation.objects.count() == 2
    # Chain of Code under the rule is taken, as any other method.
    coc = client.post("/api/evaluations", {**body, "method": "coc", "twin": False},
                      content_type="application/json")  # fmt: skip
    assert coc.status_code == 201, coc.content
    assert [(e["rule"], e["total"]) for e in coc.json()] == [("swap-add-sub", 3)]


def test_the_leaderboard_never_ranks_a_rule_evaluation_with_standard_ones() -> None:
    def done(title: str, rule: str) -> Evaluation:
        evaluation = Evaluation.objects.create(
            dataset="cruxeval", method="direct", model="tiny", status="done", title=title,
            total=1, rule=rule,
        )  # fmt: skip
        Result.objects.create(evaluation=evaluation, index=0, item_key="sample_0", passed=True,
                              status=Result.Status.DONE, score_status="pass")  # fmt: skip
        return evaluation

    done("Standard run", "")
    done("Swapped run", "swap-add-sub")
    page = html.unescape(Client().get(reverse("benchmarks:leaderboard")).content.decode())
    standard_board = page[page.index("<h2>CRUXEval-O output prediction</h2>") :]
    standard_board = standard_board[: standard_board.index("</table>")]
    rules_board = page[page.index("<h2>CRUXEval-O under a changed rule") :]
    rules_board = rules_board[: rules_board.index("</table>")]
    assert "Standard run" in standard_board
    assert "Swapped run" not in standard_board
    assert "Swapped run" in rules_board
    assert ">under swap-add-sub</span>" in rules_board
    assert "Standard run" not in rules_board


def test_the_compare_page_leaves_out_an_item_with_no_value_under_the_rule(client: Client) -> None:
    owner = UserFactory()
    ids = _programs(owner)
    under, standard = _make(owner, ids, "swap-add-sub"), _make(owner, ids)
    _done(under, [False, False, True], [None, True, None], [True, True, False])
    Result.objects.filter(evaluation=under, index=0).update(score_status="no_value")
    _done(standard, [True, True, True, False], [None] * 4, [None] * 4)
    client.force_login(owner)
    page = client.get(reverse("benchmarks:compare"), {"a": standard.pk, "b": under.pk})
    text = html.unescape(page.content.decode())
    assert page.context["test"]["n"] == 2  # of the 3 shared items, the one that raised is out
    assert (page.context["test"]["b10"], page.context["test"]["b01"]) == (1, 0)
    assert "1 item whose program raises under a changed rule" in text
