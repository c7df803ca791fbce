"""A session that an LTI launch signed in may live in the LMS's iframe: its responses may be
framed by that platform's origins (CSP frame-ancestors, no X-Frame-Options), and its session
and CSRF cookies are SameSite=None (over HTTPS only, as browsers require), so that they reach
this site from inside the frame. Every other session keeps the site's defaults: frames refused,
cookies Lax."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def origin_of(url: str) -> str:
    """The scheme://host[:port] of a URL, as a CSP source ('none' if it is not one)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    ok = parts.scheme in ("http", "https") and parts.netloc and origin.isascii()
    return origin if ok and not any(c in origin for c in " ;,'\"\r\n") else "'none'"


class LtiFrameMiddleware:
    """Placed before SessionMiddleware: it sees the cookies that one sets."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        lti = session.get("lti") if session is not None else None
        if not isinstance(lti, dict) or getattr(response, "_csp_replace", None):
            return response
        origins = [
            o for o in (origin_of(str(u)) for u in lti.get("origins") or []) if o != "'none'"
        ]
        if origins:
            response._csp_replace = {"frame-ancestors": origins}  # type: ignore[attr-defined]
            if "X-Frame-Options" in response:
                del response["X-Frame-Options"]
        if request.is_secure():
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                if name in response.cookies:
                    response.cookies[name]["samesite"] = "None"
                    response.cookies[name]["secure"] = True
        return response
