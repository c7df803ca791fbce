"""LTI 1.3's messages on the wire, with PyJWT: the id_token a platform posts (signature from its
key set, iss, aud, azp, exp, nonce, deployment, message type), and what this tool signs (a
deep-linking response, the client assertion of a token request). docs/LTI.md says why this is
PyJWT and not PyLTI1p3."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
from jwt import PyJWKClient

from playground.lti.models import Platform, ToolKey

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
ROLES = LTI + "roles"
CONTEXT = LTI + "context"
RESOURCE_LINK = LTI + "resource_link"
CUSTOM = LTI + "custom"
TARGET_LINK_URI = LTI + "target_link_uri"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DL_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)

# Clock skew allowed between the platform and this site.
LEEWAY_S = 60
HTTP_TIMEOUT_S = 10.0

# One key-set client per URL and process: a cache of public keys (refetched on an unknown kid),
# not state that must be shared between processes.
_key_sets: dict[str, PyJWKClient] = {}


class LaunchRefused(Exception):
    """A message this tool does not accept; ``message`` is shown to the person (escaped)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _key_set(url: str) -> PyJWKClient:
    client = _key_sets.get(url)
    if client is None:
        client = PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=int(HTTP_TIMEOUT_S))
        _key_sets[url] = client
    return client


def verify_id_token(token: str, platform: Platform) -> dict[str, Any]:
    """The claims of a platform's id_token, every check of LTI 1.3 Core 5.1.3 made but the
    nonce's single use and the deployment (the caller's, with state at hand)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise LaunchRefused("The launch's id_token is not a JWT.") from None
    if header.get("alg") != "RS256":
        raise LaunchRefused("The launch's id_token must be signed with RS256.")
    try:
        key = _key_set(platform.jwks_url).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise LaunchRefused("The LMS's key set could not be fetched; try again.", 502) from None
    except jwt.PyJWKClientError:
        raise LaunchRefused(
            "The id_token was signed with a key the LMS does not publish."
        ) from None
    except (jwt.PyJWTError, ValueError):
        raise LaunchRefused("The LMS's key set could not be read.", 502) from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=platform.client_id,
            issuer=platform.issuer,
            leeway=LEEWAY_S,
            options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
        )
    except jwt.ExpiredSignatureError:
        raise LaunchRefused("The launch expired: start it again from the LMS.") from None
    except jwt.InvalidAudienceError:
        raise LaunchRefused("The launch was meant for another tool (its audience).") from None
    except jwt.InvalidIssuerError:
        raise LaunchRefused(
            "The launch came from another LMS than the one it started with."
        ) from None
    except jwt.InvalidSignatureError:
        raise LaunchRefused("The launch's signature is not valid.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise LaunchRefused(f"The launch lacks the claim {exc.claim!r}.") from None
    except jwt.PyJWTError:
        raise LaunchRefused("The launch's id_token could not be verified.") from None
    aud = claims["aud"]
    audiences = aud if isinstance(aud, list) else [aud]
    azp = claims.get("azp")
    if (len(audiences) > 1 and azp is None) or (azp is not None and azp != platform.client_id):
        raise LaunchRefused("The launch was meant for another tool (its azp).")
    if claims.get(VERSION) != "1.3.0":
        raise LaunchRefused("Only LTI 1.3.0 launches are accepted.")
    if claims.get(MESSAGE_TYPE) not in MESSAGE_TYPES:
        raise LaunchRefused("This tool accepts resource-link and deep-linking launches only.")
    if not str(claims.get("sub") or ""):
        raise LaunchRefused("Anonymous launches are not accepted: the LMS sent no user.")
    return claims


def sign(claims: dict[str, Any], key: ToolKey) -> str:
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def deep_linking_response(
    *,
    platform: Platform,
    key: ToolKey,
    deployment_id: str,
    data: str | None,
    items: list[dict[str, Any]],
) -> str:
    """The signed LtiDeepLinkingResponse (LTI Deep Linking 2.0, 4.2)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + 600,
        "nonce": secrets.token_urlsafe(16),
        MESSAGE_TYPE: "LtiDeepLinkingResponse",
        VERSION: "1.3.0",
        DEPLOYMENT_ID: deployment_id,
        DL_CONTENT_ITEMS: items,
    }
    if data is not None:
        claims[DL_DATA] = data
    return sign(claims, key)


def client_assertion(platform: Platform, key: ToolKey) -> str:
    """The JWT this tool authenticates with at the platform's token URL (RFC 7523)."""
    now = int(time.time())
    return sign(
        {
            "iss": platform.client_id,
            "sub": platform.client_id,
            "aud": platform.auth_token_url,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(16),
        },
        key,
    )
