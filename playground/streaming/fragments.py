"""Events rendered as htmx out-of-band fragments for the run page's websocket."""

from __future__ import annotations

from typing import Any

from django.utils.html import escape, format_html

TERMINAL = frozenset({"done", "failed", "cancelled"})


def status_text(event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind == "trace":
        return f"The real run finished ({event.get('status')}); waiting for the model…"
    if kind == "failed":
        return f"Failed: {event.get('error', '')}"
    if kind == "cancelled":
        return "Cancelled."
    if kind == "done":
        return "Finished."
    return str(event.get("text", ""))


def state(page_url: str, events: list[dict[str, Any]]) -> str:
    """Everything so far in one message: the model's whole text, the latest status."""
    text = "".join(e.get("text", "") for e in events if e["type"] == "token")
    parts: list[str] = [
        format_html(
            '<pre id="model-output" class="model-output live" hx-swap-oob="true">{}</pre>', text
        )
    ]
    statuses = [e for e in events if e["type"] != "token"]
    if statuses:
        parts.append(event_fragment(page_url, statuses[-1]))
    return "".join(parts)


def event_fragment(page_url: str, event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind == "token":
        return format_html(
            '<span hx-swap-oob="beforeend:#model-output">{}</span>', event.get("text", "")
        )
    fragment: str = format_html(
        '<div id="run-status" class="notice" role="status" hx-swap-oob="true">{}</div>',
        status_text(event),
    )
    if kind in TERMINAL:
        # Load the finished page's main content in place (verdict, trace viewer).
        url = escape(page_url)
        fragment += (
            f'<div id="run-live-end" hx-swap-oob="true"><div hx-get="{url}" hx-trigger="load" '
            'hx-select="main" hx-target="main" hx-swap="outerHTML"></div></div>'
        )
    return str(fragment)
