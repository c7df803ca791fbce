"""Assignment and Grade Services, the tool's side: an access token by the client-credentials
grant with a signed client assertion (cached in the shared cache until shortly before it
expires), the link's line item found or made, and a score posted to it."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.core.cache import cache

from playground.lti import keys, protocol
from playground.lti.models import Platform, ResourceLink

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
SCOPES = (protocol.SCOPE_LINEITEM, protocol.SCOPE_SCORE)


class PlatformError(Exception):
    """The platform refused or failed; ``retry`` says whether trying later may help."""

    def __init__(self, message: str, *, status: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code < 300:
        return
    retry = response.status_code >= 500 or response.status_code in (408, 429)
    raise PlatformError(
        f"{what}: the LMS answered {response.status_code}", status=response.status_code, retry=retry
    )


def _token_key(platform: Platform, scopes: tuple[str, ...]) -> str:
    # The registration's token URL and client id are in the key: an edited registration (or a
    # database restored beside a live cache) never gets another one's token.
    what = "\n".join([platform.auth_token_url, platform.client_id, *scopes])
    digest = hashlib.sha256(what.encode()).hexdigest()[:24]
    return f"lti:token:{platform.pk}:{digest}"


def access_token(client: httpx.Client, platform: Platform, scopes: tuple[str, ...] = SCOPES) -> str:
    key = _token_key(platform, scopes)
    token = cache.get(key)
    if isinstance(token, str):
        return token
    response = client.post(
        platform.auth_token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": protocol.client_assertion(platform, keys.signing_key()),
            "scope": " ".join(scopes),
        },
    )
    _check(response, "Token request")
    body = response.json()
    body = body if isinstance(body, dict) else {}
    token = str(body.get("access_token") or "")
    if not token:
        raise PlatformError("Token request: the LMS sent no access_token", retry=False)
    lifetime = int(body.get("expires_in") or 3600)
    cache.set(key, token, max(30, lifetime - 60))
    return token


def forget_token(platform: Platform) -> None:
    cache.delete(_token_key(platform, SCOPES))


def line_item(
    client: httpx.Client,
    token: str,
    link: ResourceLink,
    *,
    label: str,
    maximum: float,
    resource_id: str,
) -> str:
    """The link's line item URL: the one the launch named, else the one with this resource id
    in the context's line items, else a new one (remembered on the link)."""
    if link.lineitem_url:
        return link.lineitem_url
    auth = {"Authorization": f"Bearer {token}"}
    found = client.get(
        link.lineitems_url,
        params={"resource_link_id": link.resource_link_id, "resource_id": resource_id},
        headers={**auth, "Accept": LINEITEMS},
    )
    _check(found, "Line items")
    items = found.json()
    url = ""
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("resourceId") == resource_id and item.get("id"):
                url = str(item["id"])
                break
    if not url:
        made = client.post(
            link.lineitems_url,
            json={
                "scoreMaximum": maximum,
                "label": label,
                "resourceId": resource_id,
                "resourceLinkId": link.resource_link_id,
                "tag": "grade",
            },
            headers={**auth, "Content-Type": LINEITEM, "Accept": LINEITEM},
        )
        _check(made, "New line item")
        body = made.json()
        url = str(body.get("id") or "") if isinstance(body, dict) else ""
        if not url:
            raise PlatformError("New line item: the LMS sent no id", retry=False)
    ResourceLink.objects.filter(pk=link.pk).update(lineitem_url=url[:1000])
    link.lineitem_url = url
    return url


def scores_url(lineitem_url: str) -> str:
    """``<line item>/scores``, the line item's query (if any) kept after the path."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def post_score(client: httpx.Client, token: str, lineitem_url: str, score: dict[str, Any]) -> int:
    response = client.post(
        scores_url(lineitem_url),
        json=score,
        headers={"Authorization": f"Bearer {token}", "Content-Type": SCORE},
    )
    _check(response, "Score")
    return response.status_code
