"""Evaluations under a semantic rule (issue 21): made only of the items the rule changes, kept
apart from standard ones by their digest, and paired with their standard twin, only on the
items both scored, never with an evaluation that asked anything else differently."""

from __future__ import annotations

from typing import Any

import pytest

from playground import sandbox
from playground.benchmarks import paired, services
from playground.benchmarks.models import Evaluation, Result
from playground.programs.library import import_library
from playground.programs.models import Program
from playground.sandbox import RULES

pytestmark = pytest.mark.django_db


def _make(rule: str = "", **changes: Any) -> Evaluation:
    asked: dict[str, Any] = {
        "dataset": "cruxeval", "method": "direct", "model": "m", "limit": 12, "start": False,
    }  # fmt: skip
    return services.create_evaluation(**{**asked, **changes}, rule=rule)


def test_an_evaluation_under_a_rule_holds_only_the_items_it_changes_and_counts_the_rest() -> None:
    import_library()
    standard = _make()
    under = _make("swap-eq-ne")
    chosen = list(Result.objects.filter(evaluation=standard).values_list("item_ref", flat=True))
    kept = list(Result.objects.filter(evaluation=under).values_list("item_ref", flat=True))
    sources = dict(Program.objects.values_list("pk", "source"))
    touched = [r for r in chosen if sandbox.sites("swap-eq-ne", sources[r["program"]])]
    # The same first 12 items, less those without an == or != to swap, in the same order.
    assert kept == touched
    assert 0 < len(kept) < 12
    assert under.not_offered == 12 - len(kept)
    assert under.total == len(kept)
    assert under.rule == "swap-eq-ne"
    # Its digest says the rule; its standard twin's is the standard evaluation's, and a
    # standard evaluation's configuration names no rule at all (the digest it always had).
    assert under.config["rule"] == "swap-eq-ne"
    assert under.config["digest"] != standard.config["digest"]
    assert under.config["standard_twin"] == standard.config["digest"]
    assert "rule" not in standard.config
    assert _make("swap-add-sub").config["digest"] != under.config["digest"]


def test_input_prediction_under_a_rule_is_scored_by_the_sites_rules() -> None:
    # CRUXEval-I's official check appends an assert to the program, which the rule would
    # rewrite: under a rule the site's own check scores it, and says so; its twin is official.
    import_library()
    under = _make("swap-add-sub", method="input-direct")
    standard = _make(method="input-direct")
    assert (under.task, under.rules, under.config["rules"]) == ("input", "site-1", "site-1")
    assert (standard.task, standard.rules) == ("input", "official-1")
    assert under.config["standard_twin"] == standard.config["digest"]
    assert paired.standard_twin(under, Evaluation.objects.all()) == standard


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"rule": "plus-is-times"}, "There is no rule 'plus-is-times'; the rules are: swap-"),
        ({"rule": "swap-add-sub", "dataset": "bbh", "method": "tae"}, "Only programs run under"),
    ],
)
def test_a_rule_that_cannot_apply_is_refused_with_why(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(services.EvaluationError, match=words.replace("(", r"\(")):
        _make(**changes)
    assert not Evaluation.objects.exists()


def test_chain_of_code_may_be_evaluated_under_a_rule() -> None:
    import_library()
    under = _make("swap-lt-gt", method="coc")
    assert (under.method, under.rule, under.config["rule"]) == ("coc", "swap-lt-gt", "swap-lt-gt")
    assert 0 < under.total < 12
    assert under.config["standard_twin"] == _make(method="coc").config["digest"]


def test_a_rule_that_changes_none_of_the_items_makes_nothing() -> None:
    import_library()
    programs = [
        Program.objects.create(title=f"p{i}", source=f"def f(x):\n    return x * {i}\n",
                               call="f(2)", is_public=True)
        for i in range(2)
    ]  # fmt: skip
    with pytest.raises(services.EvaluationError, match="changes nothing in any of the 2 chosen"):
        _make("swap-add-sub", dataset="programs", subset=[p.pk for p in programs], limit=None)
    assert not Evaluation.objects.exists()


def _score(evaluation: Evaluation, marks: dict[int, tuple[str, bool | None, bool | None]]) -> None:
    """Score results by position: "pass", "fail", "no_model", "error" or "pending", whether the
    answer is Python's usual one (prior) and whether the rule changed the program's outcome."""
    for index, (mark, prior, changed) in marks.items():
        result = Result.objects.get(evaluation=evaluation, index=index, sample=0)
        if mark == "pending":
            continue
        result.status = Result.Status.DONE
        result.passed = mark == "pass"
        result.score_status = mark
        result.prior, result.changed = prior, changed
        result.save()


def test_the_pairing_takes_only_the_items_both_scored() -> None:
    import_library()
    standard = _make(limit=40)
    under = _make("swap-add-sub", limit=40)
    keys = {r.item_ref["program"]: r.index for r in Result.objects.filter(evaluation=standard)}
    rule_items = [r.item_ref["program"] for r in Result.objects.filter(evaluation=under)]
    assert len(rule_items) >= 10
    # Per item under the rule: (standard mark, mark under the rule, prior-following, whether
    # the rule changed the program's outcome).
    plan = [
        ("pass", "pass", None, False),  # right both ways (the rule changed nothing here)
        ("pass", "fail", True, True),  # right only standard, and answered what Python returns
        ("pass", "fail", False, True),  # right only standard, another wrong answer
        ("pass", "fail", None, False),  # right only standard, not checkable
        ("fail", "pass", None, True),  # right only under the rule
        ("fail", "fail", True, None),  # wrong both ways
        ("pass", "pending", None, True),  # not scored under the rule yet: left out
        ("no_model", "pass", None, True),  # never put to the model on one side: left out
        ("pass", "no_value", None, True),  # no value under the rule (it raised): left out
        ("pass", "error", None, True),  # not judged under the rule: left out
    ]
    standard_marks: dict[int, tuple[str, bool | None, bool | None]] = {}
    rule_marks: dict[int, tuple[str, bool | None, bool | None]] = {}
    for position, (program, (ours, theirs, prior, changed)) in enumerate(
        zip(rule_items, plan, strict=False)
    ):
        standard_marks[keys[program]] = (ours, None, None)
        rule_marks[position] = (theirs, prior, changed)
    _score(standard, standard_marks)
    _score(under, rule_marks)

    [row] = paired.figures(under, Evaluation.objects.all())
    assert (row["rule"], row["standard_id"], row["rule_id"]) == (
        "swap-add-sub", standard.pk, under.pk,
    )  # fmt: skip
    assert row["rule_text"] == RULES["swap-add-sub"].text
    assert row["n"] == 6
    assert row["standard"]["passed"] == 4
    assert row["under_rule"]["passed"] == 2
    assert (row["only_standard_right"], row["only_rule_right"]) == (3, 1)
    assert (row["both_right"], row["both_wrong"]) == (1, 1)
    assert row["p"] == 0.625  # 2 * (C(4,0) + C(4,1)) / 2**4
    assert row["difference"]["value"] == pytest.approx(-2 / 6)
    low, high = row["difference"]["ci95"]
    assert -1 < low < -2 / 6 < high < 1
    assert row["prior_following"] == {"count": 2, "checked": 3, "of": 4}
    # Scored under the rule but not paired: one never put to the model in the standard run,
    # one with no value, one not judged (the item not yet scored is not counted: it may pair).
    assert row["left_out"] == 3
    # On the items whose outcome the rule changed: the 2nd, 3rd and 5th.
    changed = row["changed"]
    assert changed["n"] == 3
    assert (changed["only_standard_right"], changed["only_rule_right"]) == (2, 1)
    assert changed["p"] == 1.0  # 2 * (C(3,0) + C(3,1)) / 2**3, capped at 1
    assert changed["prior_following"] == {"count": 1, "checked": 2, "of": 2}
    assert row["not_offered"] == under.not_offered
    assert row["complete"] is False
    # The standard evaluation shows the same comparison, from its side.
    assert paired.figures(standard, Evaluation.objects.all()) == [row]


def test_evaluations_that_asked_anything_else_differently_are_never_paired() -> None:
    import_library()
    under = _make("swap-add-sub")
    for changes in ({"seed": 1}, {"model": "other"}, {"limit": 11}, {"max_tokens": 100}):
        _make(**changes)
    assert paired.figures(under, Evaluation.objects.all()) == []
    # Another rule's evaluation is no twin either, and a standard one is paired with the rule
    # evaluations whose twin it is, one table per rule.
    other_rule = _make("swap-lt-gt")
    assert paired.figures(under, Evaluation.objects.all()) == []
    standard = _make()
    rows = paired.figures(standard, Evaluation.objects.all())
    assert [r["rule"] for r in rows] == ["swap-add-sub", "swap-lt-gt"]
    assert [r["rule_id"] for r in rows] == [under.pk, other_rule.pk]
    # Only among the evaluations the requester may see.
    assert paired.figures(under, Evaluation.objects.exclude(pk=standard.pk)) == []


def test_the_standard_twin_is_started_with_the_same_question() -> None:
    import_library()
    under = _make("swap-lt-gt", seed=7, limit=9, sample_randomly=True, max_tokens=300)
    twin = services.start_standard_twin(under, owner=None, start=False)
    assert twin.rule == ""
    assert twin.config["digest"] == under.config["standard_twin"]
    assert (twin.seed, twin.limit, twin.sample_randomly, twin.max_tokens) == (7, 9, True, 300)
    assert paired.standard_twin(under, Evaluation.objects.all()) == twin
    with pytest.raises(services.EvaluationError, match="Only an evaluation under a rule"):
        services.start_standard_twin(twin, owner=None, start=False)
    # A configuration of another time (another scoring version) cannot be matched again.
    under.config = {**under.config, "standard_twin": "0" * 64}
    with pytest.raises(services.EvaluationError, match="would not ask the same question"):
        services.start_standard_twin(under, owner=None, start=False)


def test_each_item_pairs_by_its_first_scored_sample() -> None:
    import_library()
    standard = _make(limit=20, samples=3)
    under = _make("swap-add-sub", limit=20, samples=3)
    [first, *_] = Result.objects.filter(evaluation=under).order_by("index")
    twin = Result.objects.filter(evaluation=standard, item_ref=first.item_ref)
    # Standard: right on sample 0. Under the rule: sample 0 not scored yet, sample 1 wrong with
    # Python's answer, sample 2 right: sample 1 is the first scored, and counts.
    twin.filter(sample=0).update(status="done", passed=True, score_status="pass")
    rows = Result.objects.filter(evaluation=under, index=first.index)
    rows.filter(sample=1).update(status="done", passed=False, score_status="fail", prior=True)
    rows.filter(sample=2).update(status="done", passed=True, score_status="pass")
    [row] = paired.figures(under, Evaluation.objects.all())
    assert (row["n"], row["only_standard_right"], row["prior_following"]["count"]) == (1, 1, 1)
