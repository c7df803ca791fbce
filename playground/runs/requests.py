"""What a request to start a run may have, decided once for the run pages and the API.

``resolve_run_request`` checks the method (the registry, for this kind of item), the model (the
site's configured models), the semantic rule (known, offered for this program, and one the
method can run under), clamps the answer's token budget to the method's (``max_tokens_for``)
and the sandbox overrides to what the requester may have (``limits.allowed_overrides``), then
asks the run-start limits: the requester's model tokens (only looked at) and runs started
(counted). It answers a ``RunRequest`` to hand to ``services.start_run``, or a ``Refusal`` that
each caller words its own way (a page: 404 or the 429 page; the API: 422 or a 429 in JSON).
Its own file because both callers share it and neither is the other's home.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from django.http import HttpRequest

from playground.emulation.probes import BadConfig, config_of
from playground.emulation.registry import REGISTRY, max_tokens_for, methods_for
from playground.lib import ratelimits
from playground.llm.registry import RegistryError, load_models
from playground.runs.limits import allowed_overrides
from playground.sandbox.inside.semantics import RULES, Rule, offered

Kind = Literal["program", "puzzle", "task"]
MIN_TOKENS = 16  # the smallest answer budget a request may ask for
MAX_SEED = 2**31 - 1  # Run.seed is a 32-bit integer


@dataclass(frozen=True)
class RunRequest:
    """A request that may start: what ``start_run`` is given besides the item and the requester."""

    method: str
    model: str  # "" for a real-only run
    max_tokens: int
    limits: dict[str, int] = field(default_factory=dict)
    rule: str = ""  # a semantic rule's name (sandbox/inside/semantics.py); "": standard Python
    probes: dict[str, int] = field(default_factory=dict)  # a probe method's counts, else {}
    seed: int | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a run may not start. ``reason``: ``method`` (it does not apply to this kind of item),
    ``model`` (not configured here), ``no_model`` (the site has none), ``rule`` (unknown, not
    offered for this program, or not one the method can run under), ``probes`` (a probe
    configuration or seed out of bounds), ``limit`` (over a run-start
    limit: ``limit`` carries the message and the Retry-After)."""

    reason: Literal["method", "model", "no_model", "rule", "probes", "limit"]
    message: str
    limit: ratelimits.Refused | None = None


def resolve_run_request(
    request: HttpRequest,
    *,
    kind: Kind,
    method: str | None,
    model: str | None,
    max_tokens: int | None,
    limits: Mapping[str, object],
    unknown_method_is_default: bool = False,
    rule: str | None = None,
    source: str | None = None,
    probes: Mapping[str, object] | None = None,
    seed: object = None,
) -> RunRequest | Refusal:
    """The run that ``request`` may start, or why not. ``method`` None: the kind's default
    ("real" for a program, else the first method offered); an unknown one is refused, or taken
    as the default with ``unknown_method_is_default`` (a form's choice). ``model`` None: the
    site's default (the first configured); a name must be configured. ``max_tokens`` lowers the
    method's budget, never raises it. ``rule`` (None or "": standard Python) is checked against
    the program's ``source`` (``rule_refusal``). ``probes`` (a probe method's counts of each
    kind, capped by ``probes.MAX_PER_KIND``; other methods ignore them) and ``seed`` (which
    fixes a probe method's questions and seeds the model) are checked too. Counts one run
    started when it answers a ``RunRequest``; a refused one is not counted."""
    offered = ({"real": ""} if kind == "program" else {}) | methods_for(kind)
    default = "real" if kind == "program" else next(iter(offered))
    if method is None:
        method = default
    elif method not in offered:
        if not unknown_method_is_default:
            return Refusal(
                "method",
                f"The method {method!r} does not apply to a {kind}; one of {', '.join(offered)}.",
            )
        method = default
    rule = (rule or "").strip()
    if rule and (why := rule_refusal(rule, kind=kind, method=method, source=source)):
        return Refusal("rule", why)
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        return Refusal("probes", f"The seed must be a whole number from 0 to {MAX_SEED}.")
    counts: dict[str, int] = {}
    spec = REGISTRY.get(method)
    if spec is not None and spec.asks_probes:
        try:
            counts = dataclasses.asdict(config_of(dict(probes or {})))
        except BadConfig as exc:
            return Refusal("probes", str(exc))
    chosen = ""
    if method != "real":
        try:
            names = [m.name for m in load_models()]
        except RegistryError:
            names = []
        # Left out: the first configured model (the embedded one when none is configured), as
        # in GET /api/models and `manage.py emulate`.
        chosen = model if model is not None else (names[0] if names else "")
        if not names:
            return Refusal("no_model", "This site offers no language model")
        if chosen not in names:
            return Refusal("model", f"Unknown model {chosen!r}")
        # Refused while the requester's model tokens are spent (only looked at: the model's
        # calls spend them).
        if (spent := ratelimits.exceeded(request, "model_tokens", count=False)) is not None:
            return Refusal("limit", spent.message, spent)
    if (over := ratelimits.exceeded(request, "runs")) is not None:
        return Refusal("limit", over.message, over)
    budget = max_tokens_for(method)
    return RunRequest(
        method=method,
        model=chosen,
        max_tokens=max(MIN_TOKENS, min(max_tokens, budget)) if max_tokens is not None else budget,
        limits=allowed_overrides(dict(limits), authenticated=request.user.is_authenticated),
        rule=rule,
        probes=counts,
        seed=seed if isinstance(seed, int) else None,
    )


_OFFERED: OrderedDict[str, tuple[Rule, ...]] = OrderedDict()
_OFFERED_LOCK = threading.Lock()
OFFERED_KEPT = 512  # programs whose offered rules this process remembers


def offered_rules(source: str) -> tuple[Rule, ...]:
    """The rules that change something in ``source`` (``semantics.offered``: parsed, never
    run), remembered by the text's digest: a long program takes a second to parse under every
    rule, and its page, its form and the API ask again and again."""
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    with _OFFERED_LOCK:
        if (known := _OFFERED.get(digest)) is not None:
            _OFFERED.move_to_end(digest)
            return known
    found = tuple(offered(source))
    with _OFFERED_LOCK:
        _OFFERED[digest] = found
        while len(_OFFERED) > OFFERED_KEPT:
            _OFFERED.popitem(last=False)
    return found


def rule_refusal(rule: str, *, kind: str, method: str, source: str | None) -> str:
    """Why this run may not run under ``rule``, in words for the requester; "" when it may. A
    rule must be known, apply to a program, change something in its ``source`` (a rule that
    touches nothing is not offered) and be one the method can run under."""
    if rule not in RULES:
        return f"Unknown rule {rule[:40]!r}; the rules are: {', '.join(RULES)}."
    if kind != "program":
        return f"A rule changes how a program runs; a {kind} has none."
    spec = REGISTRY.get(method)
    if spec is not None and not spec.changed_semantics:
        return f"The method {method!r} cannot run under a rule: {spec.why_no_rule}"
    if source is not None:
        names = [r.name for r in offered_rules(source)]
        if rule not in names:
            some = f"the rules that do: {', '.join(names)}" if names else "no rule changes it"
            return f"The rule {rule!r} changes nothing in this program; {some}."
    return ""
