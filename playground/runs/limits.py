"""Sandbox limits for a run: the site's defaults, and what a user may change for one run.

Anonymous visitors may only lower a limit; signed-in users may raise CPU time and steps up to the
site's ceilings (a class needs longer runs than a drive-by visitor).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from playground.sandbox import Limits
from playground.sandbox.lmulator import ANON_LM_CALLS, ANON_LM_SECONDS

# Per-run knobs offered in the run form: name -> (label, settings name of the ceiling).
ADJUSTABLE = {
    "cpu_s": ("CPU seconds", "PLAYGROUND_SANDBOX_CEILING_CPU_S"),
    "max_steps": ("steps", "PLAYGROUND_SANDBOX_CEILING_STEPS"),
}


def default_limits() -> Limits:
    return Limits(
        cpu_s=settings.PLAYGROUND_SANDBOX_CPU_S,
        wall_s=settings.PLAYGROUND_SANDBOX_WALL_S,
        memory_mb=settings.PLAYGROUND_SANDBOX_MEMORY_MB,
        max_steps=settings.PLAYGROUND_SANDBOX_MAX_STEPS,
        max_stdout=settings.PLAYGROUND_SANDBOX_MAX_STDOUT,
        max_source=settings.PLAYGROUND_MAX_SOURCE_BYTES,
        max_stdin=settings.PLAYGROUND_MAX_STDIN_BYTES,
        max_trace_bytes=settings.PLAYGROUND_MAX_TRACE_BYTES,
    )


def allowed_overrides(requested: dict[str, Any], *, authenticated: bool) -> dict[str, int]:
    """The overrides a requester may have: anonymous ones clamped to the defaults, signed-in
    ones to the ceilings. Unknown keys and non-positive values are dropped."""
    base = default_limits()
    allowed: dict[str, int] = {}
    for name, (_, ceiling_setting) in ADJUSTABLE.items():
        value = requested.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            continue
        cap = getattr(settings, ceiling_setting) if authenticated else getattr(base, name)
        allowed[name] = min(value, cap)
    return allowed


def limits_for_run(overrides: dict[str, Any], *, anonymous: bool = False) -> Limits:
    """The sandbox limits of a run; an anonymous visitor's Chain of Code run may ask the model
    fewer times, for less time (ANON_LM_CALLS, ANON_LM_SECONDS)."""
    limits = default_limits()
    if anonymous:
        limits = limits.lowered(lm_calls=ANON_LM_CALLS, lm_seconds=ANON_LM_SECONDS)
    values: dict[str, float] = {
        k: v for k, v in overrides.items() if k in ADJUSTABLE and isinstance(v, int)
    }
    if "cpu_s" in values:
        # The wall clock must leave room for the CPU time it allows.
        values["wall_s"] = max(limits.wall_s, values["cpu_s"] + 3)
    return Limits(**{**limits.__dict__, **values})
