"""Every limit on what a requester may start, create or hold open, from one table.

The table is ``settings.PLAYGROUND_LIMITS`` (built by :func:`table` from the written defaults
below, the profile ``PLAYGROUND_LIMITS_PROFILE`` and the overrides in ``PLAYGROUND_LIMITS``).
Each entry is either a **rate** (``"20/m"``, ``"10/h"``, ``"30/10m"``: django-ratelimit's
syntax, counted in the Redis cache that every web process and worker shares, in fixed windows)
or a **cap** (a plain number: most results in one evaluation, most open streams, seconds a stream
may live, ...).

Names are ``<what>.<whose>``: ``anon`` is counted per client address, ``user`` per account,
``ip`` per address whoever is signed in, ``account`` per account name or e-mail address (login
attempts and password resets, before anyone is signed in). :func:`hit` picks ``user`` or
``anon`` by itself when given only ``<what>``.

Exceeding a limit raises :class:`Refused`; the middleware (pages) and the API's exception
handler turn it into a 429 with ``Retry-After`` and the sentence of :attr:`Refused.message`,
so a view only calls :func:`hit` before it does the work."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from django_ratelimit.core import (
    ALL,
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    get_usage,
)

from playground.lib import process_metrics

# The written defaults: what a public site with anonymous visitors should start with. Each
# entry's words (what is counted, for the refusal and the README) are in WORDS below.
DEFAULTS: dict[str, str | int] = {
    # New runs (pages, the API, and every other way a run starts: item answer keys excepted,
    # which count as item_prepares).
    "runs.anon": "20/m",
    "runs.user": "60/m",
    # New evaluations by users who are not staff, and the most results (items x samples) one
    # of them may ask for; staff are not counted.
    "evaluations.user": "10/h",
    # Evaluations scored again (each may run thousands of checks in the sandbox), and outputs
    # uploaded to be scored (the same checks).
    "rescores.user": "10/h",
    "imports.user": "10/h",
    "evaluation_results.user": 5_000,
    # A run's real trace scored under its model (its surprise: the run page's button, or an
    # evaluation's runs at once, which counts one), and the most runs one such request sends.
    "surprises.anon": "20/h",
    "surprises.user": "60/h",
    "surprise_runs.user": 200,
    # Students' answers (every answer that would be recorded: a puzzle item's runs the
    # sandbox, and each one is a row).
    "puzzle_submissions.user": "10/m",
    # Saving an item or asking for its answer key again (each one is a real run and a model run).
    "item_prepares.user": "10/m",
    # A varied item's variants (classroom/variants.py): sandbox runs of candidate calls, per
    # account that saves the item, and per item the most candidates tried and variants kept.
    "variant_runs.user": "200/h",
    "variant_candidates.item": 40,
    "variants.item": 20,
    # Accounts made from one address (or through one course invitation's link: a class
    # invited by e-mail signs up together from one school address).
    "signups.ip": "5/h",
    # Failed login attempts (the admin's too), per address and per account name; once over,
    # every attempt is refused, right password or not. Per address it is generous: a class of
    # 300 behind one school address mistypes passwords too; guessing one account's password
    # is stopped by the per-account rate.
    "logins.ip": "100/10m",
    "logins.account": "10/10m",
    # Password-reset e-mails asked for, per address and per e-mail address they go to.
    "password_resets.ip": "10/h",
    "password_resets.account": "5/h",
    # Join codes tried (a wrong code too: codes must not be guessed in a loop).
    "course_joins.user": "20/h",
    # Rows a person may create in a day.
    "programs.anon": "200/d",
    "programs.user": "1000/d",
    "share_links.anon": "50/d",
    "share_links.user": "200/d",
    "courses.user": "10/d",
    "items.user": "300/d",  # items and assignments together
    "rosters.user": "30/d",  # roster uploads (each up to 5,000 invitations)
    "reports.anon": "10/d",
    "reports.user": "30/d",
    "api_tokens.user": "20/d",
    # Data exports (each reads everything the account holds: playground/privacy/export.py), and
    # attempts to delete one's account (each checks the password typed again).
    "exports.user": "5/h",
    "account_deletions.user": "10/h",
    # API tokens one account may hold at once (not revoked, not expired).
    "api_tokens_active.user": 20,
    # Live streams (SSE and websocket) open at the same time, and how long one may stay open.
    # Per address whoever is signed in, it is generous: a class of 300 signed-in students
    # behind one school address each watch their own runs (one address cannot hold many
    # accounts: signups.ip); a view over a cap falls back to polling.
    "streams.anon": 10,
    "streams.user": 20,
    "streams.ip": 500,
    "stream_seconds": 3_600,
    # LTI 1.3 (playground/lti): login initiations and launches from one address (a class
    # behind one school address launches together), deep-linking answers signed, and grades
    # sent to the LMS again by hand.
    "lti_launches.ip": "600/10m",
    "lti_deep_links.user": "30/h",
    "lti_resends.user": "60/h",
    # Language-model tokens (prompt and reply) a requester's runs may use.
    "model_tokens.anon": "100000/h",
    "model_tokens.user": "1000000/h",
}

WORDS: dict[str, str] = {
    "runs": "runs started",
    "evaluations": "evaluations started",
    "rescores": "evaluations scored again",
    "imports": "outputs uploaded to be scored",
    "evaluation_results": "results in one evaluation",
    "surprises": "surprise scorings asked for",
    "surprise_runs": "runs of an evaluation sent to be scored at once",
    "puzzle_submissions": "answers submitted",
    "item_prepares": "answer keys prepared",
    "variant_runs": "variant candidates run",
    "variant_candidates": "candidate variants tried for one item",
    "variants": "variants of one item",
    "signups": "accounts made from this address",
    "logins": "failed login attempts",
    "password_resets": "password-reset e-mails asked for",
    "course_joins": "join codes tried",
    "programs": "programs saved",
    "share_links": "share links made",
    "courses": "courses made",
    "items": "items and assignments made",
    "rosters": "rosters uploaded",
    "reports": "reports sent",
    "api_tokens": "API tokens made",
    "exports": "data exports made",
    "account_deletions": "attempts to delete the account",
    "api_tokens_active": "API tokens active at once",
    "streams": "live views open at once",
    "stream_seconds": "seconds a live view stays open",
    "model_tokens": "language-model tokens used",
    "lti_launches": "LTI launches",
    "lti_deep_links": "LTI deep-linking answers",
    "lti_resends": "grades sent to the LMS again",
}

# The load-test profile (one setting) lets a load harness act as thousands of visitors from a
# few addresses: every rate and cap is this many times the written one, except how long one
# stream may live and a varied item's sizes (they count no requester).
LOAD_TEST_FACTOR = 1_000
UNSCALED = frozenset({"stream_seconds", "variant_candidates.item", "variants.item"})
PROFILES = ("public", "load-test")
_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_PERIOD_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


class LimitsError(ValueError):
    """A limit table that cannot be used (raised at start-up, from settings)."""


def _check_value(name: str, value: str | int) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LimitsError(f"limit {name!r}: {value!r} is neither a rate nor a number")
    if isinstance(DEFAULTS[name], int):
        if isinstance(value, str):
            if not (value.isascii() and value.isdigit()):
                raise LimitsError(f"limit {name!r} is a number, not {value!r}")
            value = int(value)
        if value < 0:
            raise LimitsError(f"limit {name!r} cannot be negative")
        return value
    if not isinstance(value, str) or not _RATE.match(value):
        raise LimitsError(f"limit {name!r} is a rate such as 20/m or 30/10m, not {value!r}")
    return value


def parse_overrides(raw: str) -> dict[str, str]:
    """``PLAYGROUND_LIMITS``: ``name=value`` pairs separated by commas or spaces."""
    out: dict[str, str] = {}
    for part in re.split(r"[,\s]+", raw.strip()):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise LimitsError(f"PLAYGROUND_LIMITS: {part!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def _scaled(name: str, value: str | int, factor: int) -> str | int:
    if factor == 1 or name in UNSCALED:
        return value
    if isinstance(value, int):
        return value * factor
    count, multi, period = _RATE.match(value).groups()  # type: ignore[union-attr]
    return f"{int(count) * factor}/{multi}{period}"


def table(
    profile: str = "public", overrides: Mapping[str, str | int] | None = None
) -> dict[str, str | int]:
    """The limits in force: the defaults, scaled by the profile, then the operator's overrides
    (which are taken as written, under either profile)."""
    if profile not in PROFILES:
        raise LimitsError(
            f"PLAYGROUND_LIMITS_PROFILE is one of {', '.join(PROFILES)}, not {profile!r}"
        )
    factor = LOAD_TEST_FACTOR if profile == "load-test" else 1
    limits = {name: _scaled(name, value, factor) for name, value in DEFAULTS.items()}
    for name, value in (overrides or {}).items():
        if name not in DEFAULTS:
            raise LimitsError(f"PLAYGROUND_LIMITS: no limit is called {name!r}")
        limits[name] = _check_value(name, value)
    return limits


def current() -> Mapping[str, str | int]:
    """The table in force (read at each call, so that tests may change the setting)."""
    return settings.PLAYGROUND_LIMITS


def cap(name: str) -> int:
    """A limit that is a number (``evaluation_results.user``, ``streams.ip``, ...)."""
    value = current()[name]
    if not isinstance(value, int):
        raise LimitsError(f"limit {name!r} is a rate, not a number")
    return value


def rate(name: str) -> tuple[int, int]:
    """A limit that is a rate, as (how many, in how many seconds)."""
    value = current()[name]
    match = _RATE.match(str(value))
    if isinstance(value, int) or match is None:
        raise LimitsError(f"limit {name!r} is a number, not a rate")
    count, multi, period = match.groups()
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period] * int(multi or 1)
    return int(count), seconds


def describe_rate(name: str) -> str:
    """'20 a minute', '30 in 10 minutes'."""
    count, multi, period = _RATE.match(str(current()[name])).groups()  # type: ignore[union-attr]
    unit = _PERIOD_WORDS[period]
    if multi and int(multi) != 1:
        return f"{int(count):,} in {int(multi)} {unit}s"
    return f"{int(count):,} a{'n' if unit == 'hour' else ''} {unit}"


def client_address(request: HttpRequest) -> str:
    """Who an anonymous requester is: their address (as the proxy set-up reports it, see
    deploy/README.md), an IPv6 address by its /64, since one household or one cloud machine is
    handed a whole /64 and could otherwise take a fresh address for every request."""
    raw = str(request.META.get("REMOTE_ADDR") or "")
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped or address) if address.version == 6 else str(address)


def whose(request: HttpRequest) -> str:
    """The counter key of a requester: their account when signed in, else their address."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_address(request)}"


class Refused(Exception):
    """A requester is over a limit. ``message`` says which and when to come back. Each one made
    is counted for Prometheus by the limit's name (every refusal, of a page, the API, a stream
    or a model call, is made here, whoever answers it)."""

    def __init__(self, limit: str, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message
        self.retry_after = max(1, int(retry_after))
        process_metrics.refused(limit)


def _name_for(request: HttpRequest, what: str) -> str:
    if "." in what:
        return what
    user = getattr(request, "user", None)
    return f"{what}.user" if user is not None and user.is_authenticated else f"{what}.anon"


def _key_for(request: HttpRequest, name: str, key: str | None) -> str:
    whose_ = name.rpartition(".")[2]
    if key is not None:
        return f"{whose_}:{key}"
    if whose_ == "ip":
        return f"ip:{client_address(request)}"
    if whose_ == "account":
        raise LimitsError(f"limit {name!r} needs the account name as key=")
    return whose(request)


def refusal_message(name: str, retry_after: int) -> str:
    what = WORDS[name.partition(".")[0]]
    if retry_after < 120:
        wait = f"{retry_after} second{'s' if retry_after != 1 else ''}"
    elif retry_after < 7200:
        wait = f"{round(retry_after / 60)} minutes"
    else:  # a daily limit: "866 minutes" is hard to read
        wait = f"{round(retry_after / 3600)} hours"
    return f"Too many {what}: at most {describe_rate(name)}. Try again in {wait}."


def hit(request: HttpRequest, what: str, *, key: str | None = None, count: bool = True) -> None:
    """Count one more of ``what`` for this requester (``count=False``: only look) and raise
    :class:`Refused` once they are over the rate.

    ``what`` is a full name (``"signups.ip"``) or a family (``"runs"``: ``runs.user`` when signed
    in, else ``runs.anon``). ``key`` replaces the requester for ``account`` limits."""
    name = _name_for(request, what)
    value = str(current()[name])
    counter = _key_for(request, name, key)
    usage: dict[str, Any] | None = get_usage(
        request,
        group=f"limit:{name}",
        key=lambda _group, _request: counter,
        rate=value,
        method=ALL,
        increment=count,
    )
    if usage is None:  # RATELIMIT_ENABLE is off
        return
    # Only looking: refused when one more would be over the rate.
    over = usage["should_limit"] if count else usage["count"] >= usage["limit"]
    if over:
        retry_after = max(1, int(usage["time_left"]))
        raise Refused(name, refusal_message(name, retry_after), retry_after)


def exceeded(
    request: HttpRequest, what: str, *, key: str | None = None, count: bool = True
) -> Refused | None:
    """Like :func:`hit`, returning the refusal instead of raising it (for code that must end
    its own way, such as a form that keeps what was typed)."""
    try:
        hit(request, what, key=key, count=count)
    except Refused as refused:
        return refused
    return None


# -- amounts: counters that grow by more than one (language-model tokens) -----------------------
# They are django-ratelimit's own counters (the same cache key and fixed window as ``hit``), so
# that ``hit(request, "model_tokens", count=False)`` at a run's start reads what the workers
# spent, and a refusal's Retry-After is the end of that window.


def budget_name(key: str) -> str:
    """The token budget that applies to a run's requester key (``user:<id>``/``ip:<address>``)."""
    return "model_tokens.user" if key.startswith("user:") else "model_tokens.anon"


def _amount_counter(name: str, key: str) -> tuple[Any, str, int, int]:
    """(cache, cache key, limit, seconds until the window ends) of ``name`` for ``key``."""
    value = str(current()[name])
    limit, period = rate(name)
    window = _get_window(key, period)
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    cache_key = _make_cache_key(f"limit:{name}", window, value, key, ALL)
    cache.add(cache_key, 0, period + EXPIRATION_FUDGE)
    return cache, cache_key, limit, max(1, window - int(time.time()))


def reserve(name: str, key: str, amount: int) -> str:
    """Take ``amount`` from ``key``'s allowance of ``name`` before the work that costs it, or
    raise :class:`Refused` (taking nothing) when it would go over. One atomic increment in
    Redis, so concurrent workers can never both pass the limit. Returns the counter it was
    taken from, for :func:`settle` (the window may have turned by then)."""
    cache, cache_key, limit, time_left = _amount_counter(name, key)
    if not getattr(settings, "RATELIMIT_ENABLE", True) or amount <= 0:
        return cache_key
    total = cache.incr(cache_key, amount)
    if total <= limit:
        return cache_key
    cache.decr(cache_key, amount)
    left = max(0, limit - (total - amount))
    what = WORDS[name.partition(".")[0]]
    wait = f"{time_left} seconds" if time_left < 120 else f"{round(time_left / 60)} minutes"
    raise Refused(
        name,
        f"Too many {what}: at most {describe_rate(name)}, {left:,} left, and the next model "
        f"call could use up to {amount:,}. Try again in {wait}.",
        time_left,
    )


def settle(counter: str, delta: int) -> None:
    """Correct a reservation on ``counter`` (what :func:`reserve` returned) by what the work
    really cost (``delta``, either sign). A counter whose window has ended is gone: nothing to
    correct."""
    if not getattr(settings, "RATELIMIT_ENABLE", True) or delta == 0:
        return
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    with contextlib.suppress(ValueError):  # expired meanwhile
        cache.incr(counter, delta)


def spend(name: str, key: str, amount: int) -> None:
    """Count ``amount`` against ``key``'s allowance of ``name`` without checking it."""
    settle(reserve(name, key, 0), amount)


def used(name: str, key: str) -> int:
    """How much of ``name`` ``key`` has used in the current window."""
    cache, cache_key, _limit, _left = _amount_counter(name, key)
    return int(cache.get(cache_key, 0))
