"""Trace schema v3, the reader that upgrades older stored traces, and validation of what comes
back from the sandbox (untrusted: the user's program shares a process with the tracer and can
print anything on its descriptor).

A step is ``{"i", "line", "func"}`` plus, only when they differ from their default:

- ``event``: ``call``, ``return``, ``exception`` or ``unwind`` (default ``line``);
- ``locals``: the variables that changed, name -> bounded repr (default ``{}``); a ``return``
  step adds ``__return__``, the value returned (or yielded);
- ``stdout``: what was printed since the previous step (default ``""``);
- ``by``: ``"lm"`` for a step a model produced (default ``"python"``);
- ``exception``: ``"Type: message"`` (or ``"Type"`` when it has no message), on ``exception``
  steps (raised in this frame, or arrived in it from a callee) and ``unwind`` steps;
- ``to``, ``to_line``: on an ``unwind`` step, the function and line of the program the exception
  goes to (its caller); left out when it leaves the program's code (the call expression, the
  module, a library calling back: the program then stops with it, unless that code catches it)
  and when it is a generator's ``GeneratorExit`` (the generator was closed: it ends there);
- ``ids``: for each name in ``locals`` whose value is a mutable container (list, dict, set,
  bytearray, deque, their subclasses) or an instance with a ``__dict__``, the object's id: a
  small integer, 1, 2, 3... in order of first sight, stable for the run; two names with one id
  are one object (default ``{}``; past 10,000 objects a run's new ones get none);
- ``heap``: the objects new or changed since they were last recorded, ``{"<id>": entry}``, an
  entry ``{"kind", "items"}`` plus ``type`` (the class, when it is not ``kind``), ``cut`` and
  ``len`` (when something was left out: items past 40, containers past 3 levels or 50 a step;
  ``len`` is the container's size). ``kind`` is ``list``, ``dict``, ``set``, ``bytearray``,
  ``deque`` or ``object``; ``items`` are values, each an int (a reference: the id of a recorded
  object) or a string (the bounded repr of an immutable, or of an object not followed), and for
  ``dict`` and ``object`` ``[key, value]`` pairs (an object's attributes by their names' repr).
  An object mutated in place is recorded again with the same id; every id a step names is
  recorded in this step or an earlier one. Readers that do not know them ignore both fields;
  ``compare/`` reads ``ids`` (which names share an object) when both traces have them.

Read them with ``step.get(name, default)``. Leaving defaults out keeps a trace at about a
quarter of the size of a Python Tutor style snapshot of every variable at every step.

A trace run under a semantic rule (inside/semantics.py) has ``rule``, the rule's name, set by the
parent that asked for it; without one the key is absent (Python's own semantics).

``stats`` holds ``steps`` (those in the trace) and ``wall_ms``; ``truncated`` when the program
ran on untraced past its step limit; ``capped`` and ``total_steps`` when the trace reached its
size limit (``Limits.max_trace_bytes``): the steps after the first ``steps`` were dropped.

Versions (``"schema"``):

- 1 (up to 3103616): an exception leaving a frame was a ``return`` step with ``__return__``
  ``"None"``, right after the frame's ``exception`` step (or, leaving a ``finally``, after its
  lines: not told apart from a real return).
- 2: such a step is an ``unwind``; ``to``/``to_line`` added; an exception without a message
  reads ``"Type"`` (was ``"Type: "``); a run stopped at its wall-clock limit keeps its steps;
  a time limit's message states the fact ("The program ran for 5 s of wall-clock time.", was
  "Stopped after 5 s..." under a status that says "Stopped" already), and a MemoryError's
  empty message is filled in.
- 3: ``ids`` and ``heap`` added (object identity, what containers hold). A trace-wide version
  rather than a per-step field version: a reader checks one number, the fields are additive (a
  v2 trace is a v3 trace without them, upgraded by relabelling alone), and every other change
  so far was trace-wide.

``upgrade`` turns a stored trace of any version into the current one, and every stored trace
is read through it (``playground.runs.models.Trace``): runs, share links and embeds, the API,
comparisons, evaluations and classroom grading see one schema. In a v1 trace recorded by the
tracer (a real run, a Chain of Code run) a ``return`` of ``None`` right after an ``exception``
step of the same function becomes an ``unwind`` with that exception, and its ``to`` is the caller
rebuilt from the call and return steps; one after a ``finally`` stays a return (v1 did not record
the difference). A model's steps (the ``trace`` method) are kept as the model wrote them.
"""

from __future__ import annotations

import re
from typing import Any

STATUSES = frozenset(
    {
        "ok",
        "exception",
        "step_limit",
        "time_limit",
        "memory_limit",
        "output_limit",
        "crash",
        "parse_error",
        "cancelled",
    }
)
SCHEMA_VERSION = 3
EVENTS = frozenset({"call", "line", "return", "exception", "unwind"})
# Events that leave a frame: the next step is in the caller (or the program has ended).
FRAME_EXITS = frozenset({"return", "unwind"})
MAX_NAME = 100
MAX_VALUE = 300
MAX_RESULT = 10_000
MAX_LOCALS = 200
MAX_FUNC = 200
MAX_HEAP = 250  # entries in one step: the names' own objects and 50 more
MAX_ITEMS = 40  # items of one entry
MAX_OBJECTS = 10_000  # ids in one run
HEAP_KINDS = frozenset({"list", "dict", "set", "bytearray", "deque", "object"})
PAIRED_KINDS = frozenset({"dict", "object"})


class TraceInvalid(ValueError):
    """The sandbox answered something that is not a trace."""


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Line breaks and other control characters, for text that goes into a log line or a one-line
# message (C0, DEL, C1, and Unicode's line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def storable(text: str) -> str:
    """PostgreSQL's jsonb refuses NUL and lone surrogates: show them as visible replacements."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "\u2400" if m.group() == "\x00" else "\ufffd", text)


def one_line(text: str) -> str:
    """``text`` with every run of control characters (newlines included) made one space."""
    return _CONTROL.sub(" ", text).strip()


def stored_size(step: dict[str, Any]) -> int:
    """About the characters a validated step takes in the stored trace's JSON (as json.dumps
    writes it; more where its strings need escapes)."""
    size = 48 + len(step["func"])
    if "event" in step:
        size += 20
    if "locals" in step:
        size += 14 + sum(len(name) + len(value) + 8 for name, value in step["locals"].items())
    for key in ("stdout", "exception", "by", "to"):
        if key in step:
            size += 16 + len(step[key])
    if "to_line" in step:
        size += 20
    if "ids" in step:
        size += 10 + sum(len(name) + 10 for name in step["ids"])
    if "heap" in step:
        size += 10 + sum(_entry_size(entry) for entry in step["heap"].values())
    return size


def _entry_size(entry: dict[str, Any]) -> int:
    size = 48 + len(entry.get("type", ""))
    for item in entry["items"]:
        for part in item if type(item) is list else (item,):
            size += len(part) + 6 if type(part) is str else 8
    return size


def _text(value: Any, limit: int, what: str) -> str:
    if type(value) is not str:
        raise TraceInvalid(f"{what} is not a string")
    return storable(value[:limit])


def _int(value: Any, what: str, *, low: int = 0, high: int = 10**9) -> int:
    if type(value) is not int or not low <= value <= high:
        raise TraceInvalid(f"{what} is not an integer in range")
    return value


def clean_step(
    raw: Any, index: int, *, max_stdout: int, objects: set[int] | None = None
) -> dict[str, Any]:
    """A validated copy of one step: known keys only, types checked, every string capped.
    ``objects``: the heap ids recorded by the steps before (updated with this step's); a step
    naming an id not recorded by then is invalid. None: ``ids`` and ``heap`` are dropped."""
    if type(raw) is not dict:
        raise TraceInvalid("a step is not an object")
    if raw.get("i") != index:
        raise TraceInvalid(f"step {index} is out of sequence")
    event = raw.get("event", "line")
    if type(event) is not str or event not in EVENTS:
        raise TraceInvalid(f"step {index} has an unknown event")
    locals_ = raw.get("locals", {})
    if type(locals_) is not dict or len(locals_) > MAX_LOCALS:
        raise TraceInvalid(f"step {index} has bad locals")
    step: dict[str, Any] = {
        "i": index,
        "line": _int(raw.get("line"), "line", high=1_000_000),
        "func": _text(raw.get("func", ""), MAX_FUNC, "func"),
    }
    if event != "line":
        step["event"] = event
    if locals_:
        step["locals"] = {
            _text(k, MAX_NAME, "a variable name"): _text(v, MAX_VALUE, "a value")
            for k, v in locals_.items()
        }
    stdout = _text(raw.get("stdout", ""), max_stdout, "stdout")
    if stdout:
        step["stdout"] = stdout
    if raw.get("by", "python") != "python":
        step["by"] = "lm"
    if "exception" in raw:
        step["exception"] = _text(raw["exception"], 1000, "exception")
    if event == "unwind" and "to" in raw:
        step["to"] = _text(raw["to"], MAX_FUNC, "to")
        step["to_line"] = _int(raw.get("to_line"), "to_line", high=1_000_000)
    if objects is not None and ("ids" in raw or "heap" in raw):
        _clean_identity(raw, step, index, objects)
    return step


def _clean_identity(
    raw: dict[str, Any], step: dict[str, Any], index: int, objects: set[int]
) -> None:
    """``ids`` and ``heap`` of a step, checked: sizes, types, and every id they name recorded
    (in this step's heap or an earlier one's)."""
    heap = raw.get("heap", {})
    ids = raw.get("ids", {})
    if type(heap) is not dict or len(heap) > MAX_HEAP or type(ids) is not dict:
        raise TraceInvalid(f"step {index} has a bad heap")
    entries: dict[str, Any] = {}
    recorded: set[int] = set()
    for key, raw_entry in heap.items():
        if type(key) is not str or not key.isdigit() or len(key) > 6:
            raise TraceInvalid(f"step {index} has a bad heap id")
        rid = _int(int(key), "a heap id", low=1, high=MAX_OBJECTS)
        entries[str(rid)] = _clean_entry(raw_entry, index)
        recorded.add(rid)
    known = objects | recorded
    for entry in entries.values():
        for item in entry["items"]:
            for part in item if type(item) is list else (item,):
                if type(part) is int and part not in known:
                    raise TraceInvalid(f"step {index} refers to an object not recorded")
    if len(ids) > MAX_LOCALS:
        raise TraceInvalid(f"step {index} has bad ids")
    names = step.get("locals", {})
    clean_ids: dict[str, int] = {}
    for name, rid in ids.items():
        if type(name) is not str or storable(name[:MAX_NAME]) not in names:
            raise TraceInvalid(f"step {index} has an id for a name it does not show")
        if type(rid) is not int or rid not in known:
            raise TraceInvalid(f"step {index} refers to an object not recorded")
        clean_ids[storable(name[:MAX_NAME])] = rid
    objects |= recorded
    if clean_ids:
        step["ids"] = clean_ids
    if entries:
        step["heap"] = entries


def _clean_entry(raw: Any, index: int) -> dict[str, Any]:
    if type(raw) is not dict:
        raise TraceInvalid(f"step {index} has a bad heap entry")
    kind = raw.get("kind")
    items = raw.get("items")
    if kind not in HEAP_KINDS or type(items) is not list or len(items) > MAX_ITEMS:
        raise TraceInvalid(f"step {index} has a bad heap entry")
    paired = kind in PAIRED_KINDS
    clean: list[Any] = []
    for item in items:
        if paired:
            if type(item) is not list or len(item) != 2:
                raise TraceInvalid(f"step {index} has a bad heap item")
            clean.append([_item(part, index) for part in item])
        else:
            clean.append(_item(item, index))
    entry: dict[str, Any] = {"kind": kind, "items": clean}
    if "type" in raw:
        entry["type"] = _text(raw["type"], MAX_FUNC, "a heap type")
    if raw.get("cut", False) is not False:
        if raw["cut"] is not True:
            raise TraceInvalid(f"step {index} has a bad heap entry")
        entry["cut"] = True
        entry["len"] = _int(raw.get("len"), "a heap entry's length", high=10**12)
    return entry


def _item(value: Any, index: int) -> str | int:
    if type(value) is int:
        return _int(value, "a heap reference", low=1, high=MAX_OBJECTS)
    return _text(value, MAX_VALUE, "a heap item")


def clean_error(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if type(raw) is not dict:
        raise TraceInvalid("error is not an object")
    line = raw.get("line")
    return {
        "type": _text(raw.get("type", ""), 100, "error type"),
        "message": _text(raw.get("message", ""), 1000, "error message"),
        "line": line if type(line) is int and 0 <= line <= 1_000_000 else None,
    }


def make_trace(
    *,
    status: str,
    steps: list[dict[str, Any]],
    stdout: str = "",
    result: str | None = None,
    error: dict[str, Any] | None = None,
    wall_ms: float = 0.0,
    source: str = "real",
    method: str = "real",
    lm_calls: int | None = None,
    truncated: bool = False,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """A trace in the current schema. ``total_steps``: the steps the program made when more than the
    ``steps`` kept (the trace was capped in size: ``stats.capped``, ``stats.total_steps``)."""
    assert status in STATUSES
    stats: dict[str, Any] = {"steps": len(steps), "wall_ms": round(wall_ms, 2)}
    if lm_calls is not None:
        stats["lm_calls"] = lm_calls
    if truncated:  # the program ran on, untraced, past the recorded steps
        stats["truncated"] = True
    if total_steps is not None and total_steps > len(steps):  # steps past the size cap dropped
        stats["capped"] = True
        stats["total_steps"] = total_steps
    return {
        "schema": SCHEMA_VERSION,
        "source": source,
        "method": method,
        "status": status,
        "steps": steps,
        "stdout": stdout,
        "result": result,
        "error": error,
        "stats": stats,
    }


def raise_step(steps: list[Any]) -> int | None:
    """The index of the step where the exception that ended the run was raised (None when the
    run does not end with an exception leaving its last frame): back from the last ``unwind``
    through the frames it left, each entered by the callee's ``unwind`` just before its own
    ``exception`` step."""
    index = len(steps) - 1
    if index < 0 or not _is(steps[index], "unwind"):
        return None
    text = steps[index].get("exception")
    while True:
        func = steps[index].get("func")
        arrival = index - 1
        while arrival >= 0 and not (
            _is(steps[arrival], "exception")
            and steps[arrival].get("exception") == text
            and steps[arrival].get("func") == func
        ):
            arrival -= 1
        if arrival < 0:
            return None
        before = steps[arrival - 1] if arrival > 0 else None
        if type(before) is not dict or not _is(before, "unwind") or before.get("exception") != text:
            return arrival  # nothing unwound into this frame: it was raised here
        index = arrival - 1


def _is(step: Any, event: str) -> bool:
    return type(step) is dict and step.get("event") == event


def upgrade(trace: Any) -> Any:
    """A stored trace in the current schema (see "Versions" above); anything that is not a
    trace of an older version (a current trace, a part of one, garbage) comes back as it is.
    Pure and cheap: one pass over the steps, copying only the steps it changes."""
    if type(trace) is not dict:
        return trace
    if trace.get("schema") == 2:  # v3 only adds fields: the steps stay as they are
        return dict(trace, schema=SCHEMA_VERSION, upgraded_from=2)
    if trace.get("schema") != 1:
        return trace
    upgraded = dict(trace, schema=SCHEMA_VERSION, upgraded_from=1)
    steps = trace.get("steps")
    recorded = trace.get("source", "real") == "real" or trace.get("method") == "coc"
    if recorded and type(steps) is list:
        upgraded["steps"] = _v1_unwinds(steps)
    error = trace.get("error")
    if type(error) is dict:
        upgraded["error"] = _v1_error(error, trace.get("status"))
    return upgraded


_V1_STOPPED = re.compile(r"Stopped after ([0-9.]+) s of (wall-clock|CPU) time\.")


def _v1_error(error: dict[str, Any], status: Any) -> dict[str, Any]:
    """v1's limit messages repeated the status ("Stopped: time limit reached · Stopped after 5
    s..."), and a MemoryError had none: the words v2 uses."""
    message = error.get("message")
    if error.get("type") == "TimeLimit" and type(message) is str:
        found = _V1_STOPPED.fullmatch(message)
        if found is not None:
            seconds, clock = found.groups()
            verb = "ran for" if clock == "wall-clock" else "used"
            return dict(error, message=f"The program {verb} {seconds} s of {clock} time.")
    if error.get("type") == "MemoryError" and status == "memory_limit" and not message:
        return dict(error, message="out of memory")
    return error


def _v1_unwinds(steps: list[Any]) -> list[Any]:
    """v1 steps with each exception leaving a frame (a ``return`` of ``None`` right after an
    ``exception`` step of the same function) made an ``unwind``, its caller rebuilt from the
    call and return steps as the viewer does."""
    out: list[Any] = []
    stack: list[list[Any]] = []  # [func, the line it is at] per frame
    pop = False
    previous: Any = None
    for step in steps:
        if type(step) is not dict:
            out.append(step)
            continue
        if pop:
            pop = False
            if stack:
                stack.pop()
        event = step.get("event", "line")
        if event == "call" or not stack:
            stack.append([step.get("func"), step.get("line")])
        else:
            stack[-1][1] = step.get("line")
        if event == "exception" and _bare(step.get("exception")):
            step = dict(step, exception=step["exception"][:-2])
        elif event == "return":
            pop = True
            locals_ = step.get("locals")
            if (
                type(previous) is dict
                and previous.get("event") == "exception"
                and previous.get("func") == step.get("func")
                and type(locals_) is dict
                and locals_.get("__return__") == "None"
            ):
                step = _as_unwind(step, locals_, previous.get("exception"), stack)
        out.append(step)
        previous = step
    return out


def _as_unwind(
    step: dict[str, Any], locals_: dict[str, Any], exception: Any, stack: list[list[Any]]
) -> dict[str, Any]:
    unwind = {k: v for k, v in step.items() if k != "locals"}
    unwind["event"] = "unwind"
    rest = {k: v for k, v in locals_.items() if k != "__return__"}
    if rest:
        unwind["locals"] = rest
    unwind["exception"] = exception if type(exception) is str else ""
    # A generator being closed: its GeneratorExit ends in close(), it reaches no caller.
    caller = stack[-2] if len(stack) >= 2 else None
    if (
        unwind["exception"] != "GeneratorExit"
        and caller is not None
        and type(caller[0]) is str
        and type(caller[1]) is int
    ):
        unwind["to"], unwind["to_line"] = caller
    return unwind


def _bare(text: Any) -> bool:
    """A v1 exception text of an exception without a message: ``"Type: "``."""
    return type(text) is str and text.endswith(": ")
