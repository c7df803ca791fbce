"""Writing an assignment's items: saving one from the item form, their order, deleting one, and
starting each item's answer key (the real run of its program and, for the model modes, the
model's emulation of it). Not named ``items``: ``Item`` is the model, and these are the staff's
edits of it; whether a key is ready is ``keys``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max

from playground.classroom import audit, variants
from playground.classroom.models import Assignment, Item, Mode, Submission
from playground.emulation.registry import DEFAULT_METHOD, DEFAULT_STEP_METHOD, max_tokens_for
from playground.programs.models import Dataset, Program, Puzzle
from playground.runs.models import Run
from playground.runs.services import start_run


@dataclass
class ItemData:
    """What the item form decided (see ``item_form.ItemForm``)."""

    mode: str
    title: str
    prompt: str
    points: float
    program: Program | None
    puzzle: Puzzle | None
    new_source: str | None  # a new program written on the form
    new_call: str
    checkpoints: list[dict[str, Any]]
    model: str
    method: str
    probe_config: dict[str, int] = field(default_factory=dict)  # answer the probes
    step_choice: dict[str, Any] = field(default_factory=dict)  # predict the next state
    rule: str = ""  # execute under a changed rule
    results: str = ""  # when students see their results (models.Results; "": the assignment's)
    partial_credit: str = "proportional"  # a multi-part answer's credit (models.PartialCredit)
    variation: dict[str, Any] = field(default_factory=dict)  # a varied item's generator
    pool: str = ""  # the pool the item is drawn from ("": every student gets it)


def save_item(
    *, assignment: Assignment, item: Item | None, data: ItemData, by: Any
) -> tuple[Item, bool]:
    """Create or update an item; (re)start its answer key when what it is graded against changed
    (program, puzzle, mode, model or method). Returns (item, whether a new key was started)."""
    with transaction.atomic():
        made_from = variants.spec_key(item) if item is not None else ""
        program = data.program
        if data.new_source is not None:
            name = data.title or f"{assignment.title}: item"
            program = Program.objects.create(
                title=name[:200],
                source=data.new_source,
                call=data.new_call,
                dataset=Dataset.USER,
                owner=by,
                is_public=False,
            )
        if item is None:
            last = assignment.items.aggregate(last=Max("position"))["last"]
            item = Item(assignment=assignment, position=0 if last is None else last + 1)
            changed = True
        else:
            model_changed = item.model != data.model or item.method != data.method
            changed = (
                item.mode != data.mode
                or item.program_id != (program.pk if program else None)
                or item.puzzle_id != (data.puzzle.pk if data.puzzle else None)
                or (data.mode in (Mode.DIVERGENCE, Mode.BEAT_MODEL) and model_changed)
                or (data.mode == Mode.RULE and item.rule != data.rule)
            )
        item.mode = data.mode
        item.title = data.title
        item.prompt = data.prompt
        item.points = data.points
        item.program = program if data.mode != Mode.PUZZLE else None
        item.puzzle = data.puzzle if data.mode == Mode.PUZZLE else None
        item.checkpoints = data.checkpoints if data.mode == Mode.TRACE else []
        model_mode = data.mode in (Mode.DIVERGENCE, Mode.BEAT_MODEL)
        item.model = data.model if model_mode else ""
        item.method = data.method if model_mode else ""
        # The probes' seed and counts need no new key: the questions come from the same run.
        item.probe_config = data.probe_config if data.mode == Mode.PROBES else {}
        item.rule = data.rule if data.mode == Mode.RULE else ""
        # The asked steps need no new key either: they are steps of the same run.
        item.step_choice = data.step_choice if data.mode == Mode.NEXT_STATE else {}
        item.results = data.results
        item.partial_credit = data.partial_credit
        item.variation = data.variation if data.mode in variants.VARIED_MODES else {}
        item.pool = data.pool
        if changed:
            item.key_run = None
        item.key_check = None  # checkpoints may have changed: the key is checked again
        item.save()
        if changed:
            prepare_item(item, by=by)
        if variants.is_varied(item) and variants.spec_key(item) != made_from:
            variants.start(item)  # new candidates: each one's key is a real run
    return item, changed


# The modes whose key is the real run alone (under a rule: the run under it, with the standard
# run beside it).
KEY_METHOD = {
    Mode.OUTPUT: "real",
    Mode.INPUT: "real",
    Mode.TRACE: "real",
    Mode.PROBES: "real",
    Mode.RULE: "real",
    Mode.NEXT_STATE: "real",
}


# An answer key's model answer gets at least this many tokens, more where its method's own
# budget is larger: a key that breaks off at the limit is no key.
KEY_MIN_TOKENS = 1024


def prepare_item(item: Item, *, by: Any) -> Run | None:
    """Start the item's answer key: the real run of its program and, for the model modes, the
    model's emulation of it (the run belongs to the instructor who made the item)."""
    if item.mode == Mode.PUZZLE or item.program is None:
        return None
    method = KEY_METHOD.get(Mode(item.mode))
    if method is None:
        method = item.method or (
            DEFAULT_STEP_METHOD if item.mode == Mode.DIVERGENCE else DEFAULT_METHOD
        )
    run = start_run(
        program=item.program,
        user=by,
        anon_token=None,
        method=method,
        model=item.model if method != "real" else "",
        max_tokens=max(max_tokens_for(method), KEY_MIN_TOKENS),
        rule=item.rule if item.mode == Mode.RULE else "",
    )
    Item.objects.filter(pk=item.pk).update(key_run=run, key_check=None)
    item.key_run, item.key_check = run, None
    return run


def prepare_again(item: Item, *, by: Any) -> None:
    """Start the answer key anew (after a failed run, or a model that was down); a varied
    item's candidates that the server failed are made again too."""
    with transaction.atomic():
        prepare_item(item, by=by)
        variants.again(item)


def move_item(*, item: Item, direction: str) -> bool:
    """Swap the item with its neighbour above ("up") or below ("down"); False at an end."""
    with transaction.atomic():
        items = list(
            Item.objects.select_for_update()
            .filter(assignment_id=item.assignment_id)
            .order_by("position", "id")
        )
        index = next(i for i, other in enumerate(items) if other.pk == item.pk)
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(items):
            return False
        items[index], items[other] = items[other], items[index]
        for position, each in enumerate(items):  # renumber: positions may have had gaps or ties
            if each.position != position:
                Item.objects.filter(pk=each.pk).update(position=position)
    return True


def delete_item(item: Item, *, by: Any) -> int:
    """Delete an item and its submissions; returns how many submissions went with it."""
    with transaction.atomic():
        count, _ = Submission.objects.filter(item=item).delete()
        audit.record(
            audit.Action.ITEM_DELETED,
            course=item.assignment.course,
            actor=by,
            assignment=item.assignment.title,
            item=str(item),
            item_id=item.pk,
            submissions=count,
        )
        item.delete()
    return count
