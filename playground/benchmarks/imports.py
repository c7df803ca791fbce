"""Importing published (or any) model outputs and scoring them with the benchmarks' own rules,
without generating anything (issue 16): the result is a normal evaluation (origin "import").

- CRUXEval: a generations file in CRUXEval's published format, ``{"sample_0": ["...", ...],
  ...}``: one list of strings per item, any number of samples, for output or input prediction.
- BIG-Bench Hard: the format the BBH authors published Codex's outputs in: one ``<task>.json``
  per task holding ``{"outputs": [{"input", "target", "prediction"}, ...]}`` in the order of the
  task's examples (``input`` is the few-shot prompt followed by the question).

Every check that runs code runs in the sandbox (``official.CHECK_LIMITS``), each in a fresh
process forked inside one batch sandbox, so a hostile generation reaches neither this process
nor the next check. A file is read whole, with caps on its size and shape, before anything is
written; a refused file writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.benchmarks import official
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.emulation.registry import REGISTRY
from playground.programs.models import Dataset as ProgramDataset
from playground.programs.models import Program, TaskExample
from playground.sandbox.batch import BatchSandbox

MAX_FILE_BYTES = 200_000_000  # a published 800 x 10 generations file is about 2 MB
MAX_SAMPLES = 100
MAX_GENERATION = 20_000  # characters of one generation (a longer one is refused, not cut)
MAX_LABEL = 100

Progress = Callable[[int, int], None]


class ImportRefused(Exception):
    """The file cannot be imported as it is (the message says what to fix); nothing was written."""


def _read_json(path: Path) -> Any:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportRefused(f"{path.name} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}.")
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportRefused(f"{path.name} is not JSON: {exc}") from None


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _label(model: str) -> str:
    model = model.strip()
    if not model or len(model) > MAX_LABEL:
        raise ImportRefused(f"Give the model a label of 1 to {MAX_LABEL} characters.")
    return model


def read_cruxeval(data: Any) -> dict[str, list[str]]:
    """The generations of a CRUXEval file, checked: every item of the library, each a list of
    the same number of strings."""
    if not isinstance(data, dict):
        raise ImportRefused('Expected a JSON object {"sample_0": ["...", ...], ...}.')
    known = set(
        Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).values_list(
            "external_id", flat=True
        )
    )
    unknown = sorted(set(data) - known)
    if unknown:
        raise ImportRefused(f"{unknown[0]} is not a CRUXEval item of the library.")
    missing = sorted(known - set(data), key=lambda key: (len(key), key))
    if missing:
        raise ImportRefused(
            f"The file has no generations for {len(missing)} item(s), e.g. {missing[0]}; "
            "the official score needs every item."
        )
    counts = set()
    for key, generations in data.items():
        if not isinstance(generations, list) or not all(isinstance(g, str) for g in generations):
            raise ImportRefused(f"{key}: expected a list of strings.")
        if not 1 <= len(generations) <= MAX_SAMPLES:
            raise ImportRefused(f"{key}: 1 to {MAX_SAMPLES} generations, not {len(generations)}.")
        if any(len(g) > MAX_GENERATION for g in generations):
            raise ImportRefused(
                f"{key}: a generation is longer than {MAX_GENERATION:,} characters."
            )
        counts.add(len(generations))
    if len(counts) > 1:
        raise ImportRefused(
            f"Items have different numbers of generations ({min(counts)} to {max(counts)}): "
            "pass@k needs the same number for every item."
        )
    return data


def import_cruxeval(
    path: Path,
    *,
    task: str,
    model: str,
    method: str = "direct",
    owner: Any = None,
    runner: official.Runner | None = None,
    on_progress: Progress | None = None,
) -> Evaluation:
    """Read, check, score (official rules) and store a CRUXEval generations file."""
    if task not in ("output", "input"):
        raise ImportRefused(f"The task is output or input, not {task!r}.")
    checked_task: official.Task = "output" if task == "output" else "input"
    model = _label(model)
    generations = read_cruxeval(_read_json(path))
    programs = {
        p.external_id: p
        for p in Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).order_by("id")
    }
    order = {key: i for i, key in enumerate(programs)}  # the library's order, as _items
    samples = len(next(iter(generations.values())))
    total = len(programs) * samples
    batch = None
    if runner is None:
        batch = BatchSandbox(official.CHECK_LIMITS)
        runner = batch.run
    results: list[Result] = []
    now = timezone.now()
    try:
        for done, (key, program) in enumerate(programs.items()):
            item = program.extra.get("input", "")
            score = official.score_cruxeval_item(
                program.source,
                item,
                program.expected_output,
                generations[key],
                checked_task,
                runner,
            )
            for s, (generation, outcome, reason) in enumerate(
                zip(generations[key], score.outcomes, score.reasons, strict=True)
            ):
                results.append(
                    Result(
                        index=order[key], sample=s, item_key=key, item_ref={"program": program.pk},
                        status=Result.Status.DONE, passed=outcome == "pass",
                        score_status=outcome, reason=reason, prediction=generation,
                        scored_at=now,
                    )
                )  # fmt: skip
            if on_progress is not None:
                on_progress((done + 1) * samples, total)
    finally:
        if batch is not None:
            batch.close()
    config = {
        "file": path.name, "sha256": _digest([path]), "rules": official.RULES_VERSION,
        "task": task, "model": model, "method": method, "samples": samples,
    }  # fmt: skip
    return _store(Dataset.CRUXEVAL, [], method, model, samples, task, config, results, owner)


def _bbh_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ImportRefused(f"{path} holds no <task>.json file.")
        return files
    return [path]


def import_bbh(
    path: Path,
    *,
    method: str,
    model: str,
    owner: Any = None,
    on_progress: Progress | None = None,
) -> Evaluation:
    """Read, check, score (the BBH authors' rule) and store BIG-Bench Hard outputs: a folder of
    ``<task>.json`` files, or one."""
    styles = {name: m.task_answer for name, m in REGISTRY.items() if m.task_answer}
    if method not in styles:
        raise ImportRefused(
            f"BIG-Bench Hard outputs are imported as {' or '.join(sorted(styles))}, not {method!r}."
        )
    how: official.AnswerStyle = (
        "after-reasoning" if styles[method] == "after-reasoning" else "alone"
    )
    model = _label(model)
    files = _bbh_files(path)
    examples: dict[str, list[TaskExample]] = {}
    for e in TaskExample.objects.select_related("task").order_by("task__name", "index"):
        examples.setdefault(e.task.name, []).append(e)
    loaded: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        name = file.stem
        if name not in examples:
            raise ImportRefused(f"{file.name}: no BIG-Bench Hard task is named {name!r}.")
        data = _read_json(file)
        outputs = data.get("outputs") if isinstance(data, dict) else None
        if not isinstance(outputs, list):
            raise ImportRefused(f'{file.name}: expected {{"outputs": [...]}}.')
        if len(outputs) != len(examples[name]):
            raise ImportRefused(
                f"{file.name}: {len(outputs)} outputs for the task's "
                f"{len(examples[name])} examples."
            )
        for k, (output, example) in enumerate(zip(outputs, examples[name], strict=True)):
            if not isinstance(output, dict) or not all(
                isinstance(output.get(f), str) for f in ("input", "target", "prediction")
            ):
                raise ImportRefused(
                    f"{file.name} #{k}: input, target and prediction must be strings."
                )
            question = example.input.strip().splitlines()[0] if example.input.strip() else ""
            if output["target"] != example.target or question not in output["input"]:
                raise ImportRefused(
                    f"{file.name} #{k} is not the task's example #{k} (its question or target "
                    "differs): outputs must be in the order of the task's examples."
                )
            if len(output["prediction"]) > MAX_GENERATION * 5:
                raise ImportRefused(f"{file.name} #{k}: the prediction is too long.")
        loaded[name] = outputs
    # The index an evaluation of these tasks gives each example (services._items: by task name,
    # then the example's index), so that plots and comparisons line up with one run here.
    position = {e.pk: i for i, e in enumerate(e for name in sorted(loaded) for e in examples[name])}
    results: list[Result] = []
    now = timezone.now()
    for name, outputs in loaded.items():
        for k, (output, example) in enumerate(zip(outputs, examples[name], strict=True)):
            passed, reason = official.score_bbh(output["prediction"], example.target, how)
            results.append(
                Result(
                    index=position[example.pk], sample=0, item_key=f"{name}#{k}",
                    item_ref={"task_example": example.pk}, status=Result.Status.DONE,
                    passed=passed, score_status="pass" if passed else "fail", reason=reason,
                    prediction=output["prediction"], scored_at=now,
                )
            )  # fmt: skip
        if on_progress is not None:
            on_progress(len(results), len(results))
    config = {
        "files": [f.name for f in files], "sha256": _digest(files),
        "rules": official.RULES_VERSION, "model": model, "method": method,
    }  # fmt: skip
    return _store(Dataset.BBH, sorted(loaded), method, model, 1, "output", config, results, owner)


def _store(
    dataset: str,
    subset: list[Any],
    method: str,
    model: str,
    samples: int,
    task: str,
    config: dict[str, Any],
    results: list[Result],
    owner: Any,
) -> Evaluation:
    now = timezone.now()
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            title=f"{model} (imported)", dataset=dataset, subset=subset, method=method,
            model=model, samples=samples, status=Evaluation.Status.DONE, total=len(results),
            owner=owner, started_at=now, finished_at=now, task=task, origin="import",
            rules=official.RULES_VERSION, config=config,
        )  # fmt: skip
        for result in results:
            result.evaluation = evaluation
        Result.objects.bulk_create(results, batch_size=2000)
    return evaluation


def bbh_tasks(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """Per task of a BIG-Bench Hard evaluation: n, passed, accuracy (first sample of each)."""
    tasks: dict[str, dict[str, Any]] = {}
    rows = Result.objects.filter(evaluation=evaluation, sample=0, status=Result.Status.DONE)
    for key, passed in rows.values_list("item_key", "passed"):
        task = tasks.setdefault(key.rsplit("#", 1)[0], {"n": 0, "passed": 0})
        task["n"] += 1
        task["passed"] += bool(passed)
    for task in tasks.values():
        task["accuracy"] = task["passed"] / task["n"] if task["n"] else 0.0
    return dict(sorted(tasks.items()))
