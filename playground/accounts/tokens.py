"""Personal API tokens: making one, and acting as its owner on the routes scripts use.

A token is ``pgt_`` and 43 URL-safe characters: 256 random bits from ``secrets``. Only its
SHA-256 digest is stored. A password hasher (PBKDF2, Argon2) is slow on purpose, to make
guessing a low-entropy password from its hash costly; nobody can enumerate 2**256 secrets
however fast the hash is, and a fast hash lets every request find its token by an indexed
lookup of the digest instead of running a deliberately slow function on each API call.

``Authorization: Bearer <token>`` is read on the JSON API (``/api/...``) and the event stream
of a run (``/runs/<id>/events``) only; pages ignore it (they use the session and its CSRF
token). With a token, the request acts as the token's owner: ``request.user`` is that account,
so every permission, the hiding policy, exam mode and every rate limit of the owner apply. A
session cookie sent along is not used to decide who the requester is, and no CSRF token is
needed (a browser never adds this header to a forged cross-site request by itself). A token
that is unknown, revoked, expired or whose account is disabled gets a 401, never the anonymous
view of the site."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from playground.accounts.models import ApiToken
from playground.lib import ratelimits

PREFIX = "pgt_"
# How often last_used_at may be written for one token: at most one UPDATE a minute, however
# many requests a script sends.
LAST_USED_EVERY = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where a token is read: the API and a run's Server-Sent Events.
TOKEN_ROUTES = re.compile(r"^/(api/|runs/\d+/events$)")
_BEARER = re.compile(r"^Bearer[ ]+(\S+)[ ]*$", re.IGNORECASE)


class TokenLimitReached(Exception):
    """The owner already has as many active tokens as the limits table allows."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    *, user: Any, name: str, scope: str, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token of ``user`` and its secret (which is not kept: show it once). Refused with
    :class:`TokenLimitReached` past ``api_tokens_active.user`` active tokens."""
    secret = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # The owner's row, locked: two requests at once cannot both pass the cap.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        active = (
            ApiToken.objects.filter(user=user, revoked_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .count()
        )
        if active >= ratelimits.cap("api_tokens_active.user"):
            raise TokenLimitReached(
                f"You already have {active} active API tokens, the most one account may have. "
                "Revoke one you no longer use first."
            )
        token = ApiToken.objects.create(
            user=user,
            name=name,
            scope=scope,
            prefix=secret[: len(PREFIX) + 6],
            digest=digest(secret),
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
    return token, secret


def revoke_all(user: Any) -> int:
    """End every token of ``user`` at once (an account that is disabled, a password reset)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


class TokenRefused(Exception):
    """Why a presented token does not authenticate the request (a 401 or a 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authenticate(secret: str, method: str) -> ApiToken:
    """The token for this secret, checked for a request with ``method``; raises
    :class:`TokenRefused` when it may not be used."""
    token = (
        ApiToken.objects.select_related("user").filter(digest=digest(secret)).first()
        if secret.startswith(PREFIX) and len(secret) < 200
        else None
    )
    if token is None:
        raise TokenRefused(
            401,
            "Unknown API token: check that it was copied whole, or create a new one on your "
            "account page (/accounts/).",
        )
    if token.revoked_at is not None:
        raise TokenRefused(401, "This API token was revoked. Create a new one on /accounts/.")
    if token.expired:
        raise TokenRefused(401, "This API token has expired. Create a new one on /accounts/.")
    if not token.user.is_active:
        raise TokenRefused(401, "The account of this API token is disabled.")
    if method not in SAFE_METHODS and token.scope != ApiToken.Scope.RUN:
        raise TokenRefused(
            403,
            "This API token has the scope 'read': it may only read. Starting runs needs a "
            "token with the scope 'run'.",
        )
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_EVERY:
        # Conditional, so that concurrent requests write it once.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return token


def bearer_secret(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None without one (another scheme, such
    as a proxy's Basic authentication, is not ours to read)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer"):
        return None
    match = _BEARER.match(header)
    return match.group(1) if match else ""


def _refusal(refused: TokenRefused) -> JsonResponse:
    response = JsonResponse({"detail": refused.message}, status=refused.status)
    if refused.status == 401:
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


class ApiTokenMiddleware:
    """On the token routes, a request with ``Authorization: Bearer`` acts as the token's owner
    (after Django's authentication middleware, whose session user it replaces)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        secret = bearer_secret(request)
        if secret is None or not TOKEN_ROUTES.match(request.path_info):
            return self.get_response(request)
        try:
            token = authenticate(secret, request.method or "GET")
        except TokenRefused as refused:
            return _refusal(refused)
        user = token.user

        async def auser() -> Any:
            return user

        request.user = user
        request.auser = auser
        request.api_token = token  # type: ignore[attr-defined]
        # The token, not a cookie, carries the authority: no CSRF check (Django's middleware
        # reads this flag; the API's own check reads api_token).
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return self.get_response(request)


def by_token(request: HttpRequest) -> bool:
    """Whether this request was authenticated by an API token."""
    return getattr(request, "api_token", None) is not None
