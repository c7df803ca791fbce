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
