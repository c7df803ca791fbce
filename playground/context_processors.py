"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    """Flags the base template needs (sign-up link, limits shown in forms)."""
    return {
        "signup_enabled": settings.SIGNUP_ENABLED,
        "max_source_kb": settings.PLAYGROUND_MAX_SOURCE_BYTES // 1000,
        "sandbox_unsafe": settings.PLAYGROUND_SANDBOX_UNSAFE,
    }
