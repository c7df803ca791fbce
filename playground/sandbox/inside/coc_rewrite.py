"""Chain of Code's rewrite of the program's AST, before it is compiled (see coc_runtime.py).

Pure (``ast`` and ``symtable`` only, no frame, no tracer state): its own file so that the
rewrite can be read and tested apart from the runtime that runs the rewritten code. Under a
semantic rule it rewrites the tree the rule's rewrite already made (coc_runtime.Session.compile),
whose statements keep the user's lines; ``_targets`` looks through the rule's wrappers.

The program's AST is rewritten before compiling, the user's nodes keeping their positions:

- a simple statement ``S`` becomes ``try: S`` / ``except __coc_E__ as __coc_e__:
  __coc_d__ = __coc_lm__(...)``; ``if __coc_d__ is None: raise`` (the original exception, as if
  nothing had caught it); then ``if 'x' in __coc_d__: x = __coc_d__['x']`` for each local of the
  function (writes to ``locals()`` do not reach a function's frame; at module level the hook
  updates the globals itself);
- the test of an ``if``/``elif``/``while``, the iterable of a ``for`` and the value of a
  ``return`` are hoisted into a temporary ``__coc_tN__`` computed the same way (the model answers
  ``{"__value__": v}``). A test is hoisted as ``True if <test> else False``, which CPython
  compiles exactly like the ``if`` itself. ``while`` is rewritten the way CPython compiles it
  (test, then ``while True: body; test; if not t: break``), or test-first when its body has a
  ``continue``; ``while ... else`` keeps its header.
"""

from __future__ import annotations

import ast

try:  # in the sandbox, where /runner is on sys.path
    import tracer as _tracer
    from semantics import helper_name  # type: ignore[import-not-found]
except ImportError:  # in the project (tests)
    from playground.sandbox.inside import tracer as _tracer
    from playground.sandbox.inside.semantics import helper_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HIDDEN = "__coc"  # every name the rewrite adds starts so; the tracer never shows them
LM, EXC, E, D = "__coc_lm__", "__coc_E__", "__coc_e__", "__coc_d__"  # dunder: never mangled
_SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Assert, ast.Delete)
# What a semantic rule wraps an assignment target's object in (``x[1] = v`` becomes
# ``__sem_seq__(x)[1] = v`` under index-from-one, ``o.a += v`` ``__sem_target__(o).a += v``
# under swap-add-sub): the statement still assigns to ``x``, ``o``.
_RULE_WRAPPERS = frozenset({helper_name("seq"), helper_name("target")})


def _function_locals(source: str) -> dict[tuple[str, int], tuple[list[str], set[str]]]:
    """(name, def line) of each function -> (the names it can assign, those declared
    global/nonlocal), names as the compiler sees them (mangled in classes)."""
    import symtable

    found: dict[tuple[str, int], tuple[list[str], set[str]]] = {}

    def walk(table: Any) -> None:
        for child in table.get_children():
            if child.get_type() == "function":
                names: list[str] = []
                declared: set[str] = set()
                for symbol in child.get_symbols():
                    name = symbol.get_name()
                    if not name.isidentifier() or name.startswith(HIDDEN):
                        continue
                    if symbol.is_declared_global() or symbol.is_nonlocal():
                        declared.add(name)
                        names.append(name)
                    elif symbol.is_local():
                        names.append(name)
                found.setdefault((child.get_name(), child.get_lineno()), (names, declared))
            walk(child)

    walk(symtable.symtable(source, _tracer.PROGRAM, "exec"))
    return found


class _Scope:
    """Where statements are being rewritten: module, function (``names``) or class (no rewrite)."""

    def __init__(
        self,
        key: Any,
        *,
        wrap: bool,
        names: list[str] | None = None,
        declared: set[str] | None = None,
    ) -> None:
        self.key = key  # what the frame's code gives: "<module>" or (co_name, co_firstlineno)
        self.wrap = wrap
        self.names = names  # None at module level: the hook updates the globals
        self.declared = declared or set()
        self.passed: set[str] = set()  # declarations already passed (assigning earlier is an error)

    def assignable(self) -> list[str]:
        if self.names is None:
            return []
        return [n for n in self.names if n not in self.declared or n in self.passed]


def _place(node: ast.AST, line: int, end: int | None = None) -> None:
    """Give the generated nodes in ``node`` (those without a position) ``line``."""
    for n in ast.walk(node):
        if isinstance(n, (ast.expr, ast.stmt, ast.excepthandler)) and (
            getattr(n, "lineno", None) is None
        ):
            n.lineno, n.end_lineno, n.col_offset, n.end_col_offset = line, end or line, 0, 0


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _store(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Store())


def _targets(node: ast.stmt) -> list[str]:
    """Names a statement assigns (the object's name for ``d[k] = ...`` or ``o.a = ...``)."""
    if isinstance(node, (ast.Assign, ast.Delete)):
        roots: list[ast.expr] = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        roots = [node.target]
    else:
        return []
    names: list[str] = []
    while roots:
        target = roots.pop(0)
        if isinstance(target, ast.Name):
            if target.id not in names:
                names.append(target.id)
        elif isinstance(target, ast.Starred):
            roots.insert(0, target.value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            roots[:0] = target.elts
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            roots.insert(0, target.value)
        elif (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id in _RULE_WRAPPERS
            and target.args
        ):
            roots.insert(0, target.args[0])
    return names[:50]


def _has_continue(body: list[ast.stmt]) -> bool:
    """Whether ``continue`` in ``body`` belongs to the loop around it (not to a nested one)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Continue):
            return True
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            stack.extend(node.orelse)  # a loop's else belongs to the outer loop
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.expr)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


class Rewrite:
    def __init__(self, source: str, scaffold: int) -> None:
        self.scaffold = scaffold
        self.functions = _function_locals(source)
        # scope key -> (first line, last line, handler types) of each try body with handlers
        self.tries: dict[Any, list[tuple[int, int, list[ast.expr | None]]]] = {}
        self.temps = 0

    def module(self, tree: ast.Module) -> ast.Module:
        tree.body = self.block(tree.body, _Scope("<module>", wrap=True))
        return tree

    def block(self, body: list[ast.stmt], scope: _Scope) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for node in body:
            out.extend(self.stmt(node, scope))
        return out

    def _ask(self, line: int, end: int, kind: str, targets: list[str]) -> list[ast.stmt]:
        """The handler's first statements: ask, and re-raise if the model did not answer."""
        call = ast.Call(
            func=_load(LM),
            args=[
                _load(E),
                ast.Constant(line),
                ast.Constant(end),
                ast.Constant(kind),
                ast.Tuple(elts=[ast.Constant(t) for t in targets], ctx=ast.Load()),
            ],
            keywords=[],
        )
        declined = ast.Compare(left=_load(D), ops=[ast.Is()], comparators=[ast.Constant(None)])
        return [
            ast.Assign(targets=[_store(D)], value=call),
            ast.If(test=declined, body=[ast.Raise()], orelse=[]),
        ]

    def _try(self, body: list[ast.stmt], handler: list[ast.stmt]) -> ast.Try:
        node = ast.Try(
            body=body,
            handlers=[ast.ExceptHandler(type=_load(EXC), name=E, body=handler)],
            orelse=[],
            finalbody=[],
        )
        _place(node, self.scaffold)
        return node

    def wrap(self, node: ast.stmt, scope: _Scope) -> ast.stmt:
        handler = self._ask(
            node.lineno, node.end_lineno or node.lineno, "statement", _targets(node)
        )
        for name in scope.assignable():
            handler.append(
                ast.If(
                    test=ast.Compare(
                        left=ast.Constant(name), ops=[ast.In()], comparators=[_load(D)]
                    ),
                    body=[
                        ast.Assign(
                            targets=[_store(name)],
                            value=ast.Subscript(
                                value=_load(D), slice=ast.Constant(name), ctx=ast.Load()
                            ),
                        )
                    ],
                    orelse=[],
                )
            )
        return self._try([node], handler)

    def hoist(self, value: ast.expr, at: int | None = None) -> tuple[ast.stmt, ast.Name]:
        """``try: t = value`` (the model supplies ``t`` if it fails) and a load of ``t``. With
        ``at`` (a test), the value is ``True if value else False`` placed at line ``at``, so its
        jumps are compiled, and traced, as those of the statement's own test."""
        self.temps += 1
        name = f"{HIDDEN}_t{self.temps}__"
        line, end = value.lineno, value.end_lineno or value.lineno
        if at is not None:
            yes, no = ast.Constant(True), ast.Constant(False)
            _place(yes, self.scaffold)
            _place(no, self.scaffold)
            value = ast.IfExp(test=value, body=yes, orelse=no)
            _place(value, at, end)
        answer = ast.Subscript(value=_load(D), slice=ast.Constant("__value__"), ctx=ast.Load())
        handler = [
            *self._ask(line, end, "expression", []),
            ast.Assign(targets=[_store(name)], value=answer),
        ]
        node = self._try([ast.Assign(targets=[_store(name)], value=value)], handler)
        load = _load(name)
        _place(load, self.scaffold)
        return node, load

    def stmt(self, node: ast.stmt, scope: _Scope) -> list[ast.stmt]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            if isinstance(node, ast.ClassDef):  # a class body runs once, not rewritten
                inner = _Scope((node.name, first), wrap=False)
            else:
                names, declared = self.functions.get((node.name, node.lineno), ([], set()))
                inner = _Scope((node.name, first), wrap=True, names=names, declared=declared)
            node.body = self.block(node.body, inner)
            return [node]
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            scope.passed.update(node.names)
            return [node]
        if isinstance(node, (ast.Try, ast.TryStar)):
            if node.handlers and node.body:
                end = max(s.end_lineno or s.lineno for s in node.body)
                types = [h.type for h in node.handlers]
                self.tries.setdefault(scope.key, []).append((node.body[0].lineno, end, types))
            node.body = self.block(node.body, scope)
            for h in node.handlers:
                h.body = self.block(h.body, scope)
            node.orelse = self.block(node.orelse, scope)
            node.finalbody = self.block(node.finalbody, scope)
            return [node]
        if isinstance(node, (ast.With, ast.AsyncWith, ast.AsyncFor)):
            node.body = self.block(node.body, scope)
            if isinstance(node, ast.AsyncFor):
                node.orelse = self.block(node.orelse, scope)
            return [node]
        if isinstance(node, ast.Match):
            for case in node.cases:
                case.body = self.block(case.body, scope)
            return [node]
        if isinstance(node, ast.If):
            pre: list[ast.stmt] = []
            if scope.wrap:  # before the bodies: a declaration in them must come after the ask
                hoisted, node.test = self.hoist(node.test, at=node.lineno)
                pre = [hoisted]
                for attr in ("lineno", "end_lineno", "col_offset", "end_col_offset"):
                    delattr(node, attr)
                _place(node, self.scaffold)  # its one jump is scaffolding now
            node.body = self.block(node.body, scope)
            node.orelse = self.block(node.orelse, scope)
            return [*pre, node]
        if isinstance(node, ast.For):
            pre = []
            if scope.wrap:
                hoisted, node.iter = self.hoist(_as_iterable(node.iter))
                pre = [hoisted]
            node.body = self.block(node.body, scope)
            node.orelse = self.block(node.orelse, scope)
            return [*pre, node]
        if isinstance(node, ast.While):
            if not scope.wrap or node.orelse:
                node.body = self.block(node.body, scope)
                node.orelse = self.block(node.orelse, scope)
                return [node]
            return self.loop(node, scope)
        if isinstance(node, ast.Return):
            if not scope.wrap or node.value is None:
                return [node]
            hoisted, load = self.hoist(node.value)
            load.lineno = load.end_lineno = node.lineno
            node.value = load
            return [hoisted, node]
        if not scope.wrap:
            return [node]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return [node]  # a docstring or a bare constant: nothing to fail, no code
        if isinstance(node, ast.AnnAssign) and node.value is None:
            return [node]
        if isinstance(node, _SIMPLE):
            return [self.wrap(node, scope)]
        return [node]  # raise, pass, break, continue, import...

    def loop(self, node: ast.While, scope: _Scope) -> list[ast.stmt]:
        """``while test: body`` as CPython compiles it: the test, then a loop whose body ends
        with the test again (so a one-line loop reports its line as often as in plain mode).
        With a ``continue`` (which must re-test), the test comes first in the loop instead."""
        line = node.lineno
        first, first_load = self.hoist(node.test, at=line)
        body = self.block(node.body, scope)
        if _has_continue(node.body):
            stop = ast.If(
                test=ast.UnaryOp(op=ast.Not(), operand=first_load), body=[ast.Break()], orelse=[]
            )
            loop = ast.While(test=ast.Constant(True), body=[first, stop, *body], orelse=[])
            _place(loop, self.scaffold)
            return [loop]
        again, again_load = self.hoist(ast.fix_missing_locations(_copy(node.test)), at=line)
        stop = ast.If(
            test=ast.UnaryOp(op=ast.Not(), operand=again_load), body=[ast.Break()], orelse=[]
        )
        loop = ast.While(test=ast.Constant(True), body=[*body, again, stop], orelse=[])
        enter = ast.If(test=first_load, body=[loop], orelse=[])
        _place(enter, self.scaffold)
        return [first, enter]


def _as_iterable(node: ast.expr) -> ast.expr:
    """What CPython's AST optimizer makes of a ``for`` loop's list or set display (a tuple, a
    constant frozenset), which it no longer does once the display is hoisted out of the loop."""
    if isinstance(node, ast.List) and not any(isinstance(e, ast.Starred) for e in node.elts):
        return ast.copy_location(ast.Tuple(elts=node.elts, ctx=ast.Load()), node)
    if isinstance(node, ast.Set) and all(isinstance(e, ast.Constant) for e in node.elts):
        values: Any = frozenset(e.value for e in node.elts if isinstance(e, ast.Constant))
        return ast.copy_location(ast.Constant(values), node)
    return node


def _copy(node: ast.expr) -> ast.expr:
    """A deep copy of an expression, positions included (the test is compiled twice)."""
    import copy

    return copy.deepcopy(node)
