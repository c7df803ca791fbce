"""How much a model leans on its priors (issue 21): an evaluation under a semantic rule paired,
item by item, with its standard twin, the same evaluation under Python's own semantics.

The twin is found by digest, never by likeness: an evaluation under a rule keeps in its
configuration (``standard_twin``) the digest the same data set, subset, items, method, model,
seed, sampling, budget and scoring rules have without the rule (``services.configuration``),
so two evaluations that asked anything else differently are never paired. Items pair by their
reference (the program), first scored samples only, as the compare page pairs them; an item
that either side could not judge (the run or the check failed), never put to the model, or
whose program returned no value under the rule (it raised) is left out, and counted. The
test is McNemar's, exact; the difference's interval Newcombe's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.stats import mcnemar, paired_difference, wilson_interval
from playground.benchmarks.summary import APART
from playground.sandbox import RULES

NOT_JUDGED = frozenset({*APART, "error"})


@dataclass(frozen=True)
class _Item:
    passed: bool
    status: str
    prior: bool | None
    changed: bool | None


def twin_digest(evaluation: Evaluation) -> str:
    """The digest its standard twin has ("" for an evaluation under no rule)."""
    config = evaluation.config if isinstance(evaluation.config, dict) else {}
    return str(config.get("standard_twin", "")) if evaluation.rule else ""


def _best(candidates: QuerySet[Evaluation]) -> Evaluation | None:
    """A done one first (its results are all in), else the newest."""
    return (
        candidates.filter(status=Evaluation.Status.DONE).order_by("-id").first()
        or candidates.order_by("-id").first()
    )


def standard_twin(evaluation: Evaluation, among: QuerySet[Evaluation]) -> Evaluation | None:
    """The evaluation ``among`` (those the requester may see) that asked the same question
    under Python's own semantics, or None."""
    digest = twin_digest(evaluation)
    if not digest:
        return None
    return _best(
        among.filter(config__digest=digest, rule="", origin="run").exclude(pk=evaluation.pk)
    )


def under_rules(standard: Evaluation, among: QuerySet[Evaluation]) -> list[Evaluation]:
    """The evaluations ``among`` whose standard twin ``standard`` is, one per rule (a done one
    first, then the newest), in the catalogue's order."""
    config = standard.config if isinstance(standard.config, dict) else {}
    digest = config.get("digest")
    if standard.rule or not digest or standard.origin != "run":
        return []
    found = among.filter(config__standard_twin=digest).exclude(rule="")
    rules = set(found.values_list("rule", flat=True))
    picked = [_best(found.filter(rule=rule)) for rule in RULES if rule in rules]
    return [e for e in picked if e is not None]


def _first_samples(evaluation: Evaluation) -> dict[str, _Item]:
    """The first scored sample of each item, by its reference (one row per item, chosen in
    SQL: however many samples an item has)."""
    first: dict[str, _Item] = {}
    rows = (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .order_by("index", "sample")
        .distinct("index")
        .values_list("item_ref", "passed", "score_status", "prior", "changed")
    )
    for ref, passed, status, prior, changed in rows.iterator():
        key = json.dumps(ref, sort_keys=True)
        if key not in first:
            first[key] = _Item(bool(passed), status, prior, changed)
    return first


def _share(count: int, of: int) -> dict[str, Any]:
    return {"passed": count, "accuracy": count / of if of else 0.0,
            "ci95": list(wilson_interval(count, of))}  # fmt: skip


def _paired(pairs: list[tuple[_Item, _Item]]) -> dict[str, Any]:
    """The paired figures of (standard, under the rule) pairs of one item each."""
    test = mcnemar([s.passed for s, _ in pairs], [r.passed for _, r in pairs])
    n = test["n"]
    difference, low, high = paired_difference(
        test["both_right"], test["b10"], test["b01"], test["both_wrong"]
    )
    wrong = [r for _, r in pairs if not r.passed]
    checked = [r for r in wrong if r.prior is not None]
    return {
        "n": n,
        "standard": _share(sum(1 for s, _ in pairs if s.passed), n),
        "under_rule": _share(sum(1 for _, r in pairs if r.passed), n),
        "difference": {"value": difference, "ci95": [low, high]},
        "only_standard_right": test["b10"],
        "only_rule_right": test["b01"],
        "both_right": test["both_right"],
        "both_wrong": test["both_wrong"],
        "p": test["p"],
        # Wrong under the rule, and the answer is what the program returns under Python's own
        # semantics: the model answered from its priors. ``checked``: the wrong answers that
        # could be checked (a literal); ``of``: every wrong answer.
        "prior_following": {
            "count": sum(1 for r in checked if r.prior),
            "checked": len(checked),
            "of": len(wrong),
        },
    }


def compare(standard: Evaluation, under: Evaluation) -> dict[str, Any]:
    """The paired figures of ``under`` (an evaluation under a rule) against ``standard``, its
    twin, on the items both judged: each accuracy, the difference (under the rule minus
    standard) with its 95% interval, the discordant counts, McNemar's exact p, and how many of
    the answers wrong under the rule are what Python's own semantics returns; and the same on
    the items whose outcome the rule changed (``changed``), the only ones on which an answer
    can tell the stated rule from the model's priors."""
    ours, theirs = _first_samples(standard), _first_samples(under)
    pairs = [
        (ours[key], item)
        for key, item in theirs.items()
        if key in ours and item.status not in NOT_JUDGED and ours[key].status not in NOT_JUDGED
    ]
    rule = RULES.get(under.rule)
    return {
        "rule": under.rule,
        "rule_text": rule.text if rule is not None else "",
        "standard_id": standard.pk,
        "standard_url": standard.get_absolute_url(),
        "rule_id": under.pk,
        "rule_url": under.get_absolute_url(),
        # Both done: the figures are final (otherwise they cover the items scored so far).
        "complete": standard.status == Evaluation.Status.DONE
        and under.status == Evaluation.Status.DONE,
        **_paired(pairs),
        "changed": _paired([(s, r) for s, r in pairs if r.changed]),
        # Scored under the rule but not paired: not scored in the twin (yet), not judged on
        # either side (or never put to the model), or not among the twin's items.
        "left_out": len(theirs) - len(pairs),
        "not_offered": under.not_offered,
    }


def figures(evaluation: Evaluation, among: QuerySet[Evaluation]) -> list[dict[str, Any]]:
    """Per rule, the paired figures that involve this evaluation: under a rule, against its
    standard twin (if ``among`` holds one); a standard one, against each evaluation under a
    rule whose twin it is."""
    if evaluation.rule:
        twin = standard_twin(evaluation, among)
        return [compare(twin, evaluation)] if twin is not None else []
    return [compare(evaluation, under) for under in under_rules(evaluation, among)]
