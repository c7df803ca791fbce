"""Varied items: each student gets their own call of the item's program, drawn from variants
that a declared generator made and the sandbox checked.

The generator is a range of whole numbers or a list of choices (Python literals) for some
literal arguments of the item's call, with a seed: ``f(3, "ab")`` with argument 1 in 1..9 and
argument 2 one of "ab", "xyz". Candidate calls are drawn from it in a fixed order (the item and
the seed decide it), and each one's answer key is a real run in the sandbox (``make``, a Celery
task on the sandbox queue). A candidate whose run raises, times out, exceeds a limit, or that
the item's key check finds a problem with (a checkpoint it never reaches, no question to ask)
is never handed out; more candidates are tried, up to ``variant_candidates.item``, until the
wanted number (at most ``variants.item``) is valid. The item form says when too few are.

Instead of ranges and choices, the staff may write a generator function, ``variant(seed, n)``
returning the call's arguments; it runs in the sandbox only (one run per candidate, counted
like the key's), never in a web or worker process.

A student's variant is a digest of the item, the student and the seed over the valid variants
in order, so the same student always gets the same one. Everything a student page and the
grading read goes through ``for_student``: the item with the variant's call and key run in
place of the program's, so the hiding rules (a run of the item's program text is hidden; the
key shown only once allowed) hold for variants exactly as for the item's own key.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from playground.classroom.models import Item, Mode, Submission, Variant
from playground.lib import ratelimits
from playground.runs.models import Run

# The modes whose key is the real run alone: a variant is one more real run (the model modes
# would need a model run per variant).
VARIED_MODES = frozenset({Mode.OUTPUT, Mode.INPUT, Mode.TRACE, Mode.PROBES, Mode.RULE})
MAX_CHOICES = 20
MAX_LITERAL = 200  # characters of one choice
MAX_RANGE = 10**9
DEFAULT_COUNT = 8
SEED_MAX = 1_000_000
_ENUMERATE_UP_TO = 10_000  # a space this small is listed whole and shuffled, not sampled


class VariationError(ValueError):
    """A generator that cannot be used; the message says why (shown on the item form)."""


def is_varied(item: Item) -> bool:
    spec = item.variation
    return isinstance(spec, dict) and bool(spec.get("args") or spec.get("generator"))


def generated(spec: Any) -> bool:
    """Whether the candidates come from a generator function (run in the sandbox only)."""
    return isinstance(spec, dict) and bool(spec.get("generator"))


def cap_candidates() -> int:
    return ratelimits.cap("variant_candidates.item")


def cap_variants() -> int:
    return ratelimits.cap("variants.item")


# The generator as typed on the item form ---------------------------------------------------


def _call_node(call: str) -> ast.Call:
    try:
        tree = ast.parse(call.strip(), mode="eval")
    except SyntaxError as exc:
        raise VariationError("The call is not a Python expression.") from exc
    if not isinstance(tree.body, ast.Call) or not tree.body.args:
        raise VariationError("Only a call with arguments can be varied, e.g. f(3, 'ab').")
    return tree.body


def _literal(text: str) -> ast.expr:
    """A Python literal as an expression node, or VariationError."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        ast.literal_eval(node)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        raise VariationError(f"{text.strip()[:60]!r} is not a Python literal.") from exc
    return node


def parse(text: str, call: str, *, count: int = DEFAULT_COUNT, seed: int = 0) -> dict[str, Any]:
    """The generator from the form's lines, one per varied argument: ``1: 1..9`` (whole numbers
    from 1 to 9) or ``2: 'ab' | 'xyz'`` (choices), arguments numbered from 1. Raises
    VariationError with the reason; an empty text is no variation ({})."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return {}
    node = _call_node(call)
    args: list[dict[str, Any]] = []
    seen: set[int] = set()
    for line in lines[:20]:
        where, colon, rule = line.partition(":")
        where = where.strip()
        if not colon or not (where.isascii() and where.isdigit() and len(where) <= 3):
            raise VariationError(
                f"{line[:60]!r}: write the argument's number, a colon and its values, "
                "e.g. 1: 1..9 or 2: 'ab' | 'xyz'."
            )
        index = int(where) - 1
        if not 0 <= index < len(node.args):
            raise VariationError(
                f"The call has {len(node.args)} argument{'s' if len(node.args) != 1 else ''}: "
                f"there is no argument {where}."
            )
        if index in seen:
            raise VariationError(f"Argument {index + 1} is varied twice.")
        seen.add(index)
        if isinstance(node.args[index], ast.Starred):
            raise VariationError(f"Argument {index + 1} is not a literal.")
        try:
            ast.literal_eval(node.args[index])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            raise VariationError(
                f"Argument {index + 1} of the call is not a literal: only literals are varied."
            ) from exc
        low, dots, high = rule.partition("..")
        if dots and _is_int(low) and _is_int(high):
            first, last = int(low), int(high)
            if first > last:
                raise VariationError(f"Argument {index + 1}: the range {first}..{last} is empty.")
            if max(abs(first), abs(last)) > MAX_RANGE:
                raise VariationError(f"Argument {index + 1}: numbers up to {MAX_RANGE:,}.")
            args.append({"index": index, "range": [first, last]})
            continue
        choices: list[str] = []
        for part in rule.split("|"):
            if not part.strip():
                continue
            if len(part.strip()) > MAX_LITERAL:
                raise VariationError(f"Argument {index + 1}: a choice is over {MAX_LITERAL} chars.")
            written = ast.unparse(_literal(part))
            if written not in choices:
                choices.append(written)
        if not choices:
            raise VariationError(f"Argument {index + 1}: give a range (1..9) or choices.")
        if len(choices) > MAX_CHOICES:
            raise VariationError(f"Argument {index + 1}: at most {MAX_CHOICES} choices.")
        args.append({"index": index, "choices": choices})
    if len(lines) > 20:
        raise VariationError("At most 20 arguments are varied.")
    args.sort(key=lambda a: a["index"])
    return {"args": args, "count": count, "seed": seed}


def _is_int(text: str) -> bool:
    text = text.strip()
    digits = text[1:] if text[:1] == "-" else text
    return digits.isascii() and digits.isdigit() and len(digits) <= 10


GENERATOR = "variant"
MAX_CALL = 2000  # characters of a generated call


def check_generator(source: str, call: str) -> None:
    """A generator function as typed: it must define ``variant(seed, n)`` and the call must have
    arguments to replace. Only parsed here: it runs in the sandbox alone (``make``)."""
    _call_node(call)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise VariationError("The generator is not valid Python.") from exc
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if GENERATOR not in names:
        raise VariationError(
            f"The generator defines {GENERATOR}(seed, n), which returns the call's arguments "
            "as a tuple."
        )


def generated_call(call: str, result: Any) -> str:
    """The item's call with the arguments a generator returned (their repr, as the sandbox's
    trace gives it). Raises VariationError when it is not a tuple of literals for every
    argument (a single value is the first argument's)."""
    node = _call_node(call)
    try:
        value = ast.literal_eval(str(result))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise VariationError("The generator did not return literals.") from exc
    values = list(value) if isinstance(value, tuple) else [value]
    if len(values) != len(node.args):
        raise VariationError(
            f"The generator returned {len(values)} value{'s' if len(values) != 1 else ''} for "
            f"{len(node.args)} argument{'s' if len(node.args) != 1 else ''}."
        )
    varied = copy.deepcopy(node)
    varied.args = [_literal(repr(v)) for v in values]
    text = ast.unparse(varied)
    if len(text) > MAX_CALL:
        raise VariationError(f"The generated call is over {MAX_CALL:,} characters.")
    return text


def as_text(spec: dict[str, Any]) -> str:
    """The generator as the form shows it (``parse``'s input)."""
    lines = []
    for arg in spec.get("args") or []:
        if "range" in arg:
            rule = f"{arg['range'][0]}..{arg['range'][1]}"
        else:
            rule = " | ".join(arg.get("choices") or [])
        lines.append(f"{int(arg['index']) + 1}: {rule}")
    return "\n".join(lines)


# Candidates ---------------------------------------------------------------------------------


def _values(arg: dict[str, Any]) -> list[str]:
    if "range" in arg:
        first, last = arg["range"]
        return [str(n) for n in range(first, min(last, first + _ENUMERATE_UP_TO) + 1)]
    return list(arg["choices"])


def _space(spec: dict[str, Any]) -> int:
    size = 1
    for arg in spec["args"]:
        size *= (arg["range"][1] - arg["range"][0] + 1) if "range" in arg else len(arg["choices"])
    return size


def candidates(spec: dict[str, Any], call: str, *, item_id: int, limit: int) -> list[str]:
    """Up to ``limit`` distinct candidate calls, in an order fixed by the item and the seed (the
    same every time: a retried task tries the same ones). Pure: runs nothing."""
    node = _call_node(call)
    # Not a secret: a fixed order the staff can reproduce (the seed is on the form).
    rng = random.Random(f"variants:{item_id}:{spec.get('seed', 0)}")  # noqa: S311
    args = spec["args"]
    if _space(spec) <= _ENUMERATE_UP_TO:
        combos = list(itertools.product(*(_values(a) for a in args)))
        rng.shuffle(combos)
    else:
        seen: set[tuple[str, ...]] = set()
        combos = []
        for _ in range(limit * 20):
            combo = tuple(
                str(rng.randint(*a["range"])) if "range" in a else rng.choice(a["choices"])
                for a in args
            )
            if combo not in seen:
                seen.add(combo)
                combos.append(combo)
            if len(combos) >= limit:
                break
    calls: list[str] = []
    for combo in combos[:limit]:
        varied = copy.deepcopy(node)
        for arg, text in zip(args, combo, strict=True):
            varied.args[arg["index"]] = _literal(text)
        calls.append(ast.unparse(varied))
    return calls


def spec_key(item: Item) -> str:
    """What the variants were made from: the generator, the program, its call and what the key
    check looks at. Variants of another key are never handed out."""
    program = item.program
    parts = {
        "variation": item.variation,
        "source": program.source if program is not None else "",
        "call": program.call if program is not None else "",
        "stdin": program.stdin if program is not None else "",
        "mode": item.mode,
        "checkpoints": item.checkpoints,
        "rule": item.rule,
        "probes": item.probe_config,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def wanted(item: Item) -> int:
    spec = item.variation if isinstance(item.variation, dict) else {}
    count = int(spec.get("count") or DEFAULT_COUNT)
    return max(1, min(count, cap_variants()))


def valid(item: Item) -> list[Variant]:
    """The item's variants that may be handed out, in order."""
    return list(
        Variant.objects.filter(item=item, spec=spec_key(item), status=Variant.Status.VALID)
        .select_related("run")
        .order_by("number")
    )


# A student's variant -------------------------------------------------------------------------


def index_for(item_id: int, student_id: int, seed: int, count: int) -> int:
    """Which of ``count`` valid variants a student gets: a digest of the item, the student and
    the seed (stable; spread evenly over the students)."""
    digest = hashlib.sha256(f"variant:{item_id}:{student_id}:{seed}".encode()).hexdigest()
    return int(digest[:16], 16) % count


def variant_for(item: Item, student: Any, found: list[Variant] | None = None) -> Variant | None:
    """The student's variant of a varied item (None: not varied, or none valid yet). Once a
    student has answered, the variant of their first graded answer stays theirs."""
    if not is_varied(item) or student is None or not getattr(student, "pk", None):
        return None
    found = valid(item) if found is None else found
    if not found:
        return None
    answered = (
        Submission.objects.filter(item=item, student_id=student.pk, variant__isnull=False)
        .order_by("attempt")
        .values_list("variant_id", flat=True)
        .first()
    )
    if answered is not None:
        for variant in found:
            if variant.pk == answered:
                return variant
    return drawn(item, student.pk, found)


def drawn(item: Item, student_id: int, found: list[Variant]) -> Variant:
    """The variant the digest gives a student who has not answered yet (no query)."""
    seed = int((item.variation or {}).get("seed") or 0)
    return found[index_for(item.pk, student_id, seed, len(found))]


def with_variant(item: Item, variant: Variant | None) -> Item:
    """The item as it is asked with this variant: its call and its key run are the variant's
    (a copy; never saved). No valid variant: no key (students cannot answer yet)."""
    seen = copy.copy(item)
    seen._state = copy.copy(item._state)
    seen._state.fields_cache = dict(item._state.fields_cache)
    program = copy.copy(item.program)
    if program is not None:
        program.call = variant.call if variant is not None else program.call
        seen.program = program
    seen.key_run = variant.run if variant is not None else None
    if variant is not None and variant.run is not None:
        # Checked when it was made valid: no problem (key_status reads this, writes nothing).
        seen.key_check = {"run": variant.run.pk, "problems": [], "warnings": []}
    seen.variant = variant  # type: ignore[attr-defined]
    return seen


def for_student(item: Item, student: Any) -> Item:
    """The item as this student is asked it: unchanged unless varied."""
    if not is_varied(item):
        return item
    return with_variant(item, variant_for(item, student))


# Making them (the Celery task's body) -------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where an item's variants stand, for the staff: how many are valid, wanted, refused and
    still being run; ``short`` says why too few are valid when none are left to try."""

    valid: int
    wanted: int
    refused: int
    pending: int
    tried: int
    cap: int

    @property
    def done(self) -> bool:
        return self.valid >= self.wanted or (self.pending == 0 and self.tried >= self.cap)

    @property
    def short(self) -> str:
        if not self.done or self.valid >= self.wanted:
            return ""
        if self.valid == 0:
            return (
                f"No valid variant: every one of the {self.tried} candidates raised, ran out of "
                "time or a limit, or cannot be answered. Students cannot answer this item: "
                "change the generator, the program or its call."
            )
        return (
            f"Only {self.valid} valid variant{'s' if self.valid != 1 else ''} of the "
            f"{self.wanted} wanted ({self.refused} of {self.tried} candidates refused): "
            "students share them. Widen the generator for more."
        )


def progress(item: Item) -> Progress:
    key = spec_key(item)
    counts = dict.fromkeys(Variant.Status.values, 0)
    for status in Variant.objects.filter(item=item, spec=key).values_list("status", flat=True):
        counts[status] += 1
    possible = runs_needed(item, per_candidate=1)
    return Progress(
        valid=counts[Variant.Status.VALID],
        wanted=wanted(item),
        refused=counts[Variant.Status.REFUSED],
        pending=counts[Variant.Status.PENDING],
        tried=sum(counts.values()),
        cap=possible,
    )


def _call(item: Item) -> str:
    return item.program.call if item.program is not None else ""


def runs_needed(item: Item, *, per_candidate: int | None = None) -> int:
    """The candidates this item's variants may try (``per_candidate=1``), or the sandbox runs
    they may cost: one each, two for a generator's (its own run, then the key's)."""
    return needed(item.variation, _call(item), item_id=item.pk, per_candidate=per_candidate)


def needed(spec: Any, call: str, *, item_id: int = 0, per_candidate: int | None = None) -> int:
    """``runs_needed`` for a generator and call not saved yet (the item form)."""
    if not isinstance(spec, dict) or not (spec.get("args") or spec.get("generator")):
        return 0
    if generated(spec):
        return cap_candidates() * (2 if per_candidate is None else per_candidate)
    return len(candidates(spec, call, item_id=item_id, limit=cap_candidates()))


def make(item_id: int, key: str) -> str:
    """Make the item's variants for the generator ``key``: try candidates in order until enough
    are valid or the cap is reached. Idempotent: each candidate is one row (unique per item,
    key and number) holding one run, made in the same transaction; a killed worker's retry
    finds them and goes on from where it stopped, running nothing twice that had finished."""
    item = Item.objects.select_related("program", "assignment").filter(pk=item_id).first()
    if item is None or item.program is None or not is_varied(item) or spec_key(item) != key:
        return "stale"  # gone, or changed since: its own task makes the new ones
    goal = wanted(item)
    if generated(item.variation):
        return _make_generated(item, key, goal)
    calls = candidates(item.variation, item.program.call, item_id=item.pk, limit=cap_candidates())
    for number, call in enumerate(calls):
        if Variant.objects.filter(item=item, spec=key, status=Variant.Status.VALID).count() >= goal:
            break
        variant = _candidate(item, key, number, call)
        if variant.status == Variant.Status.PENDING:
            _settle(item, variant)
    return "ok"


def _make_generated(item: Item, key: str, goal: int) -> str:
    """``make`` for a generator function: candidate n's call is what ``variant(seed, n)``
    returns in the sandbox (the same every time, so a retry finds the same calls); one that
    raises, returns no tuple of literals, or repeats an earlier call is refused."""
    for number in range(cap_candidates()):
        valid_now = Variant.objects.filter(item=item, spec=key, status=Variant.Status.VALID)
        if valid_now.count() >= goal:
            break
        variant = Variant.objects.filter(item=item, spec=key, number=number).first()
        if variant is None:
            try:
                call, problem = _generate(item, number), ""
            except VariationError as exc:
                call, problem = "", str(exc)
            except RuntimeError:
                return "unavailable"  # the sandbox: nothing recorded, a retry goes on here
            if not problem and Variant.objects.filter(item=item, spec=key, call=call).exists():
                problem = "The generator gave the same call as an earlier candidate."
            if problem:
                Variant.objects.get_or_create(
                    item=item, spec=key, number=number,
                    defaults={"call": call, "status": Variant.Status.REFUSED, "problem": problem},
                )  # fmt: skip
                continue
            variant = _candidate(item, key, number, call)
        if variant.status == Variant.Status.PENDING:
            _settle(item, variant)
    return "ok"


def _generate(item: Item, number: int) -> str:
    """Candidate ``number``'s call, from the generator run in the sandbox (never here).
    Raises VariationError with the reason, RuntimeError when the sandbox is unavailable."""
    from playground import sandbox
    from playground.runs.limits import limits_for_run

    spec = item.variation
    seed = int(spec.get("seed") or 0)
    try:
        trace = sandbox.run(
            str(spec["generator"]),
            call=f"{GENERATOR}({seed}, {number})",
            limits=limits_for_run({}),
        )
    except sandbox.SandboxUnavailable as exc:
        raise RuntimeError(str(exc)) from exc
    if trace["status"] != "ok":
        error = trace.get("error") if isinstance(trace.get("error"), dict) else {}
        what = str((error or {}).get("type") or str(trace["status"]).replace("_", " "))
        raise VariationError(f"The generator did not return ({what}).")
    return generated_call(_call(item), trace["result"])


def _candidate(item: Item, key: str, number: int, call: str) -> Variant:
    with transaction.atomic():
        variant, _ = Variant.objects.select_for_update().get_or_create(
            item=item, spec=key, number=number, defaults={"call": call}
        )
        if variant.run_id is None:
            program = item.program
            assert program is not None
            variant.run = Run.objects.create(
                program=program,
                method="real",
                source=program.source,
                call=call,
                stdin=program.stdin,
                owner=item.assignment.course.created_by,
                sent_as_tasks=False,  # this task runs it; the reaper leaves it alone
                rule=item.rule if item.mode == Mode.RULE else "",
            )
            variant.save(update_fields=["run"])
    return variant


def _settle(item: Item, variant: Variant) -> None:
    """Run the candidate (if not already) and decide whether it may be handed out."""
    from playground.classroom import keys
    from playground.runs.pipeline import execute_real

    assert variant.run_id is not None
    run = Run.objects.get(pk=variant.run_id)
    if not run.is_finished:
        execute_real(run.pk)
        run = Run.objects.get(pk=variant.run_id)
    if not run.is_finished:
        return  # held by another worker: its task settles it
    problem = ""
    if run.status != Run.Status.DONE:
        problem = run.error or f"The run was {run.get_status_display().lower()}."
    else:
        real = keys.trace_data(run.real_trace)
        status = str(real.get("status", ""))
        if status != "ok":
            error = real.get("error") if isinstance(real.get("error"), dict) else {}
            what = str((error or {}).get("type") or status.replace("_", " "))
            problem = f"The call did not return a value ({what})."
        else:
            seen = with_variant(item, variant)
            seen.key_run, seen.key_check = run, None
            problems, _ = keys.check_run(seen, run)
            problem = " ".join(problems)
    Variant.objects.filter(pk=variant.pk, status=Variant.Status.PENDING).update(
        status=Variant.Status.REFUSED if problem else Variant.Status.VALID, problem=problem[:2000]
    )


def failed(item: Item) -> Any:
    """The item's candidates whose run failed for a reason that is the server's (the sandbox
    unavailable, a worker that gave up), not the program's: they are tried again."""
    return Variant.objects.filter(item=item, spec=spec_key(item), run__status=Run.Status.FAILED)


def again(item: Item) -> int:
    """Preparing the key again of a varied item: forget the candidates the server failed and
    send the making again (it goes on from where it stopped). Returns how many are retried."""
    if not is_varied(item):
        return 0
    count, _ = failed(item).delete()
    start(item)
    return count


def start(item: Item) -> None:
    """Queue the making of the item's variants once the item is committed."""
    if not is_varied(item):
        return
    from playground.classroom.tasks import make_variants

    key, pk = spec_key(item), item.pk
    transaction.on_commit(lambda: make_variants.apply_async((pk, key)))
