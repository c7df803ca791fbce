"""Counterfactual Python: the catalogue of semantic rules, and the rewrite that runs a program
under one (issue 21).

A rule changes what some of Python's syntax means, e.g. ``+`` subtracts. The program's AST is
rewritten and compiled **inside the sandbox** by the runner (``Execution(rule=...)``): the
user's nodes keep their positions, so the trace is in the user's own lines, with no source
regenerated and no prelude. What a rule needs at run time is a helper function the runner puts
in the program's globals under a reserved dunder name (``__sem_*__``); the tracer never shows a
module-level dunder, and helpers live in this file, not in ``<program>``, so they make no steps.
The host imports this module too, only to parse (``sites``, ``offered``): nothing of a rewritten
program runs outside the sandbox.

Common to every rule: it applies to the program's own code as written (nested functions,
lambdas, comprehensions, class bodies, default values), not to the call expression (an item's
input), annotations, ``match`` patterns, code built at run time (``eval``, ``exec``), imported
modules or built-ins (``sorted``, ``min``, ``sum``, ``in``... keep their usual meaning).
"""

from __future__ import annotations

import ast
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PREFIX = "__sem_"  # every name the rewrite adds: module-level dunders, never shown nor mangled
_NUMBERS = (int, float, complex)  # bool too (a subclass of int)
_SEQUENCES = (list, tuple, str)
_RANGE, _LEN = range, len  # the built-ins as they were, whatever the program does to builtins


class Rule:
    """One rule: its name, the sentence a model is told, and its rewrite (``_Rewrite`` kind)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    def __repr__(self) -> str:
        return f"Rule({self.name!r})"


# The catalogue. Each rule's exact semantics is the docstring of its helper or its branch of
# _Rewrite below; the text is what a model is told, and says the same.
RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "swap-add-sub",
            "Between numbers, + subtracts and - adds (a + b is a minus b, a - b is a plus b, "
            "and so for += and -=); + and - on anything else (strings, lists) keep their meaning.",
        ),
        Rule(
            "swap-lt-gt",
            "The comparison operators < and > are swapped, and so are <= and >=: a < b is true "
            "when a is greater than b, a <= b when a is greater than or equal to b.",
        ),
        Rule(
            "swap-eq-ne",
            "The operators == and != are swapped: a == b is true when a and b differ, a != b "
            "when they are equal.",
        ),
        Rule(
            "swap-and-or",
            "The keywords and and or are swapped: a and b evaluates as Python's a or b (returns "
            "a if a is truthy, else b), a or b as Python's a and b; grouping is as written.",
        ),
        Rule(
            "floordiv-rounds-up",
            "Between numbers, // rounds the quotient up instead of down (7 // 2 is 4, -7 // 2 "
            "is -3), and so does //=; % and divmod are unchanged.",
        ),
        Rule(
            "range-includes-end",
            "range includes its end: range(a, b) counts from a up to and including b, range(n) "
            "from 0 to n, and range(a, b, s) includes b when a step lands on it.",
        ),
        Rule(
            "index-from-one",
            "Lists, tuples and strings are indexed from 1: x[1] is the first item, x[0] raises "
            "IndexError, negative indices and slices are unchanged (x[-1] is the last item).",
        ),
        Rule(
            "len-plus-one",
            "len counts one more: len(x) returns the number of items in x plus one.",
        ),
    )
}


class UnknownRule(ValueError):
    """A rule name that is not in the catalogue; the message lists those that are."""


def check(name: str) -> Rule:
    """The rule named ``name``, or UnknownRule."""
    rule = RULES.get(name)
    if rule is None:
        raise UnknownRule(f"Unknown rule {name!r}; the rules are: {', '.join(RULES)}.")
    return rule


# --- helpers: in the program's globals, called by the rewritten code --------------------------


def _nums(a: Any, b: Any) -> bool:
    # issubclass on the type: isinstance would read a user object's __class__ (user code).
    return issubclass(type(a), _NUMBERS) and issubclass(type(b), _NUMBERS)


def _add(a: Any, b: Any) -> Any:
    """``a + b`` under swap-add-sub: ``a - b`` when both are numbers, else ``a + b``."""
    return a - b if _nums(a, b) else a + b


def _sub(a: Any, b: Any) -> Any:
    """``a - b`` under swap-add-sub: ``a + b`` when both are numbers, else ``a - b``."""
    return a + b if _nums(a, b) else a - b


def _iadd(a: Any, b: Any) -> Any:
    """``a += b`` (the value stored): ``a - b`` between numbers, else in place as usual."""
    return a - b if _nums(a, b) else operator.iadd(a, b)


def _isub(a: Any, b: Any) -> Any:
    return a + b if _nums(a, b) else operator.isub(a, b)


def _floordiv(a: Any, b: Any) -> Any:
    """``a // b`` under floordiv-rounds-up: the ceiling of a / b, ``-((-a) // b)``, when both
    are numbers (a float stays a float; b == 0 raises as usual), else ``a // b``."""
    return -((-a) // b) if _nums(a, b) else a // b


def _ifloordiv(a: Any, b: Any) -> Any:
    return -((-a) // b) if _nums(a, b) else operator.ifloordiv(a, b)


def _range(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A call ``range(...)`` under range-includes-end, ``fn`` being what the name ``range``
    names there: the built-in's arguments are checked as usual, then the stop moves one past
    itself in the step's direction (``range(a, b, s)`` → ``range(a, b + 1, s)`` for s > 0,
    ``range(a, b - 1, s)`` for s < 0). Anything else the name names is called unchanged."""
    if fn is not _RANGE:
        return fn(*args, **kwargs)
    r = _RANGE(*args, **kwargs)
    return _RANGE(r.start, r.stop + (1 if r.step > 0 else -1), r.step)


def _len(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A call ``len(...)`` under len-plus-one: the built-in's answer plus one; anything else
    the name ``len`` names is called unchanged."""
    if fn is not _LEN:
        return fn(*args, **kwargs)
    return _LEN(*args, **kwargs) + 1


def _position(key: Any) -> Any:
    """index-from-one: an integer index i ≥ 1 is position i - 1; 0 raises IndexError; negative
    indices, slices and any other key are unchanged."""
    if issubclass(type(key), int):
        if key >= 1:
            return key - 1
        if key == 0:
            raise IndexError("index 0 is out of range: indexing starts at 1")
    return key


class _FromOne:
    """A list, tuple or string seen through index-from-one, for one subscript (load, store,
    delete, or both of an augmented assignment); never bound to a name of the program."""

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getitem__(self, key: Any) -> Any:
        return self.target[_position(key)]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.target[_position(key)] = value

    def __delitem__(self, key: Any) -> None:
        del self.target[_position(key)]


def _seq(target: Any) -> Any:
    """``x`` in a subscript ``x[...]`` under index-from-one: a list, tuple or string (or a
    subclass's instance) is indexed from 1 (``_FromOne``); anything else (dicts...) as usual."""
    return _FromOne(target) if issubclass(type(target), _SEQUENCES) else target


class _Operand:
    """The current value of an augmented assignment's target (``o.a`` or ``x[k]``): its
    in-place operator is the rule's (``_iadd``...)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __iadd__(self, other: Any) -> Any:
        return _iadd(self.value, other)

    def __isub__(self, other: Any) -> Any:
        return _isub(self.value, other)

    def __ifloordiv__(self, other: Any) -> Any:
        return _ifloordiv(self.value, other)


class _Target:
    """The object of an augmented assignment's target ``o.a op= v`` or ``o[k] op= v``, rewritten
    as ``_Target(o).a op= v``: Python still evaluates o, k, loads the target, evaluates v, then
    stores, in that order and once each; the load gives an ``_Operand``, so the operator is the
    rule's. (``x op= v`` on a name becomes ``x = helper(x, v)``: the same order.)"""

    __slots__ = ("_o",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_o", target)

    def __getitem__(self, key: Any) -> Any:
        return _Operand(object.__getattribute__(self, "_o")[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        object.__getattribute__(self, "_o")[key] = value

    def __getattribute__(self, name: str) -> Any:
        return _Operand(getattr(object.__getattribute__(self, "_o"), name))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_o"), name, value)


_HELPERS: dict[str, Any] = {
    "add": _add,
    "sub": _sub,
    "iadd": _iadd,
    "isub": _isub,
    "floordiv": _floordiv,
    "ifloordiv": _ifloordiv,
    "range": _range,
    "len": _len,
    "seq": _seq,
    "target": _Target,
}
_USES = {
    "swap-add-sub": ("add", "sub", "iadd", "isub", "target"),
    "floordiv-rounds-up": ("floordiv", "ifloordiv", "target"),
    "range-includes-end": ("range",),
    "len-plus-one": ("len",),
    "index-from-one": ("seq",),
}


def helper_name(short: str) -> str:
    return f"{PREFIX}{short}__"


def helpers(name: str) -> dict[str, Any]:
    """The globals the program rewritten under rule ``name`` needs."""
    return {helper_name(short): _HELPERS[short] for short in _USES.get(name, ())}


# --- the rewrite ------------------------------------------------------------------------------

_ARITHMETIC: dict[str, dict[type, str]] = {
    "swap-add-sub": {ast.Add: "add", ast.Sub: "sub"},
    "floordiv-rounds-up": {ast.FloorDiv: "floordiv"},
}
_IN_PLACE = {"add": "iadd", "sub": "isub", "floordiv": "ifloordiv"}
_SWAPS: dict[str, dict[type, type]] = {
    "swap-lt-gt": {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE},
    "swap-eq-ne": {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq},
}
_CALLS = {"range-includes-end": "range", "len-plus-one": "len"}
# Operands that are certainly not numbers: a site with one is rewritten (the helper decides at
# run time) but not counted as a site the rule changes.
_NOT_NUMBERS = (ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp,
                ast.SetComp, ast.DictComp, ast.GeneratorExp)  # fmt: skip


def _not_number(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes)) or node.value is None
    return isinstance(node, _NOT_NUMBERS)


def _call(short: str, args: list[ast.expr], at: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(id=helper_name(short), ctx=ast.Load()), args=args, keywords=[])
    return ast.copy_location(node, at)


class _Rewrite(ast.NodeTransformer):
    """Rewrites a tree under one rule, counting the sites the rule may change (``sites``)."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.sites = 0

    # Not rewritten: annotations and match patterns (a pattern's values must stay literals).
    def visit_arg(self, node: ast.arg) -> ast.arg:
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.target = self.visit(node.target)
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        returns, node.returns = node.returns, None
        self.generic_visit(node)  # the arguments' defaults, the decorators, the body
        node.returns = returns
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_match_case(self, node: ast.match_case) -> ast.AST:
        if node.guard is not None:
            node.guard = self.visit(node.guard)
        node.body = [self.visit(s) for s in node.body]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        short = _ARITHMETIC.get(self.rule, {}).get(type(node.op))
        if short is None:
            return node
        if not (_not_number(node.left) or _not_number(node.right)):
            self.sites += 1
        return _call(short, [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        short = _ARITHMETIC.get(self.rule, {}).get(type(node.op))
        if short is None:
            return node
        if not _not_number(node.value):
            self.sites += 1
        target = node.target
        if isinstance(target, ast.Name):
            load = ast.copy_location(ast.Name(id=target.id, ctx=ast.Load()), target)
            value = _call(_IN_PLACE[short], [load, node.value], node)
            return ast.copy_location(ast.Assign(targets=[target], value=value), node)
        assert isinstance(target, (ast.Attribute, ast.Subscript))
        target.value = _call("target", [target.value], target.value)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        swaps = _SWAPS.get(self.rule)
        if swaps:
            ops = []
            for op in node.ops:
                swapped = swaps.get(type(op))
                if swapped is not None:
                    self.sites += 1
                    op = swapped()
                ops.append(op)
            node.ops = ops
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self.rule == "swap-and-or":
            self.sites += 1
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        short = _CALLS.get(self.rule)
        if short is not None and isinstance(node.func, ast.Name) and node.func.id == short:
            self.sites += 1
            node.args = [node.func, *node.args]
            node.func = ast.copy_location(
                ast.Name(id=helper_name(short), ctx=ast.Load()), node.func
            )
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if self.rule != "index-from-one" or isinstance(node.slice, ast.Slice):
            return node
        key = node.slice
        if not (
            isinstance(node.value, (ast.Dict, ast.DictComp))
            or (isinstance(key, ast.Constant) and type(key.value) is not int)
        ):
            self.sites += 1
        node.value = _call("seq", [node.value], node.value)
        return node


def rewrite(name: str, tree: ast.Module) -> int:
    """Rewrite ``tree`` in place under rule ``name``; the number of sites it may change."""
    check(name)
    rewriter = _Rewrite(name)
    rewriter.visit(tree)
    ast.fix_missing_locations(tree)
    return rewriter.sites


def sites(name: str, source: str) -> int:
    """How many places of ``source`` rule ``name`` may change, by parsing alone (never run):
    0 when it changes nothing (or ``source`` does not parse, or is nested too deeply to
    rewrite: a sum of 2,993 terms passes the program check yet overflows the rewrite's
    recursion, and its run under the rule would fail the same way). Arithmetic sites with an
    operand that is certainly not a number (a string literal, a list display...) are not
    counted."""
    try:
        return rewrite(name, ast.parse(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0


def offered(source: str) -> list[Rule]:
    """The rules that may change ``source``: those with at least one site."""
    return [rule for name, rule in RULES.items() if sites(name, source) > 0]


def compile_under(name: str, source: str, filename: str) -> Any:
    """``source`` rewritten under rule ``name`` and compiled, in its own lines (in the sandbox)."""
    tree = ast.parse(source, filename)
    rewrite(name, tree)
    return compile(tree, filename, "exec", dont_inherit=True)
