"""The step recorder: ``sys.settrace`` over the user's code only, one step per event.

A step is an event (``call``, ``line``, ``return``, ``exception``, ``unwind``) in a frame of the
user's program. Its ``locals`` are the variables of that frame whose values differ from the last
time the frame was observed (so a ``line`` step shows the state on arrival at the line, before it
runs, as Python Tutor does); its ``stdout`` is what was printed since the previous step. Values
are bounded reprs from ``saferepr`` (no user code runs). A step also carries the ids of the
shown names bound to containers or instances and the objects new or changed since last recorded
(``ids``, ``heap``: see heap.py). Standard library only: this runs inside the sandbox.

An exception that leaves a frame is an ``unwind`` step (which exception, and the caller it goes
to), never a return: ``sys.settrace`` reports both as "return" with the value None, and showing
that as "returned None" teaches the wrong thing (Python Tutor does). A return event is an unwind
when the frame's last event was an exception (nothing ran since, e.g. no ``except`` line), or
when the frame had an exception and is not stopped at a return or yield instruction (it leaves
from a ``finally`` that re-raises).

One file of about 580 lines (the heap recorder is its own module, heap.py): the trace callback
(``Tracer``, which Chain of Code's ``coc_runtime.CocTracer`` subclasses), the output capture and
limits it checks on every event, and the ``Execution`` around them are one unit, and the runner
imports this module on every run's critical path inside the sandbox, where each extra module is
one more import from the zip.
"""

from __future__ import annotations

import sys
from io import StringIO  # loaded at start-up already (sys.stdout is built on it)

try:  # in the sandbox, where /runner is on sys.path
    from heap import Heap, item_texts, untracked_built_in
    from saferepr import IMMUTABLE_TYPES, MAX_CHARS, MAX_ITEMS, flat_ids, flat_items, safe_repr
except ImportError:  # in the project (tests, benchmarks)
    from playground.sandbox.inside.heap import Heap, item_texts, untracked_built_in
    from playground.sandbox.inside.saferepr import (
        IMMUTABLE_TYPES,
        MAX_CHARS,
        MAX_ITEMS,
        flat_ids,
        flat_items,
        safe_repr,
    )

TYPE_CHECKING = False  # typing and collections.abc cost milliseconds of start-up in the sandbox
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any, Protocol

    class CocSession(Protocol):
        """What a Chain of Code run adds to an execution (coc_runtime.Session, which the runner
        picks): its own tracer, the rewritten program, the names that code needs, and why a
        failure was not simulated."""

        def make_tracer(self, **kwargs: Any) -> Tracer: ...
        def compile(self) -> Any: ...
        def names(self) -> dict[str, Any]: ...
        def explain(self, exc: BaseException, error: dict[str, Any]) -> None: ...


PROGRAM = "<program>"
BATCH = 200  # steps per emitted batch: streamed so a killed run still has its partial trace
# ...or fewer once a batch holds about this many characters: one emitted line stays far below
# the parent's cap (4 MB, protocol.py) even when every character is escaped to 12 bytes.
BATCH_CHARS = 64_000


def _normal_exit_ops() -> frozenset[int]:
    """The opcodes a frame is stopped at when it returns or yields, as this interpreter reports
    them at a "return" event (RETURN_VALUE, YIELD_VALUE, RETURN_CONST...). Observed once with a
    probe rather than looked up in ``opcode``, whose import costs start-up time in the sandbox."""
    seen: set[int] = set()

    def probe(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return":
            seen.add(frame.f_code.co_code[frame.f_lasti])
        return probe

    def generator() -> Any:
        yield 1

    def value(x: int) -> int:
        return x

    def constant() -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(probe)
    try:
        list(generator())
        value(1)
        constant()
    finally:
        sys.settrace(previous)
    return frozenset(seen)


_NORMAL_EXIT = _normal_exit_ops()
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR, CO_COROUTINE, CO_ASYNC_GENERATOR
_UNREAD = object()  # flat_items not asked yet
_MODULE = type(sys)  # compared by identity: a user class's __name__ may go through a metaclass
# In a frame's snapshot, in place of the item ids: the value is an immutable scalar, so while
# the name is bound to the same object its repr cannot have changed.
_SCALAR = ("scalar",)


class LimitReached(BaseException):
    """Raised (in-process mode) when a limit stops the program; carries the status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class Output:
    """Replacement for ``sys.stdout``: keeps what was printed since the last step, capped."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, limit: int, on_limit: Callable[[str], None]) -> None:
        self.limit = limit
        self.total = 0
        self.pending: list[str] = []
        self.everything: list[str] = []
        self.on_limit = on_limit

    def write(self, text: str) -> int:
        if type(text) is not str:
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.total += len(text.encode("utf-8", "surrogatepass"))
        if self.total > self.limit:
            keep = max(0, self.limit - (self.total - len(text)))
            self.pending.append(text[:keep])
            self.everything.append(text[:keep])
            self.on_limit("output_limit")
        self.pending.append(text)
        self.everything.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def take(self) -> str:
        if not self.pending:
            return ""
        text = "".join(self.pending)
        self.pending.clear()
        return text

    def text(self) -> str:
        return "".join(self.everything)


class Tracer:
    """Records steps of code compiled with filename ``<program>``."""

    hold: str | None = None  # an event a batch must not end on (coc mode takes such a step back)
    identity = True  # record ids and the heap (heap.py); off only to benchmark the cost

    def __init__(
        self,
        *,
        max_steps: int,
        output: Output,
        emit: Callable[[list[dict[str, Any]]], None],
        on_limit: Callable[[str], None],
    ) -> None:
        self.max_steps = max_steps
        self.output = output
        self.emit = emit
        self.on_limit = on_limit
        self.count = 0
        self.keep_running = False
        self.truncated = False
        self.batch: list[dict[str, Any]] = []
        self.batch_chars = 0
        # frame -> name -> (value, its repr, flat_items of it (held), their ids or _SCALAR): see
        # _changed
        self.snapshots: dict[FrameType, dict[str, tuple[Any, str, Any, Any]]] = {}
        # frame -> [the last exception seen in it ("Type: message"), whether nothing ran since,
        # whether it closes a generator]
        self.raised: dict[FrameType, list[Any]] = {}
        # This step's changed names bound to objects: (name, value, its flat_items, the items'
        # texts, their ids; each None where not made)
        self.objects: list[tuple[str, Any, Any, Any, Any]] = []
        self.heap: Heap | None = None  # made by _heap_for on the first value that may need it

    # sys.settrace entry point: decide per new frame whether it is the user's.
    def global_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != PROGRAM:
            return None
        self._step(frame, "call", None)
        return self.local_trace

    def local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self.truncated:
            return None  # recording is over: this frame runs untraced from now on
        if event == "line":
            if self.raised:
                self.ran_on(frame)
            self._step(frame, "line", None)
        elif event == "return":
            self.leave(frame, arg)
        elif event == "exception":
            self.exception(frame, arg)
        return self.local_trace

    def ran_on(self, frame: FrameType) -> None:
        """A line of ``frame`` runs: an exception seen in it before was handled (or is in a
        ``finally`` that may re-raise it)."""
        seen = self.raised.get(frame)
        if seen is not None:
            seen[1] = False

    def exception(self, frame: FrameType, arg: Any, line: int = 0) -> None:
        """An exception is raised in ``frame``, or arrives in it from a callee."""
        text = exception_text(arg[0], arg[1])
        # A generator being closed (its frame gets GeneratorExit): the exception ends there,
        # in close(); it never reaches the frame that closed it.
        closed = arg[0] is GeneratorExit and frame.f_code.co_flags & _GENERATOR_FLAGS
        self.raised[frame] = [text, True, bool(closed)]
        self._step(frame, "exception", text, line)

    def leave(self, frame: FrameType, arg: Any, line: int = 0) -> None:
        """``frame`` is left: a return (or a yield), or an exception unwinding it."""
        seen = self.raised.pop(frame, None) if self.raised else None
        if seen is not None and (seen[1] or not _stopped_at_exit(frame)):
            self._step(frame, "unwind", (seen[0], not seen[2]), line)
        else:
            self._step(frame, "return", arg, line)
        snap = self.snapshots.pop(frame, None)
        if snap is not None and self.heap is not None:
            held, suspects = self.heap.held, self.heap.suspects
            for shown in snap.values():  # the frame's objects: let go once the frame is gone
                if id(shown[0]) in held:  # maybe held by the recorder alone once it is gone
                    suspects.append(id(shown[0]))

    def caller(self, frame: FrameType) -> tuple[str, int] | None:
        """Where an exception unwinding ``frame`` goes: its caller's function and line, when
        the caller is the program's code (None: it leaves the program)."""
        back = frame.f_back
        if back is None or back.f_code.co_filename != PROGRAM:
            return None
        return back.f_code.co_name, back.f_lineno or back.f_code.co_firstlineno

    def _changed(self, frame: FrameType) -> dict[str, str]:
        """The frame's names whose value changed since its last step, with their reprs. On the
        critical path of every step: an immutable scalar still bound to the same object, or a
        small container of scalars still holding the same objects (``flat_items``), is not
        rendered again."""
        snap = self.snapshots.get(frame)
        if snap is None:
            snap = self.snapshots[frame] = {}
        changed: dict[str, str] = {}
        heap = self.heap
        if heap is not None and heap.suspects:
            heap.release_suspects()  # a frame left at the last step is gone by now
        get = snap.get
        for name, value in frame.f_locals.items():
            prev = get(name)
            if prev is None:
                # A new name (rare): the module's dunders and imported modules are not shown.
                if frame.f_code.co_name == "<module>" and (
                    name.startswith("__") or type(value) is _MODULE
                ):
                    continue
            elif prev[0] is value:
                ids = prev[3]
                if ids is _SCALAR:
                    continue
                # flat_ids, inline for a list (the commonest): the same exact built-in as when
                # flat_items took it, so iterating it runs no user code.
                if ids is not None and ids == (
                    tuple(map(id, value)) if type(value) is list else flat_ids(value)
                ):
                    continue
            vt = type(value)
            texts = None  # the items' texts for the heap, when made here
            if (vt is list or vt is dict) and self.identity:
                # A list or dict of scalars: its repr is made from the texts its heap entry
                # needs, where it would otherwise be rendered twice (items checked once).
                items = flat_items(value)
                text = None
                if items is not None:
                    texts, exact = item_texts(items)
                    if exact:
                        text = _joined(vt, texts)
                if text is None:
                    text = safe_repr(value)
            else:
                items = _UNREAD
                text = safe_repr(value)
            if (
                heap is not None
                and prev is not None
                and prev[0] is not value
                and id(prev[0]) in heap.held  # the name's old object: maybe no one else has it
            ):
                heap.suspects.append(id(prev[0]))  # released after the step if ours alone
            if id(vt) in IMMUTABLE_TYPES:
                if prev is None or prev[1] != text:
                    changed[name] = text
                snap[name] = (value, text, None, _SCALAR)
                continue
            # A name rebound to another object with the same repr is shown too: its id differs.
            if heap is None:
                heap = self._heap_for(value)
            if heap is None:
                tracked = False
            else:  # heap.tracked, inline: its cache first
                known = heap.types.get(id(vt))
                tracked = (known[1] if known is not None else heap.kind(value)) is not None
            if items is _UNREAD:
                items = flat_items(value)
            item_ids = None if items is None else tuple(map(id, items))
            if prev is None or prev[1] != text or (tracked and prev[0] is not value):
                changed[name] = text
                if tracked:
                    self.objects.append((name, value, items, texts, item_ids))
            snap[name] = (value, text, items, item_ids)
        return changed

    def _step(self, frame: FrameType, event: str, arg: Any, line: int = 0) -> None:
        """Records one step. On the critical path of every event: attributes read once into
        locals, and a line step (most of them) skips the other events' fields."""
        count = self.count = self.count + 1
        if count > self.max_steps:
            if self.keep_running:
                self.count, self.truncated = self.max_steps, True
                sys.settrace(None)
                return
            self.on_limit("step_limit")
        code = frame.f_code
        func = code.co_name
        # Fields at their default are left out (see schema.py): most steps change nothing and
        # print nothing, and the envelope would otherwise be most of a trace's size.
        step: dict[str, Any] = {
            "i": count - 1,
            "line": line or frame.f_lineno or code.co_firstlineno,
            "func": func,
        }
        if event != "line":
            step["event"] = event
        size = 40 + len(func)
        changed = self._changed(frame)
        heap = self.heap
        if event == "return":
            changed["__return__"] = safe_repr(arg)
            if arg is not None and heap is None:
                heap = self._heap_for(arg)
            if arg is not None and heap is not None and heap.tracked(arg):
                self.objects.append(("__return__", arg, None, None, None))
        if changed:
            step["locals"] = changed
            for name, text in changed.items():
                size += len(name) + len(text) + 6
            if self.objects:
                size += self._identity(step, frame, changed, arg if event == "return" else None)
        if heap is not None and heap.suspects:
            # An object a name or a container let go of dies now if the recorder was all that
            # held it, as it did in the program: before this step's line runs, so a finalizer's
            # output lands in this step, where the program's would be.
            heap.release_suspects()
        output = self.output
        if output.pending:
            printed = output.take()
            if printed:
                step["stdout"] = printed
                size += len(printed)
        if event == "exception":
            step["exception"] = arg
            size += len(arg)
        elif event == "unwind":
            step["exception"], goes_on = arg
            size += len(arg[0])
            to = self.caller(frame) if goes_on else None
            if to is not None:
                step["to"], step["to_line"] = to
                size += len(to[0]) + 24
        batch = self.batch
        batch.append(step)
        self.batch_chars += size
        if (len(batch) >= BATCH or self.batch_chars >= BATCH_CHARS) and event != self.hold:
            self.flush()

    def _heap_for(self, value: Any) -> Heap | None:
        """The heap, made for the first value that may be an object it records (with identity
        on): a run that binds only scalars, strings and functions never makes one."""
        if self.identity and not untracked_built_in(value):
            self.heap = Heap()
        return self.heap

    def unshow(self, names: list[str]) -> None:
        """Names a subclass's ``_changed`` took out of a step: no id for them either."""
        if self.objects:
            self.objects = [shown for shown in self.objects if shown[0] not in names]

    def _identity(
        self, step: dict[str, Any], frame: FrameType, changed: dict[str, str], returned: Any
    ) -> int:
        """Adds ``ids`` and ``heap`` (see heap.py) for the objects among the names ``step``
        shows (``self.objects``, gathered by _changed); their size."""
        assert self.heap is not None
        objects = self.objects
        self.objects = []
        ids, delta = self.heap.record(objects)
        # Their size, an upper bound of the characters before escaping: the names are counted
        # with the step's locals; the heap counts its entries' as it makes them (a repr of the
        # delta here cost about as much as the walk).
        size = 0
        if ids:
            step["ids"] = ids
            size += 16 * len(ids) + 8
        if delta:
            step["heap"] = delta
            size += self.heap.chars + 8
        return size

    def flush(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            self.batch_chars = 0
            self.emit(batch)

    def start(self) -> None:
        sys.settrace(self.global_trace)

    def stop(self) -> None:
        sys.settrace(None)


def _semantics() -> Any:
    try:  # in the sandbox, where /runner is on sys.path
        import semantics  # type: ignore[import-not-found]
    except ImportError:  # in the project (tests)
        from playground.sandbox.inside import semantics
    return semantics


def _joined(t: Any, texts: list[str]) -> str | None:
    """The repr of an exact list or dict whose items' reprs are ``texts`` (a dict's keys, then
    its values), exactly as ``safe_repr`` gives it: within its item count and length limits
    (MAX_ITEMS, MAX_CHARS), where its fast path is this same C repr; None past them."""
    if t is list:
        if len(texts) > MAX_ITEMS:
            return None
        text = "[" + ", ".join(texts) + "]"
    else:
        n = len(texts) // 2
        if n > MAX_ITEMS:
            return None
        text = "{" + ", ".join(map(": ".join, zip(texts[:n], texts[n:], strict=True))) + "}"
    return text if len(text) <= MAX_CHARS else None


def _stopped_at_exit(frame: FrameType) -> bool:
    """Whether ``frame`` is stopped at a return or yield instruction (a "return" event there is
    a real return; elsewhere the frame is being unwound by an exception)."""
    code = frame.f_code.co_code
    lasti = frame.f_lasti
    return 0 <= lasti < len(code) and code[lasti] in _NORMAL_EXIT


def exception_text(kind: type, exc: BaseException) -> str:
    """``"Type: message"``, or the type alone for an exception without a message."""
    message = _message(exc)
    return f"{kind.__name__}: {message}" if message else kind.__name__


def _message(exc: BaseException) -> str:
    """The exception's message without calling a user-defined ``__str__``."""
    kind = type(exc)
    if kind.__module__ == "builtins":  # a built-in exception: its __str__ is C code
        return kind.__str__(exc)[:1000]
    args = BaseException.__getattribute__(exc, "args")
    if type(args) is tuple and len(args) == 1 and type(args[0]) is str:
        return args[0][:1000]
    if type(args) is tuple and not args:
        return ""
    return safe_repr(args, 1000)


def error_info(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message", "line"}`` of an exception, the line in the user's program."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == PROGRAM:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == PROGRAM:
        line = exc.lineno
    return {"type": type(exc).__name__, "message": _message(exc), "line": line}


class Execution:
    """One traced run of ``source`` then ``call``. ``finish`` receives the final record: on normal
    completion from ``run``, or on a limit from inside the program (``limit``), after which the
    runner exits the process and the in-process mode raises ``LimitReached``.

    With ``coc`` (a coc_runtime.Session, chosen by the runner) the run is in Chain of Code
    mode: a line that fails is sent to the parent and its language model instead of ending the
    run; the session compiles the program, under its own rule if it has one (the runner gives
    it the request's). This module never imports coc_runtime, which builds on it."""

    def __init__(
        self,
        source: str,
        call: str | None,
        *,
        max_steps: int,
        max_stdout: int,
        emit: Callable[[list[dict[str, Any]]], None],
        finish: Callable[[dict[str, Any]], None],
        stdin: str = "",
        coc: CocSession | None = None,
        rule: str | None = None,
    ) -> None:
        self.source, self.call, self.stdin = source, call, stdin
        self.rule = rule
        self.finish = finish
        self.output = Output(max_stdout, self.limit)
        self.coc = coc
        if coc is None:
            self.tracer = Tracer(
                max_steps=max_steps, output=self.output, emit=emit, on_limit=self.limit
            )
        else:
            self.tracer = coc.make_tracer(
                max_steps=max_steps, output=self.output, emit=emit, on_limit=self.limit
            )
        self.done = False

    def _final(
        self, status: str, result: str | None, error: dict[str, Any] | None
    ) -> dict[str, Any]:
        self.tracer.flush()
        return {
            "status": status,
            "result": result,
            "error": error,
            "stdout": self.output.text(),
            "steps": self.tracer.count,
            "truncated": self.tracer.truncated,
        }

    def limit(self, status: str, error: dict[str, Any] | None = None) -> None:
        """A limit was reached while the program runs: stop tracing and report what exists."""
        if self.done:
            raise LimitReached(status)
        self.done = True
        self.tracer.stop()
        self.finish(self._final(status, None, error))
        raise LimitReached(status)

    def run(self) -> None:
        status, result, error = "ok", None, None
        saved = sys.stdout, sys.stdin
        sys.stdout = self.output
        sys.stdin = StringIO(self.stdin)
        globals_: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            if self.coc is not None:  # Chain of Code: its session applies its rule too
                code = self.coc.compile()
                globals_.update(self.coc.names())
            elif self.rule:  # counterfactual semantics (semantics.py): imported only then
                semantics = _semantics()
                code = semantics.compile_under(self.rule, self.source, PROGRAM)
                globals_.update(semantics.helpers(self.rule))
            else:
                code = compile(self.source, PROGRAM, "exec", dont_inherit=True)
            call_code = (
                compile(self.call, "<call>", "eval", dont_inherit=True) if self.call else None
            )
            self.tracer.start()
            try:
                exec(code, globals_)  # noqa: S102 - running the program is the point
                if call_code is not None:
                    result = safe_repr(eval(call_code, globals_), 10_000, 5_000)  # noqa: S307
            finally:
                self.tracer.stop()
        except LimitReached:
            raise
        except MemoryError as exc:
            status, error = "memory_limit", error_info(exc)
        except BaseException as exc:
            status, error = "exception", error_info(exc)
            if self.coc is not None:
                self.coc.explain(exc, error)
        finally:
            sys.stdout, sys.stdin = saved
        if not self.done:
            self.done = True
            self.finish(self._final(status, result, error))
