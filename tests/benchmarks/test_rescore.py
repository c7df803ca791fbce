"""Scoring a finished evaluation again under the current rules, keeping its generations: from the
command line (an import whose scores an older rule wrote; the site's own CRUXEval-O with the
leakage rule; BIG-Bench Hard), from the evaluation's page (owner only, rate-limited, queued) and
from the API; idempotent, and the rules' version stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings

from playground.benchmarks.models import Evaluation, Result
from playground.lib import ratelimits
from playground.programs.library import DATASETS_DIR, import_library
from playground.programs.models import Dataset, Program, TaskExample
from tests.factories import UserFactory
from tests.limits import assert_refused, fresh_address

pytestmark = pytest.mark.django_db


def _bench(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("bench", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def _statuses(evaluation_id: int) -> list[tuple[str, int, str, bool]]:
    rows = Result.objects.filter(evaluation_id=evaluation_id).order_by("index", "sample")
    return list(rows.values_list("item_key", "sample", "score_status", "passed"))


def test_an_import_scored_by_an_older_rule_is_scored_again_by_the_official_one(
    tmp_path: Path,
) -> None:
    """Three results carry what an older rule wrote (a skipped call counted as a failure, a
    right answer failed, a wrong one passed): re-scoring restores the official outcomes and
    figures, says how many changed, stores the version, and a second run changes nothing."""
    import_library()
    items = [json.loads(line) for line in (DATASETS_DIR / "cruxeval/cruxeval.jsonl").open()][:40]
    lines = [
        {"id": item["id"], "predictions": [item["output"], f"f({item['input']})"]} for item in items
    ]
    lines[4]["predictions"][0] = "'not it'"
    path = tmp_path / "gens.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    imported = _bench("import", str(path), "--dataset", "cruxeval", "--model", "m")
    right = _statuses(imported["id"])
    evaluation = Evaluation.objects.get(pk=imported["id"])
    rows = Result.objects.filter(evaluation=evaluation)
    rows.filter(item_key="sample_0", sample=1).update(score_status="fail", passed=False)
    rows.filter(item_key="sample_1", sample=0).update(score_status="fail", passed=False)
    rows.filter(item_key="sample_4", sample=0).update(score_status="pass", passed=True)
    Evaluation.objects.filter(pk=evaluation.pk).update(rules="official-0", figures=None)

    again = _bench("rescore", str(evaluation.pk))
    assert again["rescored"]["changed"] == 3
    assert again["rescored"]["rules"] == again["rules"] == "official-1"
    assert _statuses(evaluation.pk) == right
    assert again["pass@1"] == imported["pass@1"]
    assert again["pass@2"] == imported["pass@2"]
    evaluation.refresh_from_db()
    assert evaluation.config["rescored"]["changed"] == 3
    assert evaluation.config["sha256"]  # what it was made from is kept beside
    assert _bench("rescore", str(evaluation.pk))["rescored"]["changed"] == 0  # idempotent


def _site_evaluation(predictions: dict[str, str], **fields: Any) -> Evaluation:
    """A done CRUXEval-O evaluation of the site's, scored by an older (unversioned) rule that
    passed everything: its runs are gone, its predictions and items are kept."""
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="tiny", status="done", rules="",
        total=len(predictions), **fields,
    )  # fmt: skip
    for index, (key, prediction) in enumerate(predictions.items()):
        program = Program.objects.get(dataset=Dataset.CRUXEVAL, external_id=key)
        Result.objects.create(
            evaluation=evaluation, index=index, item_key=key, item_ref={"program": program.pk},
            status="done", passed=True, score_status="pass", prediction=prediction,
        )  # fmt: skip
    return evaluation


def test_the_sites_own_evaluation_is_scored_again_by_the_sites_current_rules() -> None:
    import_library()
    programs = {
        p.external_id: p
        for p in Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:4]
    }
    two = programs["sample_2"]  # f('hbtofdeiequ') == 'hbtofdeiequ': its output is its input
    evaluation = _site_evaluation(
        {
            "sample_0": programs["sample_0"].expected_output,
            "sample_1": "'wrong'",
            "sample_2": two.expected_output,
            "sample_3": "not a literal (",
        }
    )
    outcome = _bench("rescore", str(evaluation.pk))
    assert outcome["rules"] == "site-1"
    assert [(k, s) for k, _, s, _ in _statuses(evaluation.pk)] == [
        ("sample_0", "pass"), ("sample_1", "fail"), ("sample_2", "fail"),
        ("sample_3", "unparsable"),
    ]  # fmt: skip
    leaked = Result.objects.get(evaluation=evaluation, item_key="sample_2")
    assert leaked.leakage
    assert "LiveCodeBench" in leaked.reason
    assert (outcome["n"], outcome["passed"]) == (4, 1)
    assert outcome["rescored"]["changed"] == 3


def test_bbh_and_a_failed_run_keep_their_meaning() -> None:
    import_library()
    examples = list(TaskExample.objects.filter(task__name="navigate").order_by("index")[:2])
    evaluation = Evaluation.objects.create(
        dataset="bbh", method="cot", model="tiny", status="done", total=2
    )
    Result.objects.create(
        evaluation=evaluation, index=0, item_key="navigate#0", status="done", passed=False,
        score_status="fail", item_ref={"task_example": examples[0].pk},
        prediction=examples[0].target,
    )  # fmt: skip
    Result.objects.create(
        evaluation=evaluation, index=1, item_key="navigate#1", status="done", passed=False,
        score_status="error", reason="Could not be run: the model was down.",
        item_ref={"task_example": examples[1].pk}, prediction="",
    )  # fmt: skip
    outcome = _bench("rescore", str(evaluation.pk))
    assert [s for *_, s, _ in _statuses(evaluation.pk)] == ["pass", "error"]
    assert outcome["errors"] == 1  # a run that failed is still not the model's answer
    running = Evaluation.objects.create(dataset="bbh", method="cot", model="t", status="running")
    with pytest.raises(CommandError, match="Only a finished evaluation"):
        _bench("rescore", str(running.pk))
    with pytest.raises(CommandError, match="No evaluation 999999"):
        _bench("rescore", "999999")


def test_the_owner_asks_from_the_page_and_the_api_others_cannot(
    settings: Settings, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    import_library()
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"rescores.user": "2/h"})
    owner, other = UserFactory(), UserFactory()
    evaluation = _site_evaluation({"sample_1": "'wrong'"}, owner=owner)
    url = f"/evaluations/{evaluation.pk}/rescore/"
    mine = Client(REMOTE_ADDR=fresh_address())
    mine.force_login(owner)
    page = mine.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="rescore-form"' in page
    assert "the site's rules of the time (unversioned)" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = mine.post(url, follow=True)
    assert "Scoring again under the current rules (site-1)" in response.content.decode()
    evaluation.refresh_from_db()
    assert evaluation.rules == "site-1"
    assert Result.objects.get(evaluation=evaluation).score_status == "fail"
    page = mine.get(evaluation.get_absolute_url()).content.decode()
    assert "(1 result changed)" in page

    theirs = Client(REMOTE_ADDR=fresh_address())
    theirs.force_login(other)
    assert 'id="rescore-form"' not in theirs.get(evaluation.get_absolute_url()).content.decode()
    assert theirs.post(url).status_code == 404
    assert Client().post(url).status_code == 302  # to the login page
    api = f"/api/evaluations/{evaluation.pk}/rescore"
    assert theirs.post(api).status_code == 404
    cookie_only = Client(enforce_csrf_checks=True, REMOTE_ADDR=fresh_address())
    cookie_only.force_login(owner)
    refused = cookie_only.post(api)  # a session cookie and no CSRF token: another site's form
    assert refused.status_code == 403
    assert "CSRF check failed" in refused.json()["detail"]
    assert Client().post(api).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        answered = mine.post(api)
    assert answered.status_code == 202, answered.content
    assert answered.json() == {"id": evaluation.pk, "queued": True, "rules": "site-1"}
    assert_refused(mine.post(url), "evaluations scored again")  # the third in the hour
    assert mine.post(api).status_code == 429
    Evaluation.objects.filter(pk=evaluation.pk).update(status="running")
    assert mine.post(api).status_code == 409
