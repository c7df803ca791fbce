"""``{% run_form item %}``: the form that starts a run of a program, puzzle or task instance,
offering the methods that apply to it, this user's limits, and for a program the changed rules
that change something in it and a probe method's questions."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

from playground.emulation.probes import DEFAULT as PROBES_DEFAULT
from playground.emulation.probes import KINDS as PROBE_KINDS
from playground.emulation.probes import MAX_PER_KIND
from playground.emulation.registry import REGISTRY, methods_for
from playground.llm.registry import RegistryError, load_models
from playground.programs.models import Program, Puzzle, TaskExample
from playground.runs.errors import describe_error
from playground.runs.limits import default_limits
from playground.runs.requests import offered_rules

register = template.Library()

# What the run button says, by what will happen: a real run only, or a model asked (a program
# is also run for real then, to judge the model against it).
BUTTON_LABELS = {
    "program": {"real": "▶ Run it for real", "model": "▶ Run and ask the model"},
    "puzzle": {"real": "", "model": "▶ Ask the model to solve it"},
    "task": {"real": "", "model": "▶ Ask the model"},
}


@register.filter
def error_text(error: Any) -> str:
    """A program's exception as one line (``{{ trace.error|error_text }}``)."""
    return describe_error(error)


@register.inclusion_tag("runs/_run_form.html", takes_context=True)
def run_form(context: dict[str, Any], item: Program | Puzzle | TaskExample) -> dict[str, Any]:
    try:
        models = load_models()
    except RegistryError:
        models = []
    if isinstance(item, Puzzle):
        kind, action = "puzzle", reverse("runs:start_puzzle", args=[item.name])
        methods = methods_for(kind)
    elif isinstance(item, TaskExample):
        kind = "task"
        action = reverse("runs:start_task_example", args=[item.task.name, item.index])
        methods = methods_for(kind)
    else:
        kind, action = "program", reverse("runs:start", args=[item.pk])
        methods = {"real": "Real execution only", **methods_for(kind)}
    rules = offered_rules(item.source) if isinstance(item, Program) else ()
    return {
        "kind": kind,
        "action": action,
        "methods": methods,
        "labels": BUTTON_LABELS[kind],
        "models": models,
        "user": context["user"],
        "csrf_token": context.get("csrf_token"),
        "limits": default_limits(),
        "ceiling_cpu": settings.PLAYGROUND_SANDBOX_CEILING_CPU_S,
        "ceiling_steps": settings.PLAYGROUND_SANDBOX_CEILING_STEPS,
        # Parsed here, never run: the rules that change something in this program.
        "rules": rules,
        # What run-form.js needs to know of each method: it asks probes; it takes no rule.
        "probe_methods": [n for n in methods if (m := REGISTRY.get(n)) and m.asks_probes],
        "ruleless_methods": [
            n for n in methods if (m := REGISTRY.get(n)) and not m.changed_semantics
        ],
        "probe_counts": [(k, PROBES_DEFAULT.count(k)) for k in PROBE_KINDS],
        "max_per_kind": MAX_PER_KIND,
    }
