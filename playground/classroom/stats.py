"""An item's statistics for its staff: how the students did (first attempt and best), their most
common wrong answers, and the models' accuracy on the same program, from the runs on record."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from playground.classroom import keys, pools, variants
from playground.classroom.models import Item, Membership, Mode, Role, Submission
from playground.classroom.probing import identity
from playground.emulation import probes
from playground.emulation.judging import CORRECT, NO_MODEL, needed_no_model
from playground.emulation.literals import NotALiteral, parse_literal
from playground.emulation.registry import REGISTRY
from playground.llm.registry import RegistryError, load_models
from playground.runs.models import Run, method_label

MAX_SHOWN = 200  # characters of an answer shown in the table
TOP_WRONG = 10


@dataclass
class Bar:
    label: str
    right: int
    total: int
    students: bool = False
    short: str = ""  # for the chart: registry names rather than labels
    # Runs Chain of Code finished in Python alone (the model never asked): in neither count.
    no_model: int = 0
    # Right answers on a path that diverged from the program's (issue 20): None for students
    # and for a method without a path verdict.
    wrong_path: int | None = None

    def __post_init__(self) -> None:
        self.short = self.short or self.label

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total else None

    @property
    def percent(self) -> float:
        return 100 * (self.accuracy or 0.0)


@dataclass
class WrongAnswer:
    text: str
    times: int
    students: int


@dataclass
class ItemStats:
    submitters: int = 0
    submissions: int = 0
    first: Bar = field(default_factory=lambda: Bar("Students, first attempt", 0, 0, True))
    best: Bar = field(default_factory=lambda: Bar("Students, best attempt", 0, 0, True))
    wrong: list[WrongAnswer] = field(default_factory=list)
    models: list[Bar] = field(default_factory=list)
    probes: ProbeTable | None = None  # answer the probes: per kind, students vs models
    steps: StepTable | None = None  # predict the next state: per asked step, students vs models
    drew: int | None = None  # an item of a pool: how many students drew it
    variants: list[tuple[str, int]] = field(default_factory=list)  # (call, students) answering

    @property
    def bars(self) -> list[Bar]:
        return [self.first, self.best, *self.models]


def normalise(text: str) -> str:
    """One spelling per answer: a Python literal as its repr (``[1,2]`` and ``[1, 2]`` are the
    same answer), anything else with its whitespace collapsed."""
    text = text.strip()
    try:
        shown = repr(parse_literal(text))
    except (NotALiteral, ValueError):  # ValueError: an int too long to print
        shown = " ".join(text.split())
    return shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 1] + "…"


def wrong_parts(item: Item, submission: Submission) -> list[str]:
    """The wrong parts of a graded answer, normalised: the answer itself, or for a trace each
    variable that was wrong, as "checkpoint 2 (line 5): total = 3"."""
    answer = submission.answer
    if item.mode == Mode.PROBES:
        return _wrong_probes(submission)
    if item.mode != Mode.TRACE:
        return [normalise(answer if isinstance(answer, str) else str(answer))]
    if not isinstance(answer, dict):
        return []
    details = (submission.feedback or {}).get("details") or {}
    parts: list[str] = []
    for index, checkpoint in enumerate(details.get("checkpoints") or []):
        for name, right in (checkpoint.get("right") or {}).items():
            if right:
                continue
            written = answer.get(f"{index}.{name}")
            parts.append(
                f"checkpoint {index + 1} (line {checkpoint.get('line')}): "
                f"{name} = {normalise(str(written or ''))}"
            )
    return parts


def _wrong_probes(submission: Submission) -> list[str]:
    """The wrong answers of an "answer the probes" submission, as "question 2 (state, line 5):
    [1, 2]"."""
    answer = submission.answer if isinstance(submission.answer, dict) else {}
    details = (submission.feedback or {}).get("details") or {}
    parts: list[str] = []
    for index, mark in enumerate(details.get("probes") or []):
        if isinstance(mark, dict) and mark.get("right") is False:
            where = f", line {mark['line']}" if mark.get("line") is not None else ""
            written = normalise(str(answer.get(str(index)) or ""))
            parts.append(f"question {index + 1} ({mark.get('kind')}{where}): {written}")
    return parts


def _labels() -> dict[str, str]:
    try:
        return {m.name: m.label for m in load_models()}
    except RegistryError:
        return {}


def _has_path(method: str) -> bool:
    """Whether runs of the method get a path verdict (emulation/judging.py)."""
    spec = REGISTRY.get(method)
    return spec is not None and spec.judges_path


def _runs(item: Item) -> Any:
    """The runs the models are judged by: of the item's puzzle, or of its program under the
    item's rule (standard Python for every mode but "execute under a changed rule")."""
    if item.puzzle_id is not None:
        return Run.objects.filter(puzzle_id=item.puzzle_id)
    if item.program_id is not None:
        return Run.objects.filter(program_id=item.program_id, rule=item.rule)
    return None


def _answered_right(method: str, verdict: Any) -> bool:
    """Whether a run's answer was right: its verdict, or for a probe method the answer to its
    output question (as evaluations count a probe run's answer, so that a run can be right with
    a wrong path); a probe run with no output question falls back to its verdict."""
    if not isinstance(verdict, dict):
        return False
    spec = REGISTRY.get(method)
    if spec is not None and spec.asks_probes:
        marks = verdict.get("probes")
        for mark in marks if isinstance(marks, list) else []:
            if isinstance(mark, dict) and mark.get("kind") == "output":
                return mark.get("status") == "correct"
    return verdict.get("status") == CORRECT


def model_bars(item: Item) -> list[Bar]:
    """Each (model, method)'s accuracy on the item's program (or puzzle; under the item's rule):
    finished runs whose answer is right (``_answered_right``), over all finished runs of that
    pair that asked the model. A Chain of
    Code run that never called the model is counted apart (``no_model``), never as right. For a
    method with a path verdict, ``wrong_path`` counts its right answers on a diverging path."""
    runs = _runs(item)
    if runs is None:
        return []
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rows = (
        runs.filter(status=Run.Status.DONE)
        .exclude(method="real")
        .values_list("model", "method", "verdict", "model_calls")
    )
    for model, method, verdict, calls in rows.iterator():
        tally = counts[(model, method)]
        status = verdict.get("status") if isinstance(verdict, dict) else None
        if status == NO_MODEL or (item.program_id is not None and needed_no_model(method, calls)):
            tally[2] += 1
            continue
        right = _answered_right(method, verdict)
        tally[1] += 1
        tally[0] += right
        path = verdict.get("path") if isinstance(verdict, dict) else None
        tally[3] += right and isinstance(path, dict) and path.get("status") == "diverges"
    labels = _labels()
    bars = [
        Bar(
            f"{labels.get(model, model) or '?'} · {method_label(method)}",
            right,
            total,
            short=f"{model or '?'} · {method}",
            no_model=no_model,
            wrong_path=wrong_path if _has_path(method) else None,
        )
        for (model, method), (right, total, no_model, wrong_path) in counts.items()
    ]
    return sorted(bars, key=lambda b: (-(b.accuracy or 0.0), b.label))


def item_stats(item: Item) -> ItemStats:
    """How the students did. An item of a pool counts only the students who drew it; a varied
    item counts each student on their own variant (``variants``: how many each got)."""
    stats = ItemStats()
    graded = list(
        Submission.objects.filter(item=item, status=Submission.Status.GRADED)
        .order_by("student_id", "attempt")
        .only("student_id", "attempt", "answer", "score", "feedback", "variant_id")
    )
    if item.pool:
        students = Membership.objects.filter(
            course_id=item.assignment.course_id, role=Role.STUDENT
        ).values_list("user_id", flat=True)
        drew = pools.drew(item, students)
        stats.drew = len(drew)
        graded = [sub for sub in graded if sub.student_id in drew]
    if variants.is_varied(item):
        calls = {v.pk: v.call for v in item.variants.all()}
        per_variant: Counter[str] = Counter()
        for sub in graded:
            if sub.attempt == 1 and sub.variant_id is not None:
                per_variant[calls.get(sub.variant_id, "?")] += 1
        stats.variants = sorted(per_variant.items())
    stats.submissions = len(graded)
    best: dict[int, float] = {}
    wrong: Counter[str] = Counter()
    wrong_students: dict[str, set[int]] = defaultdict(set)
    for sub in graded:
        score = sub.score or 0.0
        if sub.attempt == 1:
            stats.first.total += 1
            stats.first.right += score >= 1.0
        best[sub.student_id] = max(best.get(sub.student_id, 0.0), score)
        if score < 1.0:
            for part in set(wrong_parts(item, sub)):
                wrong[part] += 1
                wrong_students[part].add(sub.student_id)
    stats.submitters = len(best)
    stats.best.total = len(best)
    stats.best.right = sum(1 for score in best.values() if score >= 1.0)
    stats.wrong = [
        WrongAnswer(text, times, len(wrong_students[text]))
        for text, times in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_WRONG]
    ]
    stats.models = model_bars(item)
    if item.mode == Mode.PROBES:
        stats.probes = probe_table(item, graded)
    if item.mode == Mode.NEXT_STATE:
        stats.steps = step_table(item)
    return stats


# Predict the next state: per asked step, students vs each model's re-synced step runs ----------


@dataclass
class StepColumn:
    """The students, or one model's ``step`` runs of the item's program and call: per asked
    step (an index) the sum of the step scores (the item's partial credit rule) and the count."""

    label: str
    short: str = ""
    runs: int = 0
    cells: dict[int, list[float]] = field(default_factory=dict)

    def add(self, index: int, score: float) -> None:
        cell = self.cells.setdefault(index, [0.0, 0])
        cell[0] += score
        cell[1] += 1

    def mean(self, index: int) -> float | None:
        total, count = self.cells.get(index, [0.0, 0])
        return total / count if count else None

    def overall(self) -> float | None:
        means = [m for m in (self.mean(i) for i in self.cells) if m is not None]
        return sum(means) / len(means) if means else None


@dataclass
class StepTable:
    asked: list[int]
    lines: dict[int, Any]
    columns: list[StepColumn]
    models: list[tuple[str, str]] = field(default_factory=list)  # what staff may start a run of

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "number": i + 1,
                "line": self.lines.get(i),
                "cells": [(c.mean(i), int(c.cells.get(i, [0, 0])[1])) for c in self.columns],
            }
            for i in self.asked
        ]


STEP_METHOD = "step"  # the re-synced method: the model predicts each step given the real ones


def step_runs(item: Item) -> Any:
    """The model's re-synced ``step`` runs of the item's program and call, finished."""
    runs = _runs(item)
    if runs is None or item.program is None:
        return Run.objects.none()
    return runs.filter(method=STEP_METHOD, call=item.program.call, status=Run.Status.DONE).exclude(
        model=""
    )


def step_table(item: Item) -> StepTable:
    """The asked steps: the students' mean step score beside each model's, on the same steps
    graded by the same rule (a model's marks are its run's verdict, ``stepping.grade``'s)."""
    from playground.classroom import nextstate
    from playground.classroom.models import StepPrediction

    steps = nextstate.key_steps(item)
    asked = nextstate.asked(item.step_choice, len(steps))
    events = {i: str(steps[i].get("event", "line")) for i in asked}
    students = StepColumn("Students", short="Students")
    for step, mark in StepPrediction.objects.filter(item=item, step__in=asked).values_list(
        "step", "mark"
    ):
        if isinstance(mark, dict):
            students.add(step, nextstate.step_score(mark, item.partial_credit))
    columns: dict[str, StepColumn] = {}
    labels = _labels()
    for model, verdict in step_runs(item).values_list("model", "verdict").iterator():
        marks = verdict.get("steps") if isinstance(verdict, dict) else None
        column = columns.setdefault(
            model, StepColumn(f"{labels.get(model, model)} · {method_label(STEP_METHOD)}", model)
        )
        column.runs += 1
        for mark in marks if isinstance(marks, list) else []:
            index = mark.get("step") if isinstance(mark, dict) else None
            if index in events:
                counted = nextstate.counted(index, mark, events[index])
                column.add(index, nextstate.step_score(counted, item.partial_credit))
    try:
        models = [(m.name, m.label) for m in load_models()]
    except RegistryError:
        models = []
    return StepTable(
        asked=asked,
        lines={i: steps[i].get("line") for i in asked},
        columns=[students, *(columns[m] for m in sorted(columns))],
        models=models,
    )


# Answer the probes: per kind, students vs models on the same questions -----------------------


@dataclass
class ProbeColumn:
    """Students (their first attempts) or one model and method (its probe runs): per kind
    (right, asked) on the item's questions, and the mean incremental consistency."""

    label: str
    short: str = ""  # the column's heading: registry names rather than labels
    runs: int = 0  # first attempts, or runs that asked at least one of the item's questions
    kinds: dict[str, list[int]] = field(default_factory=dict)
    ic: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.short = self.short or self.label

    def add(self, kind: str, right: bool) -> None:
        row = self.kinds.setdefault(kind, [0, 0])
        row[0] += right
        row[1] += 1

    def cell(self, kind: str) -> tuple[int, int, float | None]:
        right, asked = self.kinds.get(kind, [0, 0])
        return right, asked, (100 * right / asked if asked else None)

    @property
    def mean_ic(self) -> float | None:
        return sum(self.ic) / len(self.ic) if self.ic else None


@dataclass
class ProbeTable:
    kinds: list[str]
    columns: list[ProbeColumn]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [{"kind": k, "cells": [c.cell(k) for c in self.columns]} for k in self.kinds]


def probe_table(item: Item, graded: list[Submission]) -> ProbeTable:
    """The item's questions, per kind: the students' first attempts beside each model and
    probe method's runs of the program, counted on the questions they share with the item
    (the same seed and counts: all of them)."""
    asked = {identity(p.as_dict()) for p in keys.questions(item)}
    students = ProbeColumn("Students, first attempt")
    for sub in graded:
        if sub.attempt != 1:
            continue
        details = (sub.feedback or {}).get("details") or {}
        # As a model's: on the item's questions only (its counts or seed may have changed).
        marks = [
            {**m, "status": "correct" if m.get("right") is True else "wrong"}
            for m in details.get("probes") or []
            if isinstance(m, dict) and identity(m) in asked
        ]
        if not marks:
            continue
        students.runs += 1
        for mark in marks:
            students.add(str(mark.get("kind")), mark["status"] == "correct")
        ic = probes.consistency(marks)
        if ic["items"]:
            students.ic.append(float(ic["ic"]))
    columns: dict[tuple[str, str], ProbeColumn] = {}
    runs = _runs(item)
    methods = [name for name, spec in REGISTRY.items() if spec.asks_probes]
    rows = (
        runs.filter(status=Run.Status.DONE, method__in=methods).values_list(
            "model", "method", "verdict"
        )
        if runs is not None
        else []
    )
    labels = _labels()
    for model, method, verdict in rows:
        found = verdict.get("probes") if isinstance(verdict, dict) else None
        marks = [
            m
            for m in (found if isinstance(found, list) else [])
            if isinstance(m, dict) and m.get("status") != "unknown" and identity(m) in asked
        ]
        if not marks:
            continue  # it asked other questions: nothing to compare
        label = f"{labels.get(model, model) or '?'} · {method_label(method)}"
        column = columns.setdefault(
            (model, method), ProbeColumn(label, short=f"{model or '?'} · {method}")
        )
        column.runs += 1
        for mark in marks:
            column.add(str(mark.get("kind")), mark.get("status") == "correct")
        ic = probes.consistency(marks)
        if ic["items"]:
            column.ic.append(float(ic["ic"]))
    kinds = [k for k in probes.KINDS if any(k in c.kinds for c in [students, *columns.values()])]
    return ProbeTable(kinds, [students, *sorted(columns.values(), key=lambda c: c.label)])


def chart(bars: list[Bar], *, width: int = 640, row: int = 46) -> dict[str, Any]:
    """Geometry of the bar chart drawn as inline SVG by the template: each bar under its label,
    its percentage after it."""
    bar_w = width - 130
    rows = []
    for index, bar in enumerate(bars):
        top = 6 + index * row
        filled = round(bar_w * (bar.accuracy or 0.0), 1)
        rows.append(
            {"bar": bar, "label_y": top + 13, "y": top + 19, "width": filled, "pct_x": filled + 6}
        )
    return {
        "width": width,
        "height": 10 + len(bars) * row,
        "bar_w": bar_w,
        "bar_h": 20,
        "rows": rows,
    }
