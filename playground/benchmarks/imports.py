"""Importing published (or any) model outputs and scoring them with the benchmarks' own rules,
without generating anything (issue 16): the result is a normal evaluation (origin "import").

- CRUXEval: a generations file in CRUXEval's published format, ``{"sample_0": ["...", ...],
  ...}``: one list of strings per item, any number of samples, for output or input prediction.
- BIG-Bench Hard: the format the BBH authors published Codex's outputs in: one ``<task>.json``
  per task holding ``{"outputs": [{"input", "target", "prediction"}, ...]}`` in the order of the
  task's examples (``input`` is the few-shot prompt followed by the question).
- Any data set of the library (CRUXEval, BIG-Bench Hard, P3): a ``.jsonl`` of ``{"id",
  "predictions": [...]}`` lines, any subset of the items (``plan_jsonl``).

Three steps: a ``plan_*`` function reads and checks the file whole, with caps on its size and
shape (a refused file writes nothing); ``create`` writes the evaluation (queued) and its results
(pending, each with its generation) in one transaction; ``score`` scores them a chunk of items
at a time, resumably, in this process (the command line) or on the batch worker (an upload from
the site or the API, and any import a killed process left unfinished). Every check that runs
code runs in the sandbox (``official.CHECK_LIMITS``), each in a fresh process forked inside one
batch sandbox, so a hostile generation reaches neither this process nor the next check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground.benchmarks import official
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.summary import figures_of
from playground.emulation.literals import NotALiteral, parse_literal
from playground.emulation.puzzle import check_sat
from playground.emulation.registry import REGISTRY
from playground.programs.models import Dataset as ProgramDataset
from playground.programs.models import Program, Puzzle, TaskExample
from playground.sandbox.batch import BatchSandbox
from playground.sandbox.limits import Limits

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


@dataclass
class Plan:
    """A file read and checked, before anything is written: what the evaluation will be and
    each result's generation (``rows``: index, sample, item key, item reference, prediction)."""

    dataset: str
    task: str
    method: str
    model: str
    samples: int
    subset: list[Any]
    config: dict[str, Any]
    rows: list[tuple[int, int, str, dict[str, int], str]] = field(default_factory=list)


def plan_cruxeval(
    data: Any, *, task: str, model: str, method: str = "direct", name: str, digest: str
) -> Plan:
    """A generations file in CRUXEval's published format, checked (every item of the library)."""
    if task not in ("output", "input"):
        raise ImportRefused(f"The task is output or input, not {task!r}.")
    model = _label(model)
    generations = read_cruxeval(data)
    programs = {
        p.external_id: p
        for p in Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).order_by("id")
    }
    samples = len(next(iter(generations.values())))
    plan = Plan(
        Dataset.CRUXEVAL, task, method, model, samples, [],
        {"file": name, "sha256": digest, "format": "cruxeval"},
    )  # fmt: skip
    for index, (key, program) in enumerate(programs.items()):  # the library's order, as _items
        for s, generation in enumerate(generations[key]):
            plan.rows.append((index, s, key, {"program": program.pk}, generation))
    return plan


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
    plan = plan_cruxeval(
        _read_json(path), task=task, model=model, method=method, name=path.name,
        digest=_digest([path]),
    )  # fmt: skip
    return _create_and_score(plan, owner, runner, on_progress)


def _create_and_score(
    plan: Plan, owner: Any, runner: official.Runner | None, on_progress: Progress | None
) -> Evaluation:
    """In this process (the command line): write the plan, then score it."""
    evaluation = create(plan, owner=owner)
    score(evaluation.pk, runner=runner, on_progress=on_progress)
    evaluation.refresh_from_db()
    return evaluation


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
    files = _bbh_files(path)
    _answer_style(method)  # refused before any file is read
    data = {file.name: _read_json(file) for file in files}
    plan = plan_bbh(data, method=method, model=model, digest=_digest(files))
    return _create_and_score(plan, owner, None, on_progress)


def _task_examples() -> dict[str, list[TaskExample]]:
    examples: dict[str, list[TaskExample]] = {}
    for e in TaskExample.objects.select_related("task").order_by("task__name", "index"):
        examples.setdefault(e.task.name, []).append(e)
    return examples


def plan_bbh(files: dict[str, Any], *, method: str, model: str, digest: str) -> Plan:
    """BIG-Bench Hard outputs in the format of the published Codex ones, checked: ``files``
    maps each file's name (``<task>.json``) to its JSON."""
    _answer_style(method)
    model = _label(model)
    examples = _task_examples()
    loaded: dict[str, list[dict[str, Any]]] = {}
    for filename, data in files.items():
        name = filename.removesuffix(".json")
        if name not in examples:
            raise ImportRefused(f"{filename}: no BIG-Bench Hard task is named {name!r}.")
        outputs = data.get("outputs") if isinstance(data, dict) else None
        if not isinstance(outputs, list):
            raise ImportRefused(f'{filename}: expected {{"outputs": [...]}}.')
        if len(outputs) != len(examples[name]):
            raise ImportRefused(
                f"{filename}: {len(outputs)} outputs for the task's {len(examples[name])} examples."
            )
        for k, (output, example) in enumerate(zip(outputs, examples[name], strict=True)):
            if not isinstance(output, dict) or not all(
                isinstance(output.get(f), str) for f in ("input", "target", "prediction")
            ):
                raise ImportRefused(
                    f"{filename} #{k}: input, target and prediction must be strings."
                )
            question = example.input.strip().splitlines()[0] if example.input.strip() else ""
            if output["target"] != example.target or question not in output["input"]:
                raise ImportRefused(
                    f"{filename} #{k} is not the task's example #{k} (its question or target "
                    "differs): outputs must be in the order of the task's examples."
                )
            if len(output["prediction"]) > MAX_GENERATION * 5:
                raise ImportRefused(f"{filename} #{k}: the prediction is too long.")
        loaded[name] = outputs
    # The index an evaluation of these tasks gives each example (services._items: by task name,
    # then the example's index), so that plots and comparisons line up with one run here.
    position = {e.pk: i for i, e in enumerate(e for name in sorted(loaded) for e in examples[name])}
    plan = Plan(
        Dataset.BBH, "output", method, model, 1, sorted(loaded),
        {"files": sorted(files), "sha256": digest, "format": "bbh"},
    )  # fmt: skip
    for name in sorted(loaded):
        for k, (output, example) in enumerate(zip(loaded[name], examples[name], strict=True)):
            plan.rows.append(
                (position[example.pk], 0, f"{name}#{k}", {"task_example": example.pk},
                 output["prediction"])
            )  # fmt: skip
    plan.rows.sort()
    return plan


MAX_LINES = 10_000  # the largest data set holds 6,511 items (BIG-Bench Hard)


def _library_items(dataset: str) -> list[tuple[str, dict[str, int]]]:
    """Every item of a library data set, (its id in a JSONL file, its reference), in the order
    an evaluation gives them (services._items)."""
    if dataset == Dataset.CRUXEVAL:
        rows = Program.objects.filter(dataset=ProgramDataset.CRUXEVAL).order_by("id")
        return [(p.external_id, {"program": p.pk}) for p in rows.only("id", "external_id")]
    if dataset == Dataset.BBH:
        return [
            (f"{name}#{e.index}", {"task_example": e.pk})
            for name, examples in _task_examples().items()
            for e in examples
        ]
    if dataset == Dataset.P3:
        return [(p.name, {"puzzle": p.pk}) for p in Puzzle.objects.order_by("source_index")]
    raise ImportRefused(f"A JSONL import is of cruxeval, bbh or p3, not {dataset!r}.")


def plan_jsonl(
    lines: list[str], *, dataset: str, task: str, method: str, model: str, name: str,
    digest: str,
) -> Plan:  # fmt: skip
    """The generic format, for any data set of the library: one JSON object a line, ``{"id":
    ..., "predictions": ["...", ...]}``, the id as the library gives it (``sample_12`` in
    CRUXEval, ``navigate#3`` in BIG-Bench Hard, ``Study_1:0`` in P3), any subset of the items,
    the same number of predictions for each. Scored by the benchmark's own rules: CRUXEval's
    checks (output or input), BBH's extraction (``method``: how the outputs answer), P3's
    ``sat`` in the sandbox."""
    if dataset == Dataset.CRUXEVAL and task not in ("output", "input"):
        raise ImportRefused(f"The task is output or input, not {task!r}.")
    if dataset == Dataset.BBH:
        _answer_style(method)
    model = _label(model)
    known = {key: (index, ref) for index, (key, ref) in enumerate(_library_items(dataset))}
    seen: dict[str, list[str]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(seen) >= MAX_LINES:
            raise ImportRefused(f"{name}: more than {MAX_LINES:,} lines.")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportRefused(f"{name} line {number} is not JSON: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ImportRefused(
                f'{name} line {number}: expected {{"id": "...", "predictions": [...]}}.'
            )
        key, predictions = record["id"], record.get("predictions")
        if key not in known:
            raise ImportRefused(f"{name} line {number}: {key[:80]!r} is not an item of {dataset}.")
        if key in seen:
            raise ImportRefused(f"{name} line {number}: {key[:80]!r} appears twice.")
        if (
            not isinstance(predictions, list)
            or not 1 <= len(predictions) <= MAX_SAMPLES
            or not all(isinstance(p, str) and len(p) <= MAX_GENERATION for p in predictions)
        ):
            raise ImportRefused(
                f"{name} line {number}: predictions must be a list of 1 to {MAX_SAMPLES} strings "
                f"of at most {MAX_GENERATION:,} characters."
            )
        seen[key] = predictions
    if not seen:
        raise ImportRefused(f"{name} holds no predictions.")
    counts = {len(p) for p in seen.values()}
    if len(counts) > 1:
        raise ImportRefused(
            f"Items have different numbers of predictions ({min(counts)} to {max(counts)}): "
            "pass@k needs the same number for every item."
        )
    samples = counts.pop()
    subset = sorted({k.rsplit("#", 1)[0] for k in seen}) if dataset == Dataset.BBH else []
    plan = Plan(
        dataset, task if dataset == Dataset.CRUXEVAL else "output", method, model, samples,
        subset, {"file": name, "sha256": digest, "format": "jsonl"},
    )  # fmt: skip
    # Renumbered in the library's order: index i is the i-th item imported.
    for index, key in enumerate(sorted(seen, key=lambda k: known[k][0])):
        for s, prediction in enumerate(seen[key]):
            plan.rows.append((index, s, key, known[key][1], prediction))
    return plan


def import_jsonl(
    path: Path, *, dataset: str, task: str = "output", method: str, model: str,
    owner: Any = None, on_progress: Progress | None = None,
) -> Evaluation:  # fmt: skip
    """Read, check, score and store a generic JSONL file (``plan_jsonl``)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportRefused(f"{path.name} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ImportRefused(f"{path.name} is not UTF-8 text: {exc}") from None
    plan = plan_jsonl(
        lines, dataset=dataset, task=task, method=method, model=model, name=path.name,
        digest=_digest([path]),
    )  # fmt: skip
    return _create_and_score(plan, owner, None, on_progress)


def default_method(dataset: str, task: str) -> str:
    """The method an import is labelled with when none is given: the one that would have
    written such outputs here (BIG-Bench Hard has none: how its outputs answer must be said)."""
    if dataset == Dataset.P3:
        return next(n for n, m in REGISTRY.items() if "puzzle" in m.tasks)
    if dataset == Dataset.CRUXEVAL:
        wanted = task == "input"
        return next(
            n for n, m in REGISTRY.items() if "program" in m.kinds and m.predicts_input == wanted
        )
    raise ImportRefused("Say how the outputs answer: --method cot (a chain of thought) or direct.")


def plan_upload(
    content: bytes, *, filename: str, dataset: str, task: str, method: str, model: str
) -> Plan:
    """A file sent from the site or the API, checked as the command line checks it: a
    ``.jsonl`` file in the generic format; otherwise CRUXEval's generations file or one
    BIG-Bench Hard ``<task>.json``."""
    name = Path(filename or "upload").name[:200]
    digest = hashlib.sha256(name.encode() + b"\0" + hashlib.sha256(content).digest()).hexdigest()
    if name.endswith(".jsonl"):
        try:
            lines = content.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ImportRefused(f"{name} is not UTF-8 text: {exc}") from None
        return plan_jsonl(
            lines, dataset=dataset, task=task, method=method, model=model, name=name,
            digest=digest,
        )  # fmt: skip
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportRefused(f"{name} is not JSON: {exc}") from None
    if dataset == Dataset.CRUXEVAL:
        return plan_cruxeval(data, task=task, model=model, method=method, name=name, digest=digest)
    if dataset == Dataset.BBH:
        return plan_bbh({name: data}, method=method, model=model, digest=digest)
    raise ImportRefused("A P3 import is a .jsonl file of answers (the generic format).")


def _answer_style(method: str) -> official.AnswerStyle:
    """How BIG-Bench Hard outputs labelled with ``method`` give their answer."""
    styles = {name: m.task_answer for name, m in REGISTRY.items() if m.task_answer}
    if method not in styles:
        raise ImportRefused(
            f"BIG-Bench Hard outputs are imported as {' or '.join(sorted(styles))}, not {method!r}."
        )
    return "after-reasoning" if styles[method] == "after-reasoning" else "alone"


def create(plan: Plan, *, owner: Any = None) -> Evaluation:
    """Write the evaluation (queued, origin "import", the official rules) and its results, each
    pending with its generation, in one transaction; ``score`` scores them."""
    now = timezone.now()
    items = len({row[0] for row in plan.rows})
    config = {
        **plan.config, "rules": official.RULES_VERSION, "task": plan.task,
        "model": plan.model, "method": plan.method, "samples": plan.samples, "item_count": items,
    }  # fmt: skip
    config["digest"] = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            title=f"{plan.model} (imported)", dataset=plan.dataset, subset=plan.subset,
            method=plan.method, model=plan.model, samples=plan.samples,
            status=Evaluation.Status.QUEUED, total=len(plan.rows), owner=owner,
            started_at=now, task=plan.task, origin="import", rules=official.RULES_VERSION,
            config=config,
        )  # fmt: skip
        Result.objects.bulk_create(
            (
                Result(
                    evaluation=evaluation,
                    index=index,
                    sample=sample,
                    item_key=key[:120],
                    item_ref=ref,
                    status=Result.Status.PENDING,
                    prediction=prediction,
                )
                for index, sample, key, ref, prediction in plan.rows
            ),
            batch_size=2000,
        )
    return evaluation


SCORE_CHUNK = 50  # items scored, then written in one transaction (a killed scorer redoes one)


def score(
    evaluation_id: int,
    *,
    runner: official.Runner | None = None,
    on_progress: Progress | None = None,
) -> str:
    """Score an import's pending results by the official rules, a chunk of items at a time
    (all the samples of an item together: CRUXEval's n and all-false rule are per item), then
    finish it with its figures. Resumable and idempotent: only pending results are taken, and a
    chunk's scores are written in one transaction, so a killed scorer loses and doubles
    nothing. Runs where the import was made (the command line) or on the batch worker (an
    upload from the site or the API), its checks in one batch sandbox."""
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    if evaluation.is_finished:
        return str(evaluation.status)
    Evaluation.objects.filter(pk=evaluation_id).update(status=Evaluation.Status.RUNNING)
    batch = None
    if runner is None:
        batch = BatchSandbox(official.CHECK_LIMITS)
        runner = batch.run
    runs = BatchSandbox(Limits(keep_running=True)) if evaluation.dataset == Dataset.P3 else None
    try:
        while True:
            status = Evaluation.objects.values_list("status", flat=True).get(pk=evaluation_id)
            if status in Evaluation.FINISHED:  # cancelled meanwhile: what is scored stays
                return str(status)
            indexes = list(
                Result.objects.filter(evaluation_id=evaluation_id, status=Result.Status.PENDING)
                .order_by("index")
                .values_list("index", flat=True)
                .distinct()[:SCORE_CHUNK]
            )
            if not indexes:
                break
            rows = list(
                Result.objects.filter(
                    evaluation_id=evaluation_id, index__in=indexes, status=Result.Status.PENDING
                ).order_by("index", "sample")
            )
            scored = score_rows(evaluation, rows, runner, runs.run if runs else None)
            now = timezone.now()
            with transaction.atomic():
                for row in rows:
                    passed, status, reason = scored[row.pk]
                    Result.objects.filter(pk=row.pk, status=Result.Status.PENDING).update(
                        status=Result.Status.DONE, passed=passed, score_status=status,
                        reason=reason[:2000], scored_at=now,
                    )  # fmt: skip
            if on_progress is not None:
                done = Result.objects.filter(
                    evaluation_id=evaluation_id, status=Result.Status.DONE
                ).count()
                on_progress(done, evaluation.total)
    finally:
        if batch is not None:
            batch.close()
        if runs is not None:
            runs.close()
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    figures = figures_of([evaluation])[evaluation_id]
    Evaluation.objects.filter(pk=evaluation_id).exclude(
        status__in=[Evaluation.Status.DONE, Evaluation.Status.CANCELLED]
    ).update(status=Evaluation.Status.DONE, finished_at=timezone.now(), figures=figures)
    return "done"


def score_rows(
    evaluation: Evaluation,
    rows: list[Result],
    runner: official.Runner,
    run_sat: Callable[[str, str], dict[str, Any]] | None,
) -> dict[int, tuple[bool, str, str]]:
    """(passed, status, reason) of each row by the official rules of its data set (an
    import's, and their re-scoring: rescoring.py)."""
    out: dict[int, tuple[bool, str, str]] = {}
    if evaluation.dataset == Dataset.CRUXEVAL:
        task: official.Task = "input" if evaluation.task == "input" else "output"
        programs = Program.objects.in_bulk([r.item_ref["program"] for r in rows])
        by_item: dict[int, list[Result]] = {}
        for row in rows:
            by_item.setdefault(row.index, []).append(row)
        for samples in by_item.values():
            program = programs[samples[0].item_ref["program"]]
            item = official.score_cruxeval_item(
                program.source, program.extra.get("input", ""), program.expected_output,
                [r.prediction for r in samples], task, runner,
            )  # fmt: skip
            for row, outcome, reason in zip(samples, item.outcomes, item.reasons, strict=True):
                out[row.pk] = (outcome == "pass", outcome, reason)
    elif evaluation.dataset == Dataset.BBH:
        how = _answer_style(evaluation.method)
        examples = TaskExample.objects.in_bulk([r.item_ref["task_example"] for r in rows])
        for row in rows:
            passed, reason = official.score_bbh(
                row.prediction, examples[row.item_ref["task_example"]].target, how
            )
            out[row.pk] = (passed, "pass" if passed else "fail", reason)
    else:  # P3: each answer read as a literal, checked by sat in the sandbox (puzzle.py)
        assert run_sat is not None
        puzzles = Puzzle.objects.in_bulk([r.item_ref["puzzle"] for r in rows])
        for row in rows:
            out[row.pk] = puzzle_score(puzzles[row.item_ref["puzzle"]], row.prediction, run_sat)
    return out


def puzzle_score(
    puzzle: Puzzle, answer: str, run_sat: Callable[[str, str], dict[str, Any]]
) -> tuple[bool, str, str]:
    """A P3 answer: read as a literal (never code), checked by ``sat`` in the sandbox as the
    puzzle method checks it."""
    try:
        value = parse_literal(answer)
    except NotALiteral as exc:
        return (False, "unparsable", f"the answer is not a literal: {exc}")
    check = check_sat(puzzle.sat, value, ans_type=puzzle.ans_type, run=run_sat)
    return (check.solved, "pass" if check.solved else "fail", check.why)


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
