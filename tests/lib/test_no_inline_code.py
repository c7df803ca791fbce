"""The Content-Security-Policy allows no inline script or style (finding L7): a fast check that no
template, no HTML built in Python and no script of ours brings any back. (The browser test,
tests/e2e/test_csp.py, watches the pages themselves.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# An event-handler attribute (onclick=, onsubmit=...), a style attribute, a <style> element,
# a script without src (JSON data blocks excepted: they are never run), a javascript: URL.
INLINE = re.compile(
    r"""\son[a-z]+\s*=|\sstyle\s*=|<style[\s>]|javascript:"""
    r"""|<script(?![^>]*\ssrc=)(?![^>]*type=["']application/json)[^>]*>""",
    re.IGNORECASE,
)
# Scripts of ours: no eval, no code from strings, no style attributes written from script.
UNSAFE_JS = re.compile(r"""\beval\(|new Function\(|setAttribute\(\s*["']style|\.innerHTML\s*=""")


def _offences(paths: list[Path], pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    return found


def test_templates_and_python_html_have_no_inline_script_or_style() -> None:
    templates = sorted((ROOT / "templates").rglob("*.html"))
    templates += sorted((ROOT / "playground").rglob("templates/**/*.html"))
    python = [p for p in sorted((ROOT / "playground").rglob("*.py")) if "migrations" not in p.parts]
    assert len(templates) > 30  # the check looked where the pages are
    assert _offences(templates + python, INLINE) == []


def test_our_scripts_neither_eval_nor_write_styles() -> None:
    scripts = sorted((ROOT / "static" / "js").glob("*.js"))
    assert scripts
    assert _offences(scripts, UNSAFE_JS) == []


def test_the_pattern_finds_what_it_must() -> None:
    for bad in (
        '<form onsubmit="return confirm()">',
        '<svg style="max-width: 5px">',
        "<script>alert(1)</script>",
        '<script type="module">x()</script>',
        "<style>p {}</style>",
        '<a href="javascript:x()">',
    ):
        assert INLINE.search(bad), bad
    for good in (
        '<script src="/static/js/site.js" defer></script>',
        '<script type="application/json" id="trace-data">{}</script>',
        '<select data-autosubmit name="item">',
        '<form class="inline" data-confirm="Delete?">',
    ):
        assert not INLINE.search(good), good
