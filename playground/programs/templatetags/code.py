"""``{{ source|python }}``: syntax-highlighted, escaped Python (Pygments)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

register = template.Library()
_lexer = PythonLexer()


@register.filter
def python(source: str, anchor: str = "L") -> SafeString:
    """Highlight with line numbers; Pygments escapes every character of the source."""
    formatter = HtmlFormatter(linenos="table", cssclass="highlight", lineanchors=anchor)
    return mark_safe(highlight(source or "", _lexer, formatter))  # noqa: S308


@register.filter
def python_lines(source: str) -> SafeString:
    """Highlight with one ``<span id="line-N">`` per line, for the trace viewer to mark."""
    formatter = HtmlFormatter(linenos="inline", cssclass="highlight code-lines", linespans="line")
    html = highlight(source or "", _lexer, formatter)
    # Pygments ends each line's span with its newline; keep the newline outside so that a line
    # can be styled as one block (the current-line marker) without an empty row under it.
    return mark_safe(html.replace("\n</span>", "</span>\n"))  # noqa: S308
