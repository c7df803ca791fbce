"""No page, script, task, service or command tells the methods apart by name: each reads the fact
it needs from the method's record in ``playground.emulation.registry.REGISTRY``.

What is checked, in playground/ (migrations aside), templates/ and static/js/, for the name of
every registered method (so a new method is covered once it is registered):

- a comparison of a method variable with the name as a literal: ``run.method == "coc"``,
  ``"trace" != method``, ``method === "coc"`` (JS), ``{% if run.method == "tae" %}``, and
  membership ``run.method in ("direct", "cot")``;
- a line naming two methods or more: a table (``{"direct": 256, "cot": 1024}``) or a list of
  them, unless the line is about an item's ``mode`` or ``kind``;
- in the files that once compared names (``ONCE_COMPARED``), any comparison with the literal,
  whatever the variable is called.

"trace", "coc" and "puzzle" are ordinary words too (the real trace, ``trace.json``, the trace
command, an event kind, a classroom mode, an item kind): a literal that is not compared with a
method is not flagged. Allowed: the method's own module (the registry's ``target``) and the
registry; ``ALLOWED`` names each other place with the reason. docs/ARCHITECTURE.md's section on
emulation methods, with the steps for adding one, is checked against the registry too.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from playground.emulation.registry import REGISTRY, Method

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(REGISTRY)
_NAME = "|".join(re.escape(n) for n in NAMES)
_LIT = rf"""(?P<q>["'])(?:{_NAME})(?P=q)"""
_METHODISH = r"""[\w.\[\]"'()]*method[\w.\[\]"'()]*"""  # run.method, method_name...
_OP = r"(?:===|!==|==|!=)"
# Flagged anywhere: a method variable compared with a method's name.
COMPARED = [
    re.compile(rf"{_METHODISH}\s*{_OP}\s*{_LIT}"),
    re.compile(rf"{_LIT}\s*{_OP}\s*{_METHODISH}"),
    re.compile(rf"{_METHODISH}\s+(?:not\s+)?in\s+[(\[{{][^)\]}}]*{_LIT}"),
]
# Flagged in the files that once compared names: any comparison with a method's name.
_OPERAND = r"""(?P<other>[\w.\[\]"'()]+)"""
ANY_COMPARISON = [
    re.compile(rf"{_OPERAND}\s*{_OP}\s*{_LIT}"),
    re.compile(rf"{_LIT}\s*{_OP}\s*{_OPERAND}"),
    re.compile(rf"{_OPERAND}\s+(?:not\s+)?in\s+[(\[{{][^)\]}}]*{_LIT}"),
]
ABOUT_MODE_OR_KIND = re.compile(r"\b(?:mode|kind)\b")

ONCE_COMPARED = {
    "playground/api.py",
    "playground/benchmarks/management/commands/bench.py",
    "playground/benchmarks/views/boards.py",
    "playground/benchmarks/views/common.py",
    "playground/benchmarks/views/comparing.py",
    "playground/benchmarks/views/evaluation.py",
    "playground/benchmarks/views/exports.py",
    "playground/benchmarks/views/starting.py",
    "playground/classroom/authoring.py",
    "playground/classroom/keys.py",
    "playground/emulation/judging.py",
    "playground/runs/management/commands/emulate.py",
    "playground/runs/api.py",
    "playground/runs/models.py",
    "playground/runs/pipeline.py",
    "playground/runs/tasks.py",
    "playground/runs/pages.py",
    "playground/runs/views.py",
    "static/js/compare-viewer.js",
    "templates/runs/_compare.html",
    "templates/runs/_verdict.html",
    "templates/runs/run_detail.html",
}
# (file, method name) -> why the name may stand there.
ALLOWED = {
    ("playground/sandbox/schema.py", "coc"): "the sandbox's Chain of Code runtime stamps its "
    'trace {"method": "coc"}; the sandbox lies below the registry and reads its own stamp',
    ("playground/emulation/registry.py", "*"): "the registry: the records and the defaults",
}


def _own_modules() -> dict[str, set[str]]:
    """Each method's own module, as a path, -> the names it may use."""
    own: dict[str, set[str]] = {}
    for method in REGISTRY.values():
        module = method.target.partition(":")[0]
        own.setdefault(module.replace(".", "/") + ".py", set()).add(method.name)
    return own


def _files() -> list[Path]:
    found = [p for p in (ROOT / "playground").rglob("*.py") if "migrations" not in p.parts]
    found += (ROOT / "templates").rglob("*.html")
    found += (ROOT / "static" / "js").rglob("*.js")
    return sorted(found)


def _names_in(text: str) -> set[str]:
    return set(re.findall(rf"""["']({_NAME})["']""", text))


def offences(path: str, line: str) -> set[str]:
    """The method names this line of ``path`` compares or tabulates by name."""
    patterns = COMPARED + (ANY_COMPARISON if path in ONCE_COMPARED else [])
    found: set[str] = set()
    for pattern in patterns:
        for match in pattern.finditer(line):
            other = match.groupdict().get("other") or ""
            if not ABOUT_MODE_OR_KIND.search(other):  # an item's kind or mode is no method
                found |= _names_in(match.group(0))
    named = _names_in(line)
    if len(named) >= 2 and not ABOUT_MODE_OR_KIND.search(line):  # a table or list of methods
        found |= named
    return found


def test_no_method_name_is_compared_outside_its_own_module() -> None:
    own = _own_modules()
    problems = []
    for file in _files():
        path = file.relative_to(ROOT).as_posix()
        if (path, "*") in ALLOWED:
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            for name in sorted(offences(path, line)):
                if name in own.get(path, set()) or (path, name) in ALLOWED:
                    continue
                problems.append(f"{path}:{number}: {name!r} in {line.strip()[:100]}")
    assert not problems, (
        "A method's name compared with a literal: read the fact from its record in "
        "playground.emulation.registry.REGISTRY instead (run.spec in templates, a data "
        "attribute for scripts).\n" + "\n".join(problems)
    )


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("x.py", 'if run.method == "trace" and bool(run.call):'),
        ("x.py", 'if "coc" != method:'),
        ("x.py", 'kind = "puzzle" if self.method == "puzzle" else "program"'),
        ("x.py", 'if run.method in ("direct", "cot", "trace"):'),
        ("x.py", 'tokens = options["method"] == "tae"'),
        ("x.py", 'METHOD_TOKENS = {"direct": 256, "cot": 1024}'),
        ("x.html", '{% if run.method == "trace" or run.method == "coc" %}'),
        ("x.js", 'if (method === "coc") {'),
        ("playground/runs/tasks.py", 'if name == "trace":'),
        ("x.html", '{% if method_name == "coc" %}'),
        ("x.py", 'if self.emulation_method != "direct":'),
    ],
)
def test_the_check_flags_a_comparison_by_name(path: str, line: str) -> None:
    assert offences(path, line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("x.py", 'announce(run_id, "trace", status=trace["status"])'),
        ("x.py", 'if kind == "trace":'),
        ("x.py", 'if revealed or submission.item.mode in ("puzzle", "trace"):'),
        ("x.py", 'path("runs/<int:pk>/trace.json", views.trace_json, name="trace_json")'),
        ("x.py", 'return {"source": "emulated", "method": "coc", "lm_calls": self.calls}'),
        ("x.html", '{% if run.kind == "puzzle" %}The sandbox checks the answer{% endif %}'),
        ("x.py", 'if request.method == "POST":'),
        ("x.py", 'if not method.needs_call and "puzzle" in method.kinds:'),
        ("templates/runs/run_detail.html", '{% if run.kind == "puzzle" %}The sandbox...'),
    ],
)
def test_the_check_leaves_other_words_alone(path: str, line: str) -> None:
    assert not offences(path, line)


def test_the_steps_for_a_new_method_name_what_exists() -> None:
    """docs/ARCHITECTURE.md's "Emulation methods" names every fact of a ``Method`` and only files
    that exist."""
    whole = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    doc = whole[whole.index("\n## Emulation methods\n") :]
    doc = doc[: doc.find("\n## ", 1)]
    missing = [f.name for f in dataclasses.fields(Method) if f"`{f.name}`" not in doc]
    assert not missing, f"docs/ARCHITECTURE.md does not explain the facts {missing}"
    paths = set(re.findall(r"`((?:playground|tests|templates|static|docs)/[\w/.]+\.\w+)`", doc))
    assert paths, "docs/ARCHITECTURE.md's emulation methods name no file"
    gone = sorted(p for p in paths if not (ROOT / p).exists() and "<" not in p)
    assert not gone, f"docs/ARCHITECTURE.md names files that do not exist: {gone}"
    assert "tests/emulation/test_method_literals.py" in paths
