"""The tool's own RSA keys: made on first need (or by ``manage.py lti_key --rotate``), the
newest signs, the public halves of every key not retired are the tool's JWKS."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone
from jwt.algorithms import RSAAlgorithm

from playground.lti.models import ToolKey

# A rotated key stays published this long: platforms cache key sets for hours.
RETIRE_AFTER = timedelta(days=2)


def _make() -> ToolKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    kid = secrets.token_urlsafe(16)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return ToolKey.objects.create(kid=kid, private_pem=pem, public_jwk=jwk)


def signing_key() -> ToolKey:
    """The newest key not retired, made if there is none (one at a time: a lock on the table)."""
    key = ToolKey.objects.filter(retired_at__isnull=True).first()
    if key is not None:
        return key
    with transaction.atomic():
        # Two first launches at once must not make two keys: the second waits for the first.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [7_113_001])
        key = ToolKey.objects.filter(retired_at__isnull=True).first()
        return key if key is not None else _make()


def rotate() -> ToolKey:
    """A new signing key; the ones before it retire after RETIRE_AFTER (still published until
    then), and keys retired longer ago are deleted."""
    now = timezone.now()
    with transaction.atomic():
        ToolKey.objects.filter(retired_at__isnull=True).update(retired_at=now + RETIRE_AFTER)
        ToolKey.objects.filter(retired_at__lt=now).delete()
        return _make()


def jwks() -> dict[str, Any]:
    """The public key set: every key not yet retired (a rotated one until its time is up)."""
    now = timezone.now()
    keys = ToolKey.objects.exclude(retired_at__lt=now).order_by("-created_at", "-id")
    return {"keys": [k.public_jwk for k in keys]}
