"""Comparing an emulated trace with the real one, step by step.

Semantics (steps of the current schema, see ``playground.sandbox.schema``):

- **Alignment.** Steps are paired by ``(line, event)`` (``playground.compare.align``), a
  ``return`` and an ``unwind`` counting as the same event there (both leave the frame). An
  unpaired real step (the model skipped it), an unpaired emulated step (the model went somewhere
  else) and a pair whose places differ are all ``control_flow``.
- **Exceptions.** Getting an exception wrong is a divergence of its own, ``exception``: a pair
  where one side returns and the other unwinds (a model that says "return None" where the
  exception left the frame), an ``exception`` or ``unwind`` step on one side only, and a pair of
  them naming a different exception (the types must agree; a message the model leaves out is not
  a difference, one it gives must agree).
- **Variables.** Each trace keeps its own frame stack, rebuilt the way the viewer does: a
  ``call`` step, or any step met with an empty stack, pushes a frame; after a ``return`` or
  ``unwind`` step the frame is popped before the next step; a step's ``locals`` (only the
  changed names) update the top frame. Every step of each trace is applied in order, paired or
  not. At a pair with the same place, every name in either step's ``locals`` is looked up in
  both top frames and the two values are compared with ``same_repr``; a name missing on the
  model's side is a difference (got None). This catches a change the model missed and a change
  it invented, and tolerates a model that repeats an unchanged value.
- **Identity.** When both traces record object identity (schema v3 ``ids``: the real run's,
  and a Chain of Code run's, which the sandbox traced; a model-written trace has none), each
  frame also keeps which names are bound to one object. At such a pair, for every name compared
  whose values agree, the other names bound to the same object must be the same on both sides:
  the top frame's, and those of the frames below (a parameter that is the caller's list), as
  deep as both stacks go. A model that copies a list the program shares (or shares one the
  program copies) diverges there, with kind and status ``identity``, and the name counts as a
  disagreement. The ids themselves are numbered per trace and never compared.
- **Output.** At such a pair the cumulative stdout of each trace so far is compared, trailing
  whitespace of every line and of the whole ignored.
- The first pair that is not a full match (variables first, then output) is the first
  divergence. When every step matches but the results differ, the divergence is of kind
  ``result``.

``from_call=True`` drops the leading ``<module>`` steps of both traces first (the model was asked
to trace the call only), together with the output they printed. Step numbers stored are always
the steps' own ``i`` (the list index where ``i`` is missing); messages count from 1, as every
viewer does (step ``i`` is "Step i+1"). The emulated trace was written by a
model: non-dict steps are skipped, other values are coerced with ``str``, a line that is not an
int counts as -1.

One file of about 530 lines because ``compare_traces`` is one walk over the aligned steps that
keeps every tally (statuses, per-variable agreement, the first divergence) in the same pass; it is
pure and held by property tests (tests/compare/), so splitting its tallies into a class was
judged not worth the indirection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from playground.compare.align import Pair, align_keys
from playground.compare.reprs import same_repr

MAX_STEPS_LISTED = 20_000
# Events that leave a frame (schema.FRAME_EXITS; this package imports nothing of the project).
FRAME_EXITS = frozenset({"return", "unwind"})
MAX_VARIABLES_LISTED = 200
TAIL = 80


@dataclass(frozen=True)
class Comparison:
    """How an emulated trace compares with the real one (``as_dict`` is JSON-able)."""

    result_match: bool | None
    real_result: str | None
    emulated_result: str | None
    output_match: bool
    first_divergence: dict[str, Any] | None
    correct_prefix: int
    compared_steps: int
    emulated_steps: int
    step_agreement: float
    variable_agreement: float | None
    per_variable: dict[str, dict[str, int]]
    steps: list[dict[str, Any]]
    full_match: bool

    def as_dict(self) -> dict[str, Any]:
        """The comparison as a plain dict of JSON types."""
        return asdict(self)


@dataclass(frozen=True)
class _Step:
    i: int
    line: int
    event: str
    func: str
    locals: dict[str, str]
    stdout: str
    exception: str = ""
    ids: dict[str, int] | None = None  # the shown names' object ids; None: no identity recorded


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _steps(trace: Any) -> list[_Step]:
    """The dict steps of a trace, normalised; anything odd is coerced rather than refused."""
    raw = trace.get("steps") if isinstance(trace, dict) else None
    if not isinstance(raw, list):
        return []
    steps = []
    identity = any(isinstance(step, dict) and ("ids" in step or "heap" in step) for step in raw)
    for index, step in enumerate(raw):
        if not isinstance(step, dict):
            continue
        i, line, event = step.get("i"), step.get("line"), step.get("event")
        locals_ = step.get("locals")
        stdout = step.get("stdout")
        ids = step.get("ids") if identity else None
        steps.append(
            _Step(
                i=i if type(i) is int else index,
                line=line if type(line) is int else -1,
                event="line" if event is None else _text(event),
                func=_text(step.get("func", "")),
                locals=(
                    {_text(k): _text(v) for k, v in locals_.items()}
                    if isinstance(locals_, dict)
                    else {}
                ),
                stdout="" if stdout is None else _text(stdout),
                exception=_text(step.get("exception") or ""),
                ids=(
                    None
                    if not identity
                    else {_text(k): v for k, v in ids.items() if type(v) is int}
                    if isinstance(ids, dict)
                    else {}
                ),
            )
        )
    return steps


def _where(step: _Step) -> tuple[int, str]:
    """A step's place for the alignment: a return and an unwind both leave the frame there."""
    return (step.line, "return" if step.event == "unwind" else step.event)


_RAISING = frozenset({"exception", "unwind"})


def _same_exception(real: str, emulated: str) -> bool:
    """The same exception: the same type, and the same message unless the model gave none."""
    real_type, _, real_message = real.partition(":")
    emulated_type, _, emulated_message = emulated.partition(":")
    if real_type.strip() != emulated_type.strip():
        return False
    return not emulated_message.strip() or emulated_message.strip() == real_message.strip()


def _drop_module(steps: list[_Step]) -> tuple[list[_Step], str]:
    """Steps from the first one outside ``<module>``, and the output of those dropped."""
    start = 0
    while start < len(steps) and steps[start].func == "<module>":
        start += 1
    return steps[start:], "".join(s.stdout for s in steps[:start])


def normalise_output(text: str) -> str:
    """Output with trailing whitespace removed from every line and from the whole."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip()


class _Output:
    """Cumulative stdout, kept normalised as it grows (``normalise_output`` of all of it)."""

    def __init__(self) -> None:
        self.done = ""  # complete lines, each rstripped and ended with "\n"
        self.partial = ""  # the last, unfinished line, raw

    def add(self, text: str) -> None:
        if not text:
            return
        self.partial += text
        if "\n" in text:
            lines = self.partial.split("\n")
            self.done += "".join(line.rstrip() + "\n" for line in lines[:-1])
            self.partial = lines[-1]

    def value(self) -> str:
        return (self.done + self.partial.rstrip()).rstrip()


class _Frames:
    """A frame stack rebuilt from steps the way the viewer does."""

    def __init__(self) -> None:
        self.stack: list[dict[str, str]] = []
        self.ids: list[dict[str, int]] = []  # per frame: name -> object id (identity traces)
        self.funcs: list[str] = []  # per frame: its function
        self.pop_next = False

    def apply(self, step: _Step) -> dict[str, str]:
        if self.pop_next:
            self.pop_next = False
            if self.stack:
                self.stack.pop()
                self.ids.pop()
                self.funcs.pop()
        if step.event == "call" or not self.stack:
            self.stack.append({})
            self.ids.append({})
            self.funcs.append(step.func)
        top = self.stack[-1]
        top.update(step.locals)
        if step.ids is not None:
            ids = self.ids[-1]
            for name in step.locals:
                if name in step.ids:
                    ids[name] = step.ids[name]
                else:  # shown without an id: bound to an immutable value now
                    ids.pop(name, None)
        if step.event in FRAME_EXITS:
            self.pop_next = True
        return top

    def aliases(self, name: str, *, depth: int) -> frozenset[str] | None:
        """The other names bound to the object the top frame's ``name`` is bound to (empty: it is
        alone); None when ``name`` is bound to no recorded object. Names of the ``depth - 1``
        frames below the top count too, as "name in func()" (a parameter that is the caller's
        list); the caller passes the depth both traces share."""
        if not self.ids:
            return None
        rid = self.ids[-1].get(name)
        if rid is None:
            return None
        found = {other for other, i in self.ids[-1].items() if i == rid and other != name}
        below = len(self.ids) - 1
        for frame in range(max(0, below - depth + 1), below):
            func = self.funcs[frame]
            where = "the program" if func == "<module>" else f"{func}()"
            found.update(f"{other} in {where}" for other, i in self.ids[frame].items() if i == rid)
        return frozenset(found)


def _short(text: str | None) -> str:
    if text is None:
        return "nothing"
    return text if len(text) <= TAIL else text[: TAIL - 1] + "\u2026"


def _place(step: _Step) -> str:
    # No parentheses: messages put a place in parentheses after a step number.
    return f"line {step.line}" if step.event == "line" else f"the {step.event} at line {step.line}"


def _number(i: int) -> int:
    """A step's number as users read it: the viewers count steps from 1."""
    return i + 1


def _func(step: _Step) -> str:
    return "the program" if step.func in ("<module>", "") else f"{step.func}()"


def _step_words(step: _Step) -> str:
    """A step in words, for a sentence: "line 3", "a return at line 3"."""
    if step.event == "line":
        return f"line {step.line}"
    article = "an" if step.event[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {step.event} step at line {step.line}"


def _divergence(
    kind: str,
    message: str,
    *,
    real_step: int | None,
    emulated_step: int | None,
    line: int | None,
    variable: str | None = None,
    expected: str | None = None,
    got: str | None = None,
) -> dict[str, Any]:
    return {
        "real_step": real_step,
        "emulated_step": emulated_step,
        "line": line,
        "kind": kind,
        "variable": variable,
        "expected": expected,
        "got": got,
        "message": message,
    }


def _result(trace: Any) -> str | None:
    value = trace.get("result") if isinstance(trace, dict) else None
    return None if value is None else _text(value)


def _stdout(trace: Any, steps: list[_Step], dropped: str) -> str:
    value = trace.get("stdout") if isinstance(trace, dict) else None
    if value is None:
        return "".join(s.stdout for s in steps)
    text = _text(value)
    return text[len(dropped) :] if dropped and text.startswith(dropped) else text


def _next_indexes(pairs: list[Pair], real: list[_Step], emulated: list[_Step]) -> list[Pair]:
    """For each pair position, the step ``i`` of the next real and emulated step still to come
    (from this pair on)."""
    out: list[Pair] = [(None, None)] * len(pairs)
    next_real: int | None = None
    next_emulated: int | None = None
    for p in range(len(pairs) - 1, -1, -1):
        r, e = pairs[p]
        if r is not None:
            next_real = real[r].i
        if e is not None:
            next_emulated = emulated[e].i
        out[p] = (next_real, next_emulated)
    return out


def compare_traces(
    real: dict[str, Any], emulated: dict[str, Any], *, from_call: bool = False
) -> Comparison:
    """Compare an emulated trace with the real one: first divergence, agreement scores and a
    status for every aligned pair of steps (see the module docstring for the semantics)."""
    real_steps, emulated_steps = _steps(real), _steps(emulated)
    real_dropped = emulated_dropped = ""
    if from_call:
        real_steps, real_dropped = _drop_module(real_steps)
        emulated_steps, emulated_dropped = _drop_module(emulated_steps)

    real_result, emulated_result = _result(real), _result(emulated)
    result_match = None if real_result is None else same_repr(real_result, emulated_result)
    output_match = normalise_output(_stdout(real, real_steps, real_dropped)) == normalise_output(
        _stdout(emulated, emulated_steps, emulated_dropped)
    )

    pairs = align_keys([_where(s) for s in real_steps], [_where(s) for s in emulated_steps])
    upcoming = _next_indexes(pairs, real_steps, emulated_steps)

    real_frames, emulated_frames = _Frames(), _Frames()
    real_out, emulated_out = _Output(), _Output()
    output_same = True
    first: dict[str, Any] | None = None
    correct_prefix = 0
    matching = 0
    agree = total = 0
    per_variable: dict[str, dict[str, int]] = {}
    listed: list[dict[str, Any]] = []

    for p, (r, e) in enumerate(pairs):
        rs = real_steps[r] if r is not None else None
        es = emulated_steps[e] if e is not None else None
        real_top = emulated_top = None
        changed = False
        if rs is not None:
            real_top = real_frames.apply(rs)
            real_out.add(rs.stdout)
            changed = bool(rs.stdout)
        if es is not None:
            emulated_top = emulated_frames.apply(es)
            emulated_out.add(es.stdout)
            changed = changed or bool(es.stdout)
        if changed:
            output_same = real_out.value() == emulated_out.value()

        differs: list[str] = []
        divergence: dict[str, Any] | None = None
        if rs is None or es is None or _where(rs) != _where(es):
            raising = (rs is not None and rs.event in _RAISING) or (
                es is not None and es.event in _RAISING
            )
            status = "exception" if raising else "control_flow"
            if first is None:
                divergence = (
                    _exception(rs, es, upcoming[p])
                    if raising
                    else _control_flow(rs, es, upcoming[p])
                )
        elif rs.event != es.event or (
            rs.event in _RAISING and not _same_exception(rs.exception, es.exception)
        ):
            status = "exception"
            if first is None:
                divergence = _exception(rs, es, upcoming[p])
        else:
            assert real_top is not None
            assert emulated_top is not None
            names = list(rs.locals)
            names.extend(name for name in es.locals if name not in rs.locals)
            identity = rs.ids is not None and es.ids is not None
            # Frames compared for sharing: as many as both stacks have.
            depth = min(len(real_frames.ids), len(emulated_frames.ids))
            shared: list[str] = []
            for name in names:
                expected, got = real_top.get(name), emulated_top.get(name)
                same = same_repr(expected, got)
                if (
                    same
                    and identity
                    and name != "__return__"
                    and real_frames.aliases(name, depth=depth)
                    != emulated_frames.aliases(name, depth=depth)
                ):
                    same = False
                    shared.append(name)
                total += 1
                agree += same
                counts = per_variable.get(name)
                if counts is None and len(per_variable) < MAX_VARIABLES_LISTED:
                    counts = per_variable[name] = {"agree": 0, "total": 0}
                if counts is not None:
                    counts["total"] += 1
                    counts["agree"] += same
                if not same:
                    differs.append(name)
            if differs and len(shared) == len(differs):
                status = "identity"
                if first is None:
                    divergence = _identity(rs, es, shared[0], real_frames, emulated_frames, depth)
            elif differs:
                status = "value"
                if first is None:
                    name = next(n for n in differs if n not in shared)
                    divergence = _value(rs, es, name, real_top, emulated_top)
            elif not output_same:
                status = "output"
                if first is None:
                    expected, got = real_out.value()[-TAIL:], emulated_out.value()[-TAIL:]
                    divergence = _divergence(
                        "output",
                        f"Step {_number(rs.i)} ({_place(rs)}): the output so far differs from the "
                        "real run's.",
                        real_step=rs.i,
                        emulated_step=es.i,
                        line=rs.line,
                        expected=expected,
                        got=got,
                    )
            else:
                status = "match"
                matching += 1
        if divergence is not None:
            first = divergence
        elif first is None and rs is not None:
            correct_prefix += 1
        if len(listed) < MAX_STEPS_LISTED:
            listed.append(
                {
                    "real": rs.i if rs is not None else None,
                    "emulated": es.i if es is not None else None,
                    "status": status,
                    "differs": differs,
                }
            )

    if first is None and result_match is False:
        says = "gives no result" if emulated_result is None else f"says {_short(emulated_result)}"
        first = _divergence(
            "result",
            f"The result is {_short(real_result)}, the model {says}.",
            real_step=None,
            emulated_step=None,
            line=None,
            expected=real_result,
            got=emulated_result,
        )

    longest = max(len(real_steps), len(emulated_steps))
    return Comparison(
        result_match=result_match,
        real_result=real_result,
        emulated_result=emulated_result,
        output_match=output_match,
        first_divergence=first,
        correct_prefix=correct_prefix,
        compared_steps=len(real_steps),
        emulated_steps=len(emulated_steps),
        step_agreement=matching / longest if longest else 1.0,
        variable_agreement=agree / total if total else None,
        per_variable=per_variable,
        steps=listed,
        full_match=first is None and result_match is not False,
    )


def _control_flow(rs: _Step | None, es: _Step | None, upcoming: Pair) -> dict[str, Any]:
    if rs is not None and es is not None:
        return _divergence(
            "control_flow",
            f"Step {_number(rs.i)}: the real run is at {_place(rs)}, the model says {_place(es)}.",
            real_step=rs.i,
            emulated_step=es.i,
            line=rs.line,
            expected=_place(rs),
            got=_place(es),
        )
    if rs is not None:
        return _divergence(
            "control_flow",
            f"Step {_number(rs.i)} ({_place(rs)}): the model skips this step.",
            real_step=rs.i,
            emulated_step=upcoming[1],
            line=rs.line,
            expected=_place(rs),
            got=None,
        )
    assert es is not None
    where = f"Step {_number(upcoming[0])}" if upcoming[0] is not None else "After the last step"
    return _divergence(
        "control_flow",
        f"{where}: the model adds a step at {_place(es)} that the real run does not take.",
        real_step=upcoming[0],
        emulated_step=es.i,
        line=es.line,
        expected=None,
        got=_place(es),
    )


def _value(
    rs: _Step, es: _Step, name: str, real_top: dict[str, str], emulated_top: dict[str, str]
) -> dict[str, Any]:
    expected, got = real_top.get(name), emulated_top.get(name)
    where = f"Step {_number(rs.i)} ({_place(rs)})"
    if expected is None:
        message = f"{where}: the model shows {name} = {_short(got)}, which the real run lacks."
    elif got is None:
        message = f"{where}: {name} is {_short(expected)}, the model does not show it."
    else:
        message = f"{where}: {name} is {_short(expected)}, the model says {_short(got)}."
    return _divergence(
        "value",
        message,
        real_step=rs.i,
        emulated_step=es.i,
        line=rs.line,
        variable=name,
        expected=expected,
        got=got,
    )


def _identity(
    rs: _Step, es: _Step, name: str, real: _Frames, emulated: _Frames, depth: int
) -> dict[str, Any]:
    """A name whose value agrees but whose object does not: one object in the real run where the
    model has two (it copied), or the other way round."""
    expected = real.aliases(name, depth=depth) or frozenset()
    got = emulated.aliases(name, depth=depth) or frozenset()

    def one_with(names: frozenset[str]) -> str:
        return "the same object as " + ", ".join(sorted(names)) if names else "an object of its own"

    return _divergence(
        "identity",
        f"Step {_number(rs.i)} ({_place(rs)}): {name} is {one_with(expected)} in the real run; "
        f"in the model's run it is {one_with(got)}.",
        real_step=rs.i,
        emulated_step=es.i,
        line=rs.line,
        variable=name,
        expected=one_with(expected),
        got=one_with(got),
    )


def _exception(rs: _Step | None, es: _Step | None, upcoming: Pair) -> dict[str, Any]:
    """The model got an exception wrong: missed one, invented one, named another one, or said a
    frame returned where the exception left it (or the other way round)."""
    expected: str | None
    got: str | None
    if rs is not None and es is not None and rs.event == "unwind" and es.event == "return":
        returned = es.locals.get("__return__")
        says = f"returns {_short(returned)}" if returned is not None else "returns"
        message = (
            f"Step {_number(rs.i)} (line {rs.line}): {rs.exception or 'an exception'} leaves "
            f"{_func(rs)} here; the model says {_func(rs)} {says}."
        )
        expected, got = f"unwind: {rs.exception}", f"return {returned or ''}".strip()
    elif rs is not None and es is not None and rs.event == "return" and es.event == "unwind":
        returned = rs.locals.get("__return__")
        message = (
            f"Step {_number(rs.i)} (line {rs.line}): {_func(rs)} returns {_short(returned)}; "
            f"the model says {es.exception or 'an exception'} leaves it."
        )
        expected, got = f"return {returned or ''}".strip(), f"unwind: {es.exception}"
    elif rs is not None and es is not None and rs.event == es.event:
        message = (
            f"Step {_number(rs.i)} (line {rs.line}): the exception is {rs.exception}; "
            f"the model says {es.exception or 'nothing about it'}."
        )
        expected, got = rs.exception, es.exception
    elif rs is not None and rs.event in _RAISING:
        doing = "is raised here" if rs.event == "exception" else f"leaves {_func(rs)} here"
        model = f"has {_step_words(es)} instead" if es is not None else "skips this step"
        message = (
            f"Step {_number(rs.i)} (line {rs.line}): {rs.exception or 'an exception'} {doing}; "
            f"the model {model}."
        )
        expected, got = _place(rs), _place(es) if es is not None else None
    else:
        assert es is not None
        doing = "raised" if es.event == "exception" else f"leaving {_func(es)}"
        where = f"Step {_number(upcoming[0])}" if upcoming[0] is not None else "After the last step"
        if rs is not None:
            where = f"Step {_number(rs.i)} (line {rs.line}, {_step_words(rs)} in the real run)"
        message = (
            f"{where}: the model says {es.exception or 'an exception'} is {doing} at line "
            f"{es.line}; the real run raises nothing there."
        )
        expected, got = (_place(rs) if rs is not None else None), _place(es)
    return _divergence(
        "exception",
        message,
        real_step=rs.i if rs is not None else upcoming[0],
        emulated_step=es.i if es is not None else upcoming[1],
        line=rs.line if rs is not None else es.line if es is not None else None,
        expected=expected,
        got=got,
    )
