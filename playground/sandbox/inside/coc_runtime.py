"""Chain of Code inside the sandbox (arXiv 2312.04474, the "LMulator").

The program runs once, traced as usual. When a statement raises an ``Exception`` that the program
itself would not catch, the run does not end: the runner sends the parent a request
(``{"lm": {...}}`` on the protocol descriptor, after the pending steps), the parent asks the
language model, and the answer (the ``repr`` of a dict the parent validated) is applied to the
frame's variables; execution goes on with the next statement. Imported only in coc mode (``ast``
and ``symtable`` cost start-up time); standard library only.

Left to Python: an exception a ``try`` of the program would catch (in the failing frame or a
caller's, the ``except`` types resolved without running user code; what cannot be resolved counts
as caught), ``StopIteration``, ``RecursionError`` and ``MemoryError``, and an exception the model
already declined (it propagates through the callers' statements without asking again). Class
bodies, lambdas and comprehensions are not rewritten: their failures surface at the statement
that contains them.

The program's AST is rewritten before compiling (coc_rewrite.py): a statement that raises calls
``Session.hook``, and a test, iterable or returned value is hoisted so that the model can answer
it.

Under a semantic rule (issue 21, semantics.py) both rewrites are composed, the rule's first: it
rewrites the program's own code (its nodes keep the user's lines), then Chain of Code wraps the
statements of that rewritten tree. So the lines Python runs run under the rule, the rule never
touches Chain of Code's scaffolding (``__coc_d__['x']`` stays a dict lookup under
index-from-one), and a line that raises under the rule (``x[0]`` under index-from-one) is
simulated like any other failing line. The rule's helpers (``semantics.helpers``) join the
globals. The model, which stands in for the lines Python could not run, is told the rule by the
parent (emulation/coc.py, the ``[RULE]`` block of its prompt): the sandbox sends it nothing more.

Fidelity: every generated node carries a line number past the end of the program (the
*scaffold* line). ``CocTracer`` records no line event there, gives other events there the frame's
last real line, and drops an event for the line it last reported when only scaffolding ran in
between and execution moved forward (CPython reports a line again after any other line; plain
code would not have). So a program none of whose lines fails has the same steps as in plain mode.
"""

from __future__ import annotations

import _thread
import ast
import sys

try:  # in the sandbox, where /runner is on sys.path
    import tracer as _tracer
    from saferepr import safe_repr
except ImportError:  # in the project (tests)
    from playground.sandbox.inside import tracer as _tracer
    from playground.sandbox.inside.saferepr import safe_repr

try:  # in the sandbox, where /runner is on sys.path
    from coc_rewrite import EXC, HIDDEN, LM, Rewrite  # type: ignore[import-not-found]
except ImportError:  # in the project (tests)
    from playground.sandbox.inside.coc_rewrite import EXC, HIDDEN, LM, Rewrite

try:  # in the sandbox, where /runner is on sys.path
    import semantics  # type: ignore[import-not-found]
except ImportError:  # in the project (tests)
    from playground.sandbox.inside import semantics

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

MAX_LOCALS = 200
# Exceptions that are control flow or resource exhaustion, never a line to simulate.
_NEVER = (StopIteration, StopAsyncIteration, RecursionError, MemoryError)
_UNKNOWN = object()
_MODULE = type(sys)


class Pause:
    """One paused line: the frame, the exception its statement raised, the line span, whether it
    is a statement or an expression, and the names it assigns (what the model must answer)."""

    __slots__ = ("end", "exc", "frame", "kind", "line", "targets")

    def __init__(
        self,
        frame: FrameType,
        exc: BaseException,
        line: int,
        end: int,
        kind: str,
        targets: tuple[str, ...],
    ) -> None:
        self.frame, self.exc, self.line, self.end = frame, exc, line, end
        self.kind, self.targets = kind, targets


class CocTracer(_tracer.Tracer):
    """The tracer of coc mode: the scaffolding is invisible (see the module's docstring), an
    exception step may be taken back, and each frame's last line step is known."""

    hold = "exception"  # never flush a batch that ends on one: the hook may take it back

    def __init__(self, *, scaffold: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scaffold = scaffold
        # frame -> [last real line, its f_lasti, whether scaffolding ran since]
        self.where: dict[FrameType, list[Any]] = {}
        self.line_steps: dict[FrameType, int] = {}
        self.last_frame: FrameType | None = None

    def local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        line = frame.f_lineno
        where = self.where.get(frame)
        if event == "line":
            if self.raised:
                self.ran_on(frame)  # scaffolding too: e.g. the handler that asks the model
            if line >= self.scaffold:
                if where is not None:
                    where[2] = True
                return self.local_trace
            lasti = frame.f_lasti
            if where is None:
                self.where[frame] = [line, lasti, False]
            elif where[2] and line == where[0] and lasti > where[1]:
                where[1], where[2] = lasti, False  # only scaffolding since: plain has no event
                return self.local_trace
            else:
                where[0], where[1], where[2] = line, lasti, False
            self._step(frame, "line", None, line)
            self.line_steps[frame] = self.count - 1
            return self.local_trace
        if line is None or line >= self.scaffold:
            line = where[0] if where is not None else frame.f_code.co_firstlineno
        if event == "return":
            self.leave(frame, arg, line)
            self.where.pop(frame, None)
            self.line_steps.pop(frame, None)
        elif event == "exception":
            self.exception(frame, arg, line)
        return self.local_trace

    def caller(self, frame: FrameType) -> tuple[str, int] | None:
        to = super().caller(frame)
        if to is not None and to[1] >= self.scaffold:  # the caller is in scaffolding
            where = self.where.get(frame.f_back)  # type: ignore[arg-type]
            to = (to[0], where[0] if where is not None else to[1])
        return to

    def _step(self, frame: FrameType, event: str, arg: Any, line: int = 0) -> None:
        super()._step(frame, event, arg, line)
        self.last_frame = frame

    def _changed(self, frame: FrameType) -> dict[str, str]:
        changed = super()._changed(frame)
        hidden = [name for name in changed if name.startswith(HIDDEN)]
        for name in hidden:
            del changed[name]
        if hidden:
            self.unshow(hidden)
        return changed

    def take_back(self, frame: FrameType) -> dict[str, Any] | None:
        """The exception step ``frame`` just produced, out of the batch (None if there is none)."""
        if self.batch and self.last_frame is frame and self.batch[-1].get("event") == "exception":
            return self.batch.pop()
        return None

    def drop(self, frame: FrameType, step: dict[str, Any]) -> None:
        """Forget a step taken back: what it printed and the changes it showed go to the next."""
        self.count -= 1
        printed = step.get("stdout")
        if printed:
            self.output.pending.insert(0, printed)
        snap = self.snapshots.get(frame)
        if snap is not None:
            for name in step.get("locals", ()):
                snap.pop(name, None)
        if self.heap is not None:
            self.heap.forget(step.get("heap", ()))


class Session:
    """One coc run: the rewrite, the tracer's settings and the hook the rewritten code calls.
    ``ask(request)`` sends a request to the parent and returns its reply ``(status, text)``:
    ``("ok", repr of a dict)``, ``("error", why)`` or ``("stop", why)`` (ask no more). ``rule``:
    a semantic rule's name (semantics.py) the program runs under, None for Python's own."""

    def __init__(
        self,
        source: str,
        ask: Callable[[dict[str, Any]], tuple[str, str]],
        rule: str | None = None,
    ) -> None:
        self.source = source
        self.ask = ask
        self.rule = rule or None
        self.scaffold = len(source.splitlines()) + 2  # past every line the compiler can count
        self.tracer: CocTracer | None = None
        self.tries: dict[Any, list[tuple[int, int, list[ast.expr | None]]]] = {}
        self.declined: list[tuple[BaseException, str]] = []  # left to propagate, and why
        self.stopped = False
        self.thread = _thread.get_ident()

    def make_tracer(self, **kwargs: Any) -> CocTracer:
        self.tracer = CocTracer(scaffold=self.scaffold, **kwargs)
        return self.tracer

    def compile(self) -> Any:
        """The program rewritten (the rule's rewrite first, if any, then Chain of Code's: see the
        module's docstring) and compiled, in the user's own lines."""
        tree = ast.parse(self.source, _tracer.PROGRAM)
        if self.rule is not None:
            semantics.rewrite(self.rule, tree)
        rewrite = Rewrite(self.source, self.scaffold)
        tree = rewrite.module(tree)
        self.tries = rewrite.tries
        return compile(tree, _tracer.PROGRAM, "exec", dont_inherit=True)

    def names(self) -> dict[str, Any]:
        """What the rewritten code needs in its globals (the rule's helpers too, under one)."""
        names: dict[str, Any] = semantics.helpers(self.rule) if self.rule is not None else {}
        names.update({LM: self.hook, EXC: Exception})
        return names

    def explain(self, exc: BaseException, error: dict[str, Any]) -> None:
        """Say in the final error why the model's answer was not used, when it was not."""
        for declined, why in self.declined:
            if declined is exc:
                error["message"] = f"{error['message']} ({why[:400]})"
                return

    # -- the hook ------------------------------------------------------------------------------

    def hook(
        self, exc: BaseException, line: int, end: int, kind: str, targets: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """Called by a rewritten statement that raised ``exc``: the model's answer (a dict), or
        None when the exception must go on (the statement then re-raises it)."""
        frame = sys._getframe(1)
        try:
            if (
                self.stopped
                or self.tracer is None
                or issubclass(type(exc), _NEVER)
                or _thread.get_ident() != self.thread
                or any(e is exc for e, _ in self.declined)
                or self._caught_by_program(frame, line, exc)
            ):
                return None
            return self._simulate(Pause(frame, exc, line, end, kind, targets))
        except Exception:  # e.g. too deep in recursion to even ask: Python's outcome stands
            return None

    def _simulate(self, pause: Pause) -> dict[str, Any] | None:
        tracer = self.tracer
        assert tracer is not None
        frame = pause.frame
        held = tracer.take_back(frame)
        try:
            answer = self._request(tracer, pause)
        except BaseException:
            if held is not None:
                tracer.batch.append(held)
            raise
        if answer is None:
            if held is not None:
                tracer.batch.append(held)  # Python's own outcome, as in plain mode
            return None
        if held is not None:
            tracer.drop(frame, held)
        if pause.kind == "statement" and frame.f_code.co_name == "<module>":
            frame.f_globals.update(
                {k: v for k, v in answer.items() if type(k) is str and not k.startswith("__")}
            )
        return answer

    def _request(self, tracer: CocTracer, pause: Pause) -> dict[str, Any] | None:
        """Ask the parent; the answer, or None (and why, in ``declined``)."""
        tracer.flush()  # the parent has every step before the pause
        frame, exc, kind = pause.frame, pause.exc, pause.kind
        request = {
            "line": pause.line,
            "end": pause.end,
            "func": frame.f_code.co_name,
            "locals": self._locals(frame),
            "error": f"{type(exc).__name__}: {_tracer._message(exc)}"[:1000],
            "kind": kind,
            "targets": list(pause.targets),
            "step": tracer.line_steps.get(frame, -1),
        }
        status, text = self.ask(request)
        answer: Any = None
        if status == "ok":
            try:
                answer = ast.literal_eval(text)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                status, text = "error", "the model's answer could not be read back"
            if type(answer) is not dict or (kind == "expression" and "__value__" not in answer):
                status, text = "error", "the model's answer could not be read back"
        if status != "ok":
            self.declined.append((exc, text))
            self.stopped = status == "stop"
            return None
        return answer

    def _locals(self, frame: FrameType) -> dict[str, str]:
        module_level = frame.f_code.co_name == "<module>"
        shown: dict[str, str] = {}
        for name, value in frame.f_locals.items():
            if type(name) is not str or name.startswith(HIDDEN):
                continue
            if module_level and (name.startswith("__") or type(value) is _MODULE):
                continue
            shown[name] = safe_repr(value)
            if len(shown) >= MAX_LOCALS:
                break
        return shown

    def _caught_by_program(self, frame: FrameType, line: int, exc: BaseException) -> bool:
        """Whether a ``try`` of the program (in this frame or a caller's) would catch ``exc``:
        then Python's semantics stand and the model is not asked."""
        mro = type(exc).__mro__
        f: FrameType | None = frame
        while f is not None:
            code = f.f_code
            if code.co_filename == _tracer.PROGRAM:
                key = (
                    "<module>"
                    if code.co_name == "<module>"
                    else (code.co_name, code.co_firstlineno)
                )
                for first, last, handlers in self.tries.get(key, ()):
                    if first <= line <= last and any(self._catches(h, f, mro) for h in handlers):
                        return True
            f = f.f_back
            if f is not None:
                line = f.f_lineno
        return False

    def _catches(self, handler: ast.expr | None, frame: FrameType, mro: tuple[type, ...]) -> bool:
        """Whether an ``except`` clause's type matches, resolved without running user code
        (what cannot be resolved so counts as a match: Python's semantics win then)."""
        if handler is None:
            return True
        if isinstance(handler, ast.Tuple):
            return any(self._catches(e, frame, mro) for e in handler.elts)
        value = self._resolve(handler, frame)
        if type(value) is tuple:
            return any(self._matches(v, mro) for v in value)
        return self._matches(value, mro)

    @staticmethod
    def _matches(value: Any, mro: tuple[type, ...]) -> bool:
        if value is _UNKNOWN or not issubclass(type(value), type):
            return True
        return any(c is value for c in mro)

    def _resolve(self, node: ast.expr, frame: FrameType) -> Any:
        if isinstance(node, ast.Name):
            for namespace in (frame.f_locals, frame.f_globals, frame.f_builtins):
                if type(namespace) is dict and node.id in namespace:
                    return namespace[node.id]
            return _UNKNOWN
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value, frame)
            if type(base) is _MODULE:
                return base.__dict__.get(node.attr, _UNKNOWN)
        return _UNKNOWN
