"""The run page's context: what ``runs/run_detail.html`` (and a share link's page and embed,
which render the same run) show, and the verdict's wording.

Its own module, not ``views.py``, because another room builds the same page: ``sharing`` passes
its own addresses in (``RunUrls``) instead of ``runs`` knowing the sharing URL names, and imports
no view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from playground.emulation.judging import NO_MODEL, headline
from playground.emulation.probes import KINDS as PROBE_KINDS
from playground.llm.registry import RegistryError, load_models
from playground.runs.limits import default_limits
from playground.runs.models import Run, method_label
from playground.runs.pipeline import hit_token_limit
from playground.runs.surprise import page_context as surprise_context

STATUS_TEXT = {
    "ok": "Finished",
    "exception": "Raised an exception",
    "step_limit": "Stopped: step limit reached",
    "time_limit": "Stopped: time limit reached",
    "memory_limit": "Stopped: memory limit reached",
    "output_limit": "Stopped: output limit reached",
    "crash": "The program crashed",
    "cancelled": "Cancelled",
}


@dataclass(frozen=True)
class RunUrls:
    """Where the run page points: itself, its polled progress fragment and its websocket."""

    page: str
    status: str
    socket: str
    shared: bool = False  # seen through a share link: read-only


def socket_url(run: Run, *, share_token: str = "") -> str:
    """The run's websocket (``streaming/routing.py``; Channels routes have no ``reverse``)."""
    return f"/ws/runs/{run.pk}/" + (f"?share={share_token}" if share_token else "")


def own_urls(run: Run) -> RunUrls:
    """The run's own page, for whoever may see the run."""
    return RunUrls(
        page=run.get_absolute_url(),
        status=reverse("runs:status", args=[run.pk]),
        socket=socket_url(run),
    )


def _model_label(run: Run) -> str:
    try:
        return next(m.label for m in load_models() if m.name == run.model)
    except (StopIteration, RegistryError):
        return run.model


def run_context(
    run: Run, urls: RunUrls | None = None, *, step_standard: bool = False
) -> dict[str, object]:
    """What the run page shows; ``urls`` for a viewer who came another way than the run's own
    page (a share link: read-only, no cancel, no sharing controls; live updates through it).
    ``step_standard``: a run under a rule, whose viewer steps through standard Python's run
    instead of the run under the rule (``?trace=standard``)."""
    urls = urls or own_urls(run)
    # The real trace is shown as soon as it exists (it usually beats the model by far).
    trace = run.real_trace
    emulated = run.emulated_trace if run.is_finished else None
    real_data = trace.data if trace else None
    emulated_data = emulated.data if emulated else None
    comparison = run.comparison_of(real_data, emulated_data)
    standard = run.standard_trace if run.rule else None
    return {
        **verdict_context(run, trace.data if trace else None, emulated.data if emulated else None),
        "run": run,
        "trace": real_data,
        "emulated": emulated_data,
        "comparison": comparison,
        # The step-by-step comparison of the trace methods (others compare the value only).
        "step_comparison": comparison if comparison and "steps" in comparison else None,
        "status_text": STATUS_TEXT.get(trace.status, trace.status) if trace else "",
        "limits": default_limits(),
        "method_label": method_label(run.method),
        "model_label": _model_label(run) if run.is_emulated else "",
        "shared": urls.shared,
        "page_url": urls.page,
        "status_url": urls.status,
        "ws_url": urls.socket,
        # Under a rule: the rule's sentence and standard Python's run of the same program.
        "rule_text": run.rule_text,
        "standard": standard.data if standard else None,
        "rule_steps": rule_steps(real_data, standard.data if standard else None),
        # What the step-through viewer shows: the real run, or standard Python's beside it.
        "viewer_trace": standard.data if step_standard and standard else real_data,
        "viewing_standard": bool(step_standard and standard),
        # The model's surprise along the real trace (runs/surprise.py): its state or heat map.
        "surprise": surprise_context(run, real_data, comparison),
        # A probe method's counts, in the kinds' order (jsonb keeps its own).
        "probe_counts": [
            (kind, run.probes[kind])
            for kind in PROBE_KINDS
            if isinstance(run.probes, dict) and kind in run.probes
        ],
    }


RULE_ROWS = 400  # steps of the two runs shown side by side (the viewer has every step)


def _step_words(step: Any) -> str:
    """One step of a trace in words: its line, what changed, what it printed, what it raised."""
    if not isinstance(step, dict):
        return ""
    parts = [f"line {step.get('line')}"]
    changed = step.get("locals")
    if isinstance(changed, dict):
        for name, value in changed.items():
            if name == "__return__":
                if step.get("func") != "<module>":
                    parts.append(f"returns {value}")
            else:
                parts.append(f"{name} = {value}")
    if step.get("event") in ("exception", "unwind") and step.get("exception"):
        parts.append(f"raises {step['exception']}")
    if step.get("stdout"):
        parts.append(f"prints {step['stdout']!r}")
    return ", ".join(str(p)[:300] for p in parts)


def _same_step(a: Any, b: Any) -> bool:
    keys = ("line", "event", "func", "locals", "stdout", "exception")
    return isinstance(a, dict) and isinstance(b, dict) and all(a.get(k) == b.get(k) for k in keys)


def rule_steps(
    real: dict[str, Any] | None, standard: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The run under the rule beside standard Python's, step by step (the first ``RULE_ROWS``):
    each row's two steps in words and whether they differ, and the first step where they do
    (None when the steps shown are the same). None without a standard run."""
    if not isinstance(real, dict) or not isinstance(standard, dict):
        return None
    ours = real.get("steps")
    theirs = standard.get("steps")
    ours = ours if isinstance(ours, list) else []
    theirs = theirs if isinstance(theirs, list) else []
    total = max(len(ours), len(theirs))
    rows = []
    first: int | None = None
    for i in range(min(total, RULE_ROWS)):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        differs = not _same_step(a, b)
        if differs and first is None:
            first = i
        rows.append(
            {
                "index": i,
                "rule": _step_words(a) if a is not None else "",
                "standard": _step_words(b) if b is not None else "",
                "differs": differs,
            }
        )
    return {
        "rows": rows,
        "total": total,
        "shown": len(rows),
        "first": first,
        "same_result": real.get("result") == standard.get("result")
        and real.get("status") == standard.get("status"),
    }


def verdict_context(
    run: Run, real: dict[str, Any] | None, emulated: dict[str, Any] | None
) -> dict[str, Any]:
    """The verdict's headline, worded the same for every page that shows it, and for a
    program's run the real value beside the model's (what the verdict is about)."""
    verdict = run.verdict if isinstance(run.verdict, dict) else {}
    steps = emulated.get("steps") if isinstance(emulated, dict) else None
    values = None
    status = verdict.get("status")
    if status and status != NO_MODEL and run.has_real_run and isinstance(real, dict):
        error = real.get("error")
        error = error if isinstance(error, dict) else {}
        if real.get("status") == "ok":
            expected = str(real.get("result"))
        elif real.get("status") == "exception":
            expected = f"raises {error.get('type', 'an exception')}"
        else:
            expected = STATUS_TEXT.get(str(real.get("status")), str(real.get("status")))
        values = {
            "expected": expected,
            "expected_is_value": real.get("status") == "ok",
            "predicted": run.prediction or None,
        }
        spec = run.spec
        if spec is not None and spec.predicts_input and isinstance(emulated, dict):
            # The model's answer is a call: what it returned when run is what was judged.
            if emulated.get("status") == "ok":
                values["returned"] = str(emulated.get("result"))
            else:
                values["returned_how"] = STATUS_TEXT.get(
                    str(emulated.get("status")), str(emulated.get("status"))
                )
    explanation = str(verdict.get("explanation", ""))
    if GUESSED_LIMIT in explanation:  # stored before the verdict knew whether it was so
        said = " (the answer reached its token limit)" if hit_token_limit(run) else ""
        explanation = explanation.replace(GUESSED_LIMIT, said)
    return {
        "verdict_headline": headline(verdict, emulated_steps=len(steps or [])),
        "verdict_explanation": explanation,
        "verdict_values": values,
    }


GUESSED_LIMIT = " (cut off at the token limit?)"


def progress_context(run: Run, urls: RunUrls | None = None) -> dict[str, object]:
    """What the polled progress fragment needs, and nothing more: polled every 3 s while the
    model runs, it must not read traces (a stored one can be megabytes)."""
    return {"run": run, "status_url": (urls or own_urls(run)).status}


def finished_page_loader(page_url: str) -> SafeString:
    """The htmx element that loads a finished run's page content (verdict, trace viewer) in
    place of the live one, when the live events or the slow poll learn that the run ended.

    In place, not a reload: a reload that lands while the user clicks (a share link, a form)
    cancels the click's request and loses it."""
    return format_html(
        '<div hx-get="{}" hx-trigger="load" hx-select="main" hx-target="main" '
        'hx-swap="outerHTML"></div>',
        page_url,
    )
