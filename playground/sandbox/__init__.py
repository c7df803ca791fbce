"""Real execution: ``run`` executes a program in the sandbox and returns its trace (schema.py).

Importable without a database or Django settings. Only the sandbox queue's workers (and the
command line, the tests) start sandboxes: the web process and the other workers call ``forbid``
as they start, and send their untrusted code to the sandbox queue (runs/sandboxing.py).
"""

from __future__ import annotations

import time
from typing import Any

from playground.lib import process_metrics
from playground.sandbox.batch import BatchSandbox
from playground.sandbox.inside import semantics
from playground.sandbox.inside.semantics import RULES, Rule, UnknownRule, offered, sites
from playground.sandbox.jail import (
    SandboxRefused,
    SandboxUnavailable,
    check_allowed,
    forbid,
    forbidden,
    mode,
)
from playground.sandbox.limits import Limits
from playground.sandbox.lmulator import Lmulator
from playground.sandbox.schema import make_trace

__all__ = [
    "RULES",
    "BatchSandbox",
    "Limits",
    "Rule",
    "SandboxRefused",
    "SandboxUnavailable",
    "UnknownRule",
    "forbid",
    "forbidden",
    "mode",
    "offered",
    "run",
    "sites",
]


def run(
    source: str,
    *,
    call: str | None = None,
    stdin: str = "",
    limits: Limits | None = None,
    lmulator: Lmulator | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """Run ``source`` (then evaluate ``call``) in a fresh sandbox; return the validated trace.

    With ``rule`` (a name in ``RULES``) the program runs under that changed semantics: rewritten
    inside the sandbox (inside/semantics.py), traced in its own lines, the trace's ``rule`` set.
    An unknown name raises UnknownRule before any sandbox starts.

    With ``lmulator`` the run is Chain of Code (see lmulator.py): a line that raises is simulated by
    the model instead of ending the run; the trace's method is "coc", its source "emulated". With
    both, the lines Python runs run under the rule (the rule's rewrite, then Chain of Code's: see
    inside/coc_runtime.py); telling the model the rule is the lmulator's business.
    Raises SandboxUnavailable when isolation cannot be set up (the run must not happen then), and
    SandboxRefused in a process that may not start one (``forbid``).
    """
    from playground.sandbox.process import run_isolated

    if rule is not None:
        semantics.check(rule)
    check_allowed()
    limits = limits or Limits()
    meta: dict[str, Any] = (
        {"source": "emulated", "method": "coc", "lm_calls": 0} if lmulator is not None else {}
    )
    for text, cap, what in (
        (source, limits.max_source, "program"),
        (stdin, limits.max_stdin, "input"),
    ):
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > cap:
            refused = make_trace(
                status="crash",
                steps=[],
                error={
                    "type": "LimitError",
                    "message": f"The {what} is {size:,} bytes; the limit is {cap:,}.",
                    "line": None,
                },
                **meta,
            )
            if rule is not None:
                refused["rule"] = rule
            return refused
    started = time.monotonic()
    trace = run_isolated(source, call or None, stdin, limits, lmulator=lmulator, rule=rule)
    process_metrics.SANDBOX_SECONDS.labels(status=trace["status"]).observe(
        time.monotonic() - started
    )
    if rule is not None:  # the parent's record of what it asked for, never the runner's word
        trace["rule"] = rule
    return trace
