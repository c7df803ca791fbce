"""Importing outputs and scoring them with the benchmarks' own rules (``manage.py bench import``):
CRUXEval generations files in the published format, for output and input prediction, checked
for real in the sandbox; BIG-Bench Hard outputs in the format of the published Codex ones; the
summary a researcher compares with the published figures; files refused with nothing written."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from playground.benchmarks.imports import ImportRefused, import_cruxeval
from playground.benchmarks.models import Evaluation, Result
from playground.programs.library import DATASETS_DIR, import_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def library() -> list[dict[str, Any]]:
    import_library()
    path = DATASETS_DIR / "cruxeval" / "cruxeval.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _bench(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("bench", "import", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_input_prediction_of_every_item_with_its_own_input_passes(
    library: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Each item's own input, called: 800 checks ``assert <output> == f(<input>)`` in the
    sandbox. Two samples an item: the call, and a bare literal (skipped: no call of f)."""
    generations = {item["id"]: [f"f({item['input']})", item["input"]] for item in library}
    generations["sample_3"][0] = "f(None)"  # wrong: its only checked sample fails
    path = tmp_path / "input_generations.json"
    path.write_text(json.dumps(generations))
    summary = _bench(str(path), "--dataset", "cruxeval", "--task", "input", "--model", "own")
    assert summary["task"] == "input"
    assert (summary["origin"], summary["rules"]) == ("import", "official-1")
    assert summary["n"] == 800
    assert summary["samples"] == 2
    # Skipped samples are left out of n: 799 items at c/n = 1/1, sample_3 at 0/2 (all false).
    assert summary["pass@1"]["value"] == pytest.approx(799 / 800)
    assert summary["pass@2"]["value"] == pytest.approx(799 / 800)
    evaluation = Evaluation.objects.get(pk=summary["id"])
    third = Result.objects.get(evaluation=evaluation, item_key="sample_3", sample=0)
    assert third.score_status == "fail"
    assert not third.passed
    skipped = Result.objects.get(evaluation=evaluation, item_key="sample_3", sample=1)
    assert skipped.score_status == "skipped"
    assert skipped.reason == "skipped: it holds no call of f"
    assert len(evaluation.config["sha256"]) == 64
    assert evaluation.config["file"] == path.name


def test_output_prediction_skips_the_call_and_takes_expressions(
    library: list[dict[str, Any]], tmp_path: Path
) -> None:
    generations = {item["id"]: [item["output"], f"f({item['input']})"] for item in library}
    generations["sample_0"] = ["[(4, 1)] * 4 + [(2, 3)] * 2", "[]"]  # an expression: passes
    generations["sample_1"] = ["'wrong'", "f(" + library[1]["input"] + ")"]  # no pass: all false
    path = tmp_path / "output_generations.json"
    path.write_text(json.dumps(generations))
    summary = _bench(str(path), "--dataset", "cruxeval", "--task", "output", "--model", "m")
    # sample_0: 1 of 2 checked; sample_1: 0 of 2 (the skipped one counted false); the other
    # 798: 1 of 1 checked (the call skipped).
    expected = (0.5 + 0 + 798) / 800
    assert summary["pass@1"]["value"] == pytest.approx(expected)
    assert summary["task"] == "output"

    # The round trip: the evaluation's export in CRUXEval's format is the file, and it
    # re-imports to the same outcome for every sample and the same figures.
    evaluation = Evaluation.objects.get(pk=summary["id"])
    client = Client()
    response = client.get(f"/evaluations/{evaluation.pk}/generations.json")
    assert response.status_code == 200
    exported = json.loads(b"".join(response.streaming_content))  # type: ignore[attr-defined]
    assert exported == generations
    assert list(exported) == [item["id"] for item in library]  # the data set's order
    again_path = tmp_path / "exported.json"
    again_path.write_text(json.dumps(exported))
    again = _bench(str(again_path), "--dataset", "cruxeval", "--task", "output", "--model", "m")
    assert again["pass@1"] == summary["pass@1"]
    assert again["pass@2"] == summary["pass@2"]

    def outcomes(pk: int) -> list[tuple[str, int, str]]:
        rows = Result.objects.filter(evaluation_id=pk).order_by("index", "sample")
        return list(rows.values_list("item_key", "sample", "score_status"))

    assert outcomes(again["id"]) == outcomes(summary["id"])
    bbh = Evaluation.objects.create(dataset="bbh", method="cot", model="m", status="done")
    assert client.get(f"/evaluations/{bbh.pk}/generations.json").status_code == 404


def test_a_refused_file_writes_nothing(library: list[dict[str, Any]], tmp_path: Path) -> None:
    complete = {item["id"]: ["1"] for item in library}
    cases = {
        "unknown.json": ({**complete, "sample_800": ["1"]}, "sample_800 is not a CRUXEval item"),
        "missing.json": (
            {k: v for k, v in complete.items() if k != "sample_799"},
            "no generations for 1 item(s), e.g. sample_799",
        ),
        "uneven.json": ({**complete, "sample_5": ["1", "2"]}, "different numbers of generations"),
        "shape.json": ({**complete, "sample_5": "1"}, "sample_5: expected a list of strings"),
        "list.json": ([["1"]], "Expected a JSON object"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(data))
        with pytest.raises(ImportRefused, match=re.escape(message)):
            import_cruxeval(path, task="output", model="m")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        _bench(str(tmp_path / "bad.json"), "--dataset", "cruxeval", "--model", "m")
    assert not Evaluation.objects.exists()
    assert not Result.objects.exists()


def _bbh_file(folder: Path, task: str, predictions: list[str]) -> None:
    source = json.loads((DATASETS_DIR / "bbh" / f"{task}.json").read_text())
    prompt = "Q: an example question\nA: Let's think step by step. ... So the answer is (A).\n\n"
    outputs = [
        {"input": prompt + "Q: " + ex["input"] + "\nA: Let's think step by step.",
         "target": ex["target"], "prediction": prediction}
        for ex, prediction in zip(source["examples"], predictions, strict=True)
    ]  # fmt: skip
    (folder / f"{task}.json").write_text(json.dumps({"outputs": outputs}))


def test_bbh_chain_of_thought_outputs_score_by_the_extracted_answer(
    library: list[dict[str, Any]], tmp_path: Path
) -> None:
    targets = {}
    for task in ("navigate", "word_sorting"):
        source = json.loads((DATASETS_DIR / "bbh" / f"{task}.json").read_text())
        targets[task] = [ex["target"] for ex in source["examples"]]
    nav = [f"Step by step... So the answer is {t}." for t in targets["navigate"]]
    nav[0] = "I am not sure."  # no "So the answer is": no answer
    nav[1] = f"So the answer is {targets['navigate'][1].lower()}."  # not an exact match
    words = [f"... So the answer is {t}" for t in targets["word_sorting"]]
    _bbh_file(tmp_path, "navigate", nav)
    _bbh_file(tmp_path, "word_sorting", words)
    summary = _bench(str(tmp_path), "--dataset", "bbh", "--method", "cot", "--model", "codex")
    assert summary["tasks"]["navigate"] == {"n": 250, "passed": 248, "accuracy": 248 / 250}
    assert summary["tasks"]["word_sorting"] == {"n": 250, "passed": 250, "accuracy": 1.0}
    assert summary["n"] == 500
    assert summary["accuracy"] == pytest.approx(498 / 500)
    assert sorted(summary["subset"]) == ["navigate", "word_sorting"]
    first = Result.objects.get(evaluation_id=summary["id"], item_key="navigate#0")
    assert first.reason.startswith("no answer")
    # Indexed as an evaluation of these two tasks indexes them: by task name, then example.
    assert first.index == 0
    assert Result.objects.get(evaluation_id=summary["id"], item_key="word_sorting#7").index == 257


def test_bbh_outputs_out_of_order_are_refused(
    library: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = json.loads((DATASETS_DIR / "bbh" / "navigate.json").read_text())
    predictions = ["So the answer is Yes."] * len(source["examples"])
    _bbh_file(tmp_path, "navigate", predictions)
    data = json.loads((tmp_path / "navigate.json").read_text())
    data["outputs"][3], data["outputs"][4] = data["outputs"][4], data["outputs"][3]
    if data["outputs"][3]["input"] == data["outputs"][4]["input"]:  # pragma: no cover
        pytest.skip("two identical questions")
    (tmp_path / "navigate.json").write_text(json.dumps(data))
    with pytest.raises(
        CommandError, match=re.escape("navigate.json #3 is not the task's example #3")
    ):
        _bench(str(tmp_path), "--dataset", "bbh", "--method", "cot", "--model", "codex")
    assert not Evaluation.objects.exists()


def test_an_imported_evaluation_is_shown_like_any_other(
    library: list[dict[str, Any]], tmp_path: Path, client: Client
) -> None:
    """The leaderboard, its page (the per-item table), both exports and the paired comparison
    with another evaluation, for two imports: every prediction escaped, never run."""
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    folder_a.mkdir()
    folder_b.mkdir()
    source = json.loads((DATASETS_DIR / "bbh" / "navigate.json").read_text())
    targets = [ex["target"] for ex in source["examples"]]
    hostile = "<script>alert(1)</script> So the answer is Yes."
    _bbh_file(folder_a, "navigate", [hostile] + [f"So the answer is {t}." for t in targets[1:]])
    _bbh_file(folder_b, "navigate", ["So the answer is No."] * len(targets))
    a = _bench(str(folder_a), "--dataset", "bbh", "--method", "cot", "--model", "model-a")
    b = _bench(str(folder_b), "--dataset", "bbh", "--method", "cot", "--model", "model-b")
    board = client.get("/evaluations/")
    assert board.status_code == 200
    assert "model-a" in board.content.decode()
    assert "model-b" in board.content.decode()
    page = client.get(f"/evaluations/{a['id']}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    exported = client.get(f"/evaluations/{a['id']}/results.json")
    assert exported.status_code == 200
    rows = json.loads(b"".join(exported.streaming_content))  # type: ignore[attr-defined]
    assert len(rows["results"]) == 250
    assert rows["results"][0]["prediction"] == hostile
    csv = client.get(f"/evaluations/{a['id']}/results.csv")
    assert csv.status_code == 200
    assert b"".join(csv.streaming_content).count(b"\n") >= 251  # type: ignore[attr-defined]
    paired = client.get(f"/evaluations/compare/?a={a['id']}&b={b['id']}")
    assert paired.status_code == 200
    assert "McNemar" in paired.content.decode()
