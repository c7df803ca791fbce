"""The generic JSONL import (``{"id", "predictions"}``, any library data set, any subset), the
upload from the evaluations page and the API (checked in the request, scored on the batch
worker), and an import whose scorer is killed half way: resumed, every result scored once."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings

from playground import sandbox
from playground.benchmarks import execution, imports
from playground.benchmarks.models import Evaluation, Result
from playground.emulation.puzzle import PRELUDE
from playground.lib import ratelimits
from playground.programs.library import import_library
from playground.programs.models import Dataset, Program, Puzzle, TaskExample
from playground.sandbox.batch import BatchSandbox
from tests.factories import UserFactory
from tests.limits import assert_refused, fresh_address

pytestmark = pytest.mark.django_db


def _bench(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("bench", "import", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _programs(n: int) -> list[Program]:
    return list(Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:n])


def test_jsonl_of_a_cruxeval_subset_for_input_prediction(tmp_path: Path) -> None:
    import_library()
    a, b, c = _programs(3)
    records = [  # any order in the file; the library's order in the evaluation
        {"id": c.external_id, "predictions": ["the answer", c.call]},  # skipped, then right
        {"id": a.external_id, "predictions": [a.call, "f(None)"]},
        {"id": b.external_id, "predictions": ["f(None)", "f(None)"]},
    ]
    summary = _bench(
        str(_jsonl(tmp_path / "in.jsonl", records)), "--dataset", "cruxeval", "--task", "input",
        "--model", "mine",
    )  # fmt: skip
    assert (summary["task"], summary["method"], summary["samples"]) == ("input", "input-direct", 2)
    assert summary["n"] == 3
    keys = list(
        Result.objects.filter(evaluation_id=summary["id"], sample=0)
        .order_by("index")
        .values_list("item_key", flat=True)
    )
    assert keys == [a.external_id, b.external_id, c.external_id]
    # a: 1 of 2; b: 0 of 2; c: 1 of 1 checked (the skipped sample out of n).
    assert summary["pass@1"]["value"] == pytest.approx((0.5 + 0 + 1) / 3)
    evaluation = Evaluation.objects.get(pk=summary["id"])
    assert evaluation.config["format"] == "jsonl"
    assert len(evaluation.config["digest"]) == 64


def test_jsonl_of_bbh_and_p3(tmp_path: Path) -> None:
    import_library()
    examples = list(TaskExample.objects.filter(task__name="navigate").order_by("index")[:2])
    records = [
        {"id": f"navigate#{examples[0].index}",
         "predictions": [f"So the answer is {examples[0].target}."]},
        {"id": f"navigate#{examples[1].index}", "predictions": ["I think it is Yes."]},
    ]  # fmt: skip
    bbh = _bench(
        str(_jsonl(tmp_path / "bbh.jsonl", records)), "--dataset", "bbh", "--method", "cot",
        "--model", "m",
    )  # fmt: skip
    assert (bbh["n"], bbh["passed"]) == (2, 1)
    assert bbh["subset"] == ["navigate"]
    with pytest.raises(CommandError, match="Say how the outputs answer"):
        _bench(str(tmp_path / "bbh.jsonl"), "--dataset", "bbh", "--model", "m")

    puzzle = next(
        p for p in Puzzle.objects.order_by("source_index")[:40]
        if p.sol_bodies
        and sandbox.run(PRELUDE + p.reference_solutions()[0], call="sol()")["status"] == "ok"
    )  # fmt: skip
    right = sandbox.run(PRELUDE + puzzle.reference_solutions()[0], call="sol()")["result"]
    records = [{"id": puzzle.name, "predictions": [right, "__import__('os')"]}]
    p3 = _bench(str(_jsonl(tmp_path / "p3.jsonl", records)), "--dataset", "p3", "--model", "m")
    assert (p3["method"], p3["n"], p3["passed"]) == ("puzzle", 1, 1)
    statuses = list(
        Result.objects.filter(evaluation_id=p3["id"])
        .order_by("sample")
        .values_list("score_status", flat=True)
    )
    assert statuses == ["pass", "unparsable"]  # code is never run: it is not a literal


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "sample_9999", "predictions": ["1"]}'], "is not an item of cruxeval"),
        (['{"id": "sample_0", "predictions": ["1"]}'] * 2, "appears twice"),
        (
            ['{"id": "sample_0", "predictions": ["1"]}', '{"id": "sample_1", "predictions": []}'],
            "a list of 1 to 100 strings",
        ),
        (
            [
                '{"id": "sample_0", "predictions": ["1"]}',
                '{"id": "sample_1", "predictions": ["1", "2"]}',
            ],
            "different numbers of predictions",
        ),
        (["{not json"], "line 1 is not JSON"),
        (["", "  "], "holds no predictions"),
    ],
)
def test_a_refused_jsonl_writes_nothing(tmp_path: Path, lines: list[str], message: str) -> None:
    import_library()
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(CommandError, match=message):
        _bench(str(path), "--dataset", "cruxeval", "--model", "m")
    assert not Evaluation.objects.exists()


def _upload(records: list[dict[str, Any]], name: str = "outs.jsonl") -> SimpleUploadedFile:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    return SimpleUploadedFile(name, body, content_type="application/octet-stream")


def test_upload_from_the_page_and_the_api(
    settings: Settings, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    import_library()
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"imports.user": "4/h"})
    a, b = _programs(2)
    good = [{"id": a.external_id, "predictions": [a.expected_output]},
            {"id": b.external_id, "predictions": ["'wrong'"]}]  # fmt: skip
    user = UserFactory()
    client = Client(REMOTE_ADDR=fresh_address())
    client.force_login(user)
    assert 'id="import-form"' in client.get("/evaluations/import/").content.decode()
    fields = {"dataset": "cruxeval", "task": "output", "model": "uploaded"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/evaluations/import/", {**fields, "file": _upload(good)})
    assert response.status_code == 302
    evaluation = Evaluation.objects.get()
    assert response["Location"] == evaluation.get_absolute_url()
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.origin, evaluation.owner) == ("done", "import", user)
    assert (evaluation.figures["n"], evaluation.figures["passed"]) == (2, 1)

    bad = client.post(
        "/evaluations/import/",
        {**fields, "file": _upload([{"id": "nope", "predictions": ["1"]}])},
    )
    assert bad.status_code == 400
    assert "&#x27;nope&#x27; is not an item of cruxeval" in bad.content.decode()
    assert Evaluation.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        api = client.post("/api/evaluations/import", {**fields, "file": _upload(good)})
    assert api.status_code == 201, api.content
    made = Evaluation.objects.get(pk=api.json()["id"])
    assert (made.status, made.figures["passed"]) == ("done", 1)
    refused = client.post(
        "/api/evaluations/import",
        {**fields, "file": _upload([{"id": "nope", "predictions": ["1"]}])},
    )
    assert refused.status_code == 422
    assert "is not an item of cruxeval" in refused.json()["detail"]
    assert (
        Client().post("/api/evaluations/import", {**fields, "file": _upload(good)}).status_code
        == 403
    )
    assert Client().post("/evaluations/import/", {**fields}).status_code == 302  # to log in
    # Each upload was counted, the refused ones too (reading and checking a file is work):
    # this is the fifth of the hour.
    assert_refused(
        client.post("/evaluations/import/", {**fields, "file": _upload(good)}),
        "outputs uploaded to be scored",
    )


def test_a_scorer_killed_half_way_resumes_and_scores_each_result_once(tmp_path: Path) -> None:
    import_library()
    programs = _programs(120)
    records = [{"id": p.external_id, "predictions": [p.expected_output, "None"]} for p in programs]
    lines = [json.dumps(r) for r in records]
    plan = imports.plan_jsonl(
        lines, dataset="cruxeval", task="output", method="direct", model="m", name="x.jsonl",
        digest="0" * 64,
    )  # fmt: skip
    evaluation = imports.create(plan)
    calls = {"n": 0}
    batch = BatchSandbox(imports.official.CHECK_LIMITS)

    def dies(source: str, call: str | None) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] > 230:  # two chunks of 50 items (100 checks each) in, the third begun
            raise KeyboardInterrupt("killed")
        return batch.run(source, call)

    try:
        with pytest.raises(KeyboardInterrupt):
            imports.score(evaluation.pk, runner=dies)
    finally:
        batch.close()
    done = Result.objects.filter(evaluation=evaluation, status="done")
    assert done.count() == 100 * 2  # whole chunks only: the third wrote nothing
    scored_at = dict(done.values_list("pk", "scored_at"))
    assert execution.execute(evaluation.pk) == "done"  # what a restarted batch worker does
    evaluation.refresh_from_db()
    assert evaluation.status == "done"
    results = list(Result.objects.filter(evaluation=evaluation))
    assert len(results) == 240
    assert all(r.status == "done" for r in results)
    # The first 200 kept their scores (not scored twice); each item: 1 of 2 checked passes.
    assert {r.pk: r.scored_at for r in results if r.pk in scored_at} == scored_at
    assert (evaluation.figures["n"], evaluation.figures["passed"]) == (120, 120)
