"""``{% run_form program %}``: the "Run it for real" form with this user's limits."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from playground.llm.registry import RegistryError, load_models
from playground.programs.models import Program
from playground.runs.limits import default_limits
from playground.runs.methods import METHODS

register = template.Library()


@register.inclusion_tag("runs/_run_form.html", takes_context=True)
def run_form(context: dict[str, Any], program: Program) -> dict[str, Any]:
    try:
        models = load_models()
    except RegistryError:
        models = []
    return {
        "methods": METHODS,
        "models": models,
        "program": program,
        "user": context["user"],
        "csrf_token": context.get("csrf_token"),
        "limits": default_limits(),
        "ceiling_cpu": settings.PLAYGROUND_SANDBOX_CEILING_CPU_S,
        "ceiling_steps": settings.PLAYGROUND_SANDBOX_CEILING_STEPS,
    }
