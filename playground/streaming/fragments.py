"""Events rendered as htmx out-of-band fragments for the run page's websocket."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html

from playground.lib.wording import counted
from playground.runs.events import TERMINAL, Event, EventKind, since_restart
from playground.runs.pages import finished_page_loader

STATUS_KINDS: frozenset[EventKind] = frozenset(
    {"status", "trace", "emulated", "restarted", *TERMINAL}
)


def status_text(event: Event) -> str:
    kind = event["type"]
    if kind == "trace":
        return f"The real run finished ({event.get('status')}); waiting for the model…"
    if kind == "failed":
        return f"Failed: {event.get('error', '')}"
    if kind == "cancelled":
        return "Cancelled."
    if kind == "done":
        return "Finished."
    if kind == "emulated":
        steps = counted(event.get("steps"), "step")
        return f"The model's trace is complete ({steps}, {event.get('status')})."
    return str(event.get("text", ""))


def step_item(step: Any) -> str:
    """One emulated step as a list item (every value escaped)."""
    if not isinstance(step, dict):
        return ""
    parts = [format_html("line {}", step.get("line"))] if step.get("line") else []
    locals_: dict[str, Any] = step["locals"] if isinstance(step.get("locals"), dict) else {}
    parts += [format_html("<code>{} = {}</code>", k, v) for k, v in list(locals_.items())[:50]]
    if step.get("stdout"):
        parts.append(format_html('<span class="printed">{}</span>', step["stdout"]))
    css = ' class="by-lm"' if step.get("by") == "lm" and step.get("line") else ""
    return f"<li{css}>{' '.join(parts)}</li>"


def plan_fragment(event: Event) -> str:
    plan: dict[str, Any] = event["plan"] if isinstance(event.get("plan"), dict) else {}
    tag = "reused" if event.get("reused") else "not kept" if plan.get("not_stored") else "new"
    return format_html(
        '<div id="live-plan" class="card plan" hx-swap-oob="true"><h3>Think: the task-level '
        'plan <span class="tag">{}</span></h3><pre class="code">{}</pre></div>',
        tag,
        plan.get("pseudocode", ""),
    )


def progress_fragment(event: Event) -> str:
    """The comparison so far, while the model is still writing its trace."""
    if event.get("divergence"):
        text = format_html(
            "So far: the first {} step{} agree; then {}",
            event.get("correct_prefix"),
            "" if event.get("correct_prefix") == 1 else "s",
            event["divergence"],
        )
    else:
        text = format_html(
            "So far: all {} step{} the model wrote agree with the real run.",
            event.get("steps"),
            "" if event.get("steps") == 1 else "s",
        )
    return format_html(
        '<div id="live-comparison" class="notice" role="status" hx-swap-oob="true">{}</div>', text
    )


def program_fragment(event: Event) -> str:
    return format_html(
        '<div id="live-program" class="card" hx-swap-oob="true"><h3>The program the model '
        'wrote</h3><pre class="code">{}</pre></div>',
        event.get("source", ""),
    )


def meter_fragment(event: Event) -> str:
    """The model's counts so far (from a token event), for the live meter that static/js/
    live-run.js draws with the elapsed time; an element of data, so that it can be swapped in
    with every token while the visible text ticks on its own."""

    def number(key: str) -> str:
        value = event.get(key)
        return "" if value is None or isinstance(value, bool) else str(value)

    return format_html(
        '<data id="model-meter-data" hx-swap-oob="true" value="{}" data-answer="{}" '
        'data-limit="{}" data-rate="{}" data-calls="{}"></data>',
        number("tokens"),
        number("answer_tokens"),
        number("limit"),
        number("rate"),
        number("calls"),
    )


def _model_output(text: str) -> str:
    return format_html(
        # Not a live region: a screen reader would read the whole text again at each token.
        # The page's one announcer (static/js/site.js) says the milestones (live-run.js).
        '<pre id="model-output" class="model-output live" hx-swap-oob="true">{}</pre>',
        text,
    )


def restarted_fragment(event: Event) -> str:
    """What the model wrote so far, emptied: its worker died and it starts again (the list of
    live steps and the comparison so far only on a page that has them)."""
    boxes = ["live-plan", "live-program"]
    html = _model_output("") + meter_fragment(event)
    if event.get("live_steps"):
        boxes.append("live-comparison")
        html += '<ol id="emulated-steps" class="live-steps" start="1" hx-swap-oob="true"></ol>'
    return html + "".join(f'<div id="{box}" hx-swap-oob="true"></div>' for box in boxes)


def state(page_url: str, events: list[Event]) -> str:
    """Everything so far in one message: the model's whole text (of its current attempt), the
    latest status."""
    everything, events = events, since_restart(events)
    tokens = [e for e in events if e["type"] == "token"]
    parts: list[str] = []
    if tokens or len(everything) > len(events):
        # A page without a model box has no #model-output to swap; after a restart, the box
        # the page drew with the saved text is emptied.
        parts.append(_model_output("".join(e.get("text", "") for e in tokens)))
    counted = [e for e in tokens if "tokens" in e]
    if counted:
        parts.append(meter_fragment(counted[-1]))
    steps = "".join(step_item(e.get("step")) for e in events if e["type"] == "step")
    if steps:
        parts.append(
            f'<ol id="emulated-steps" class="live-steps" start="1" hx-swap-oob="true">{steps}</ol>'
        )
    renderers = (
        ("plan", plan_fragment),
        ("program", program_fragment),
        ("progress", progress_fragment),
    )
    for kind, render in renderers:
        latest = [e for e in events if e["type"] == kind]
        if latest:
            parts.append(render(latest[-1]))
    statuses = [e for e in everything if e["type"] in STATUS_KINDS]
    if statuses:
        status = statuses[-1]  # a restart's line alone: its emptying is in the parts above
        parts.append(
            status_fragment(status)
            if status["type"] == "restarted"
            else event_fragment(page_url, status)
        )
    return "".join(parts)


def status_fragment(event: Event) -> str:
    """The page's status line, saying what the event says."""
    return str(
        format_html(
            # No role="status": the element is replaced at each change, and the announcer
            # already says each new status (live-run.js reads this line), so it would be heard
            # twice.
            '<div id="run-status" class="notice" hx-swap-oob="true">{}</div>',
            status_text(event),
        )
    )


def event_fragment(page_url: str, event: Event) -> str:
    kind = event["type"]
    if kind == "token":
        text = format_html(
            '<span hx-swap-oob="beforeend:#model-output">{}</span>', event.get("text", "")
        )
        return text + meter_fragment(event) if "tokens" in event else text
    if kind == "step":
        return f'<div hx-swap-oob="beforeend:#emulated-steps">{step_item(event.get("step"))}</div>'
    if kind == "plan":
        return plan_fragment(event)
    if kind == "progress":
        return progress_fragment(event)
    if kind == "program":
        return program_fragment(event)
    if kind == "restarted":
        return restarted_fragment(event) + status_fragment(event)
    fragment = status_fragment(event)
    if kind in TERMINAL:
        # Load the finished page's main content in place (verdict, trace viewer).
        fragment += format_html(
            '<div id="run-live-end" hx-swap-oob="true">{}</div>', finished_page_loader(page_url)
        )
    return str(fragment)
