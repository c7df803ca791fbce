"""The evaluation pages do bounded work whatever the data (review 2026-12, L13): the figures are
counted in SQL (and kept once an evaluation is done) with exactly the numbers the old Python
summary gave; the leaderboard and an evaluation's page make as many queries for 60 evaluations
or 300 results as for 3 or 5, page their rows and read no run's text; the exports are streamed
a chunk at a time, byte for byte what one ``json.dumps`` wrote, to WSGI and ASGI servers."""

from __future__ import annotations

import json
import random
import re
import warnings
from collections import defaultdict
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connection, connections
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.benchmarks import plots
from playground.benchmarks.models import Evaluation, Result
from playground.benchmarks.official import pass_at_k as official_pass_at_k
from playground.benchmarks.scoring import pass_at_k
from playground.benchmarks.stats import mean_ci, wilson_interval
from playground.benchmarks.summary import NO_MODEL, NO_VALUE, summarise
from playground.benchmarks.views import evaluation as evaluation_views
from playground.benchmarks.views import exports
from playground.emulation.registry import REGISTRY
from playground.programs.library import import_library
from playground.runs.models import Run
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

pytestmark = pytest.mark.django_db


def python_summary(evaluation: Evaluation) -> dict[str, Any]:
    """The summary as main's code (ebbbef9) computed it, in Python over every row: the oracle."""
    results = list(
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE).values(
            "index", "passed", "leakage", "score_status"
        )
    )
    no_model = {r["index"] for r in results if r["score_status"] == NO_MODEL}
    # Under a rule, items whose program returned no value to predict: apart, as no_model.
    no_value = {r["index"] for r in results if r["score_status"] == NO_VALUE} - no_model
    by_item: dict[int, list[bool]] = defaultdict(list)
    skipped: dict[int, int] = defaultdict(int)  # CRUXEval's official rules leave them out of n
    for r in results:
        if r["index"] not in no_model | no_value:
            by_item[r["index"]].append(bool(r["passed"]))
            skipped[r["index"]] += r["score_status"] == "skipped"
    n = len(by_item)
    passed = sum(samples[0] for samples in by_item.values())
    low, high = wilson_interval(passed, n)
    summary: dict[str, Any] = {
        "id": evaluation.pk, "dataset": evaluation.dataset, "subset": evaluation.subset,
        "method": evaluation.method, "model": evaluation.model, "status": evaluation.status,
        "n": n, "passed": passed, "accuracy": passed / n if n else 0.0, "ci95": [low, high],
        "leakage": sum(1 for r in results if r["leakage"]),
        "errors": sum(1 for r in results if r["score_status"] == "error"),
        "no_model": len(no_model), "done": len(results), "total": evaluation.total,
        "samples": evaluation.samples, "origin": evaluation.origin, "rules": evaluation.rules,
        "config": evaluation.config, "rule": evaluation.rule,
        "not_offered": evaluation.not_offered, "no_value": len(no_value),
    }  # fmt: skip
    if evaluation.dataset in ("cruxeval", "programs"):
        summary["task"] = evaluation.task
    official = evaluation.rules.startswith("official")
    if evaluation.samples > 1 and n:
        for k in sorted({1, min(5, evaluation.samples), evaluation.samples}):
            if official:  # skipped samples out of n, unless none passed (all false)
                values = [
                    official_pass_at_k(len(s) - skipped[i] if sum(s) else len(s), sum(s), k)
                    for i, s in by_item.items()
                ]
            else:
                values = [pass_at_k(len(s), sum(s), k) for s in by_item.values() if len(s) >= k]
            mean, lo, hi = mean_ci(values)
            summary[f"pass@{k}"] = {"value": mean, "ci95": [lo, hi], "items": len(values)}
    spec = REGISTRY.get(evaluation.method)
    if spec is not None and (spec.compares_steps or spec.asks_probes):  # issue 20's path
        summary["path"] = python_path(evaluation)
    return summary


def python_path(evaluation: Evaluation) -> dict[str, Any]:
    """Right answers on a diverging path and wrong ones on the real path, over each item's
    first scored sample (no-model samples aside), counted in Python."""
    first: dict[int, Any] = {}
    for row in (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .exclude(score_status__in=[NO_MODEL, NO_VALUE])
        .order_by("index", "sample")
        .values("index", "passed", "path")
    ):
        first.setdefault(row["index"], row)
    judged = [r for r in first.values() if r["path"] in ("agrees", "diverges")]
    right = [r for r in judged if r["passed"] is True]
    wrong = [r for r in judged if r["passed"] is False]

    def share(count: int, of: int) -> dict[str, Any]:
        return {"count": count, "of": of, "share": count / of if of else 0.0,
                "ci95": list(wilson_interval(count, of))}  # fmt: skip

    return {
        "judged": len(judged),
        "diverges": sum(r["path"] == "diverges" for r in judged),
        "right_wrong_path": share(sum(r["path"] == "diverges" for r in right), len(right)),
        "wrong_right_path": share(sum(r["path"] == "agrees" for r in wrong), len(wrong)),
    }


def python_plots(evaluation: Evaluation) -> dict[str, Any]:
    """The plots as main's code drew them, from every first sample read in Python."""
    first: dict[int, Any] = {}
    for row in (
        Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE)
        .exclude(score_status__in=[NO_MODEL, NO_VALUE])
        .values("index", "passed", "lines", "steps", "divergence_step")
    ):
        first.setdefault(row["index"], row)
    rows = list(first.values())
    divergence = None
    if REGISTRY[evaluation.method].compares_steps:
        divergence = plots.histogram(
            (None if r["divergence_step"] is None else r["divergence_step"] + 1 for r in rows),
            plots.DIVERGENCE_BUCKETS, title="Where the trace first diverged (real step)",
        )  # fmt: skip
    return {
        "lines": plots.accuracy_by(((r["lines"], bool(r["passed"])) for r in rows),
                                   plots.LINE_BUCKETS, title="Accuracy by program length (lines)"),
        "steps": plots.accuracy_by(((r["steps"], bool(r["passed"])) for r in rows),
                                   plots.STEP_BUCKETS, title="Accuracy by number of real steps"),
        "divergence": divergence,
    }  # fmt: skip


def _random_evaluation(
    seed: int, *, samples: int, status: str = "done", rules: str = ""
) -> Evaluation:
    """Every case the summary tells apart: items with some samples pending, passed unknown
    (None), errors, leakage, items with one or all samples run without the model, numbers
    below, inside and past every bucket, samples scored out of order."""
    rng = random.Random(seed)  # noqa: S311 - test data
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method=rng.choice(["trace", "direct", "coc"]), model="tiny",
        status=status, samples=samples, total=60 * samples, rules=rules,
        origin="import" if rules else "run",
    )  # fmt: skip
    kinds = ["pass", "fail", "error", "unparsable", NO_MODEL, NO_VALUE, "pass", "fail"]
    if rules:  # an import scored with CRUXEval's own rules: skipped samples, no model needed
        kinds = ["pass", "fail", "skipped", "skipped", "pass", "fail"]
    rows = []
    for index in rng.sample(range(200), 60):
        for sample in rng.sample(range(samples), samples):
            done = rng.random() < 0.9
            score = rng.choice(kinds)
            rows.append(Result(
                evaluation=evaluation, index=index, sample=sample, item_key=f"k{index}",
                status=Result.Status.DONE if done else rng.choice(["pending", "running"]),
                passed=(score == "pass" if rules else rng.choice([True, False, None]))
                if done else None,
                leakage=rng.random() < 0.1, score_status=score if done else "",
                lines=rng.choice([None, 0, 1, 5, 6, 10, 11, 20, 21, 99]),
                steps=rng.choice([None, 0, 10, 11, 25, 26, 50, 51, 100, 101, 5000]),
                divergence_step=rng.choice([None, -1, 0, 4, 5, 9, 10, 19, 20, 49, 50, 300]),
                path=rng.choice(["", "agrees", "diverges", "unknown"]),
            ))  # fmt: skip
    Result.objects.bulk_create(rows)
    return evaluation


def _bars(chart: plots.Chart | None) -> Any:
    return None if chart is None else chart.bars


@pytest.mark.parametrize("seed", range(8))
def test_the_sql_figures_and_plots_equal_the_python_summary(seed: int) -> None:
    samples = [1, 2, 3, 7, 1, 12, 5, 10][seed]
    status = "running" if seed == 4 else "done"
    rules = "official-1" if seed >= 6 else ""  # imports: CRUXEval's skipped samples
    evaluation = _random_evaluation(seed, samples=samples, status=status, rules=rules)
    assert summarise(evaluation) == python_summary(evaluation)
    # Kept when done, and the same when read back from the database (floats included).
    again = Evaluation.objects.get(pk=evaluation.pk)
    assert (again.figures is not None) is (status == "done")
    assert summarise(again) == python_summary(again)
    new = evaluation_views._plots(evaluation)
    old = python_plots(evaluation)
    assert {k: _bars(v) for k, v in new.items()} == {k: _bars(v) for k, v in old.items()}


@pytest.mark.django_db(transaction=True)  # the evaluation's threads commit
def test_a_real_evaluation_keeps_the_python_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run for real (the sandbox and an always-right model server), three samples per item."""
    import_library()
    with oracle_server(Oracle()) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        out = StringIO()
        call_command("bench", "cruxeval", method="direct", model="oracle", limit=6, samples=3,
                     concurrency=4, json=True, stdout=out)  # fmt: skip
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "done"
    assert evaluation.figures is not None  # kept when it finished
    expected = python_summary(evaluation)
    assert expected["n"] == 6
    assert "pass@3" in expected
    assert summarise(evaluation) == expected
    printed = json.loads(out.getvalue())
    assert printed.pop("url") == evaluation.get_absolute_url()
    assert printed.pop("paired") == []  # no rule, and none paired with it
    assert printed == json.loads(json.dumps(expected))


def _done(n: int, *, results: int = 2, dataset: str = "cruxeval", **fields: Any) -> list[int]:
    made = []
    for i in range(n):
        evaluation = Evaluation.objects.create(
            dataset=dataset, method="direct", model="tiny", status="done", total=results,
            title=f"E{i}", **fields,
        )  # fmt: skip
        Result.objects.bulk_create(
            Result(evaluation=evaluation, index=j, item_key=f"k{j}", status="done",
                   passed=j < (i % (results + 1)), score_status="pass")
            for j in range(results)
        )  # fmt: skip
        made.append(evaluation.pk)
    return made


def _queries(client: Client, url: str) -> list[str]:
    client.get(url)  # the first one keeps figures not yet kept
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_the_leaderboard_makes_as_many_queries_for_60_evaluations_as_for_3(
    django_assert_max_num_queries: Any,
) -> None:
    client = Client()
    url = reverse("benchmarks:leaderboard")
    _done(3)
    _done(1, dataset="bbh")
    few = _queries(client, url)
    _done(57)
    _done(30, dataset="bbh", results=40)
    many = _queries(client, url)
    assert len(many) == len(few)
    assert not any("benchmarks_result" in sql for sql in many)  # the kept figures only
    with django_assert_max_num_queries(12):
        client.get(url)


def test_the_leaderboard_pages_each_data_set_best_first(settings: Settings) -> None:
    settings.PLAYGROUND_PAGE_SIZE = 3
    ids = _done(7, results=6)  # evaluation i passes i % 7 of 6 items
    by_accuracy = sorted(ids, key=lambda pk: (-(ids.index(pk) % 7), -pk))
    client = Client()
    page = client.get(reverse("benchmarks:leaderboard")).content.decode()
    shown = [int(pk) for pk in re.findall(r'<td class="long"><a href="/evaluations/(\d+)/"', page)]
    assert shown == by_accuracy[:3]
    assert 'id="all-cruxeval"' in page
    assert "All 7 evaluations of CRUXEval-O output prediction" in page
    second = client.get(reverse("benchmarks:leaderboard"), {"dataset": "cruxeval", "page": "2"})
    html = second.content.decode()
    shown = [int(pk) for pk in re.findall(r'<td class="long"><a href="/evaluations/(\d+)/"', html)]
    assert shown == by_accuracy[3:6]
    assert re.search(r'<tr><td class="num">4</td>', html)  # ranks go on from the page before
    assert "Page 2 of 3" in html
    assert "?dataset=cruxeval&amp;page=3" in html


def test_an_evaluations_page_is_bounded_and_pages_its_items(
    django_assert_max_num_queries: Any,
) -> None:
    program = ProgramFactory(is_public=True)

    def evaluation_of(size: int) -> Evaluation:
        evaluation = Evaluation.objects.create(
            dataset="cruxeval", method="trace", model="tiny", status="done", total=size
        )
        runs = Run.objects.bulk_create(
            Run(program=program, source=program.source, method="trace",
                emulated_text="model text " * 50) for _ in range(size)
        )  # fmt: skip
        Result.objects.bulk_create(
            Result(evaluation=evaluation, index=i, item_key=f"sample_{i}", status="done",
                   passed=i % 3 == 0, score_status="pass", lines=i % 30, steps=i,
                   divergence_step=i % 60, run=runs[i])
            for i in range(size)
        )  # fmt: skip
        return evaluation

    client = Client()
    small, large = evaluation_of(5), evaluation_of(300)
    few = _queries(client, small.get_absolute_url())
    many = _queries(client, large.get_absolute_url())
    assert len(many) == len(few)
    assert not any("emulated_text" in sql for sql in many)  # no run's text is read
    with django_assert_max_num_queries(10):
        response = client.get(large.get_absolute_url())
    html = response.content.decode()
    assert html.count('<td class="num">1</td><td class="long">sample_') == 1
    assert len(re.findall(r'<tr class="(?:pass|fail)"', html)) == evaluation_views.RESULTS_PER_PAGE
    assert "Page 1 of 3" in html
    third = client.get(large.get_absolute_url(), {"page": "3"}).content.decode()
    assert len(re.findall(r'<tr class="(?:pass|fail)"', third)) == 100
    assert ">sample_299</td>" in third
    run = Result.objects.get(evaluation=large, index=299).run_id
    assert f'<a href="/runs/{run}/">run #{run}</a>' in third


def _export(evaluation: Evaluation, name: str) -> tuple[list[bytes], Any]:
    response = Client().get(reverse(f"benchmarks:export_{name}", args=[evaluation.pk]))
    assert response.status_code == 200
    assert response.streaming
    return list(response.streaming_content), response


def test_the_exports_are_streamed_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluation = _random_evaluation(1, samples=2)
    run = Run.objects.create(program=ProgramFactory(), source="x = 1\n", method="direct")
    Result.objects.filter(evaluation=evaluation, index__lt=50).update(
        run=run, prediction="'=1+1' ünïcode <b>"
    )
    rows = Result.objects.filter(evaluation=evaluation).count()
    monkeypatch.setattr(exports, "EXPORT_CHUNK", 7)
    parts, response = _export(evaluation, "json")
    assert response["Content-Type"] == "application/json"
    assert len(parts) == 2 + -(-rows // 7)  # the head, a part per chunk, the end
    text = b"".join(parts).decode()
    data = json.loads(text)
    assert text == json.dumps(data, ensure_ascii=False)  # as JsonResponse wrote it
    assert data["summary"].pop("paired") == []  # no rule, and none paired with it
    assert data["summary"] == json.loads(json.dumps(python_summary(evaluation)))
    assert len(data["results"]) == rows
    expected = list(Result.objects.filter(evaluation=evaluation).order_by("index", "sample"))
    assert [(r["index"], r["sample"]) for r in data["results"]] == [
        (r.index, r.sample) for r in expected
    ]
    with_run = [r for r in data["results"] if r["run"]]
    assert with_run
    assert {r["run"] for r in with_run} == {f"/runs/{run.pk}/"}
    parts, response = _export(evaluation, "csv")
    assert (
        response["Content-Disposition"] == f'attachment; filename="evaluation-{evaluation.pk}.csv"'
    )
    lines = b"".join(parts).decode().splitlines()
    assert lines[0] == (
        "\ufeffindex,sample,item,passed,leakage,status,reason,prediction,run,lines,steps,"
        "divergence_step,path,prior,changed"
    )
    assert len(lines) == 1 + rows
    assert "'=1+1' ünïcode <b>" in lines[1 + [(r.index < 50) for r in expected].index(True)]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_asgi_server_gets_the_export_as_it_is_made() -> None:
    """Under ASGI a synchronous iterator would be read whole before the first byte is sent."""
    try:
        await _asgi_export()
    finally:
        await sync_to_async(connections.close_all)()


async def _asgi_export() -> None:
    evaluation = await sync_to_async(_random_evaluation)(2, samples=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await AsyncClient().get(reverse("benchmarks:export_json", args=[evaluation.pk]))
        assert response.status_code == 200
        assert response.is_async
        text = b"".join([part async for part in response.streaming_content]).decode()
    assert not [w for w in caught if "StreamingHttpResponse" in str(w.message)]
    data = json.loads(text)
    expected = await sync_to_async(python_summary)(evaluation)
    assert data["summary"].pop("paired") == []
    assert data["summary"] == json.loads(json.dumps(expected))
    assert len(data["results"]) == 180
