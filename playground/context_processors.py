"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest

from playground.sandbox.setting import read_setting


def site(request: HttpRequest) -> dict[str, object]:
    """Flags the base template needs (sign-up link, limits shown in forms, sandbox warnings)."""
    # Read as the worker reads it (same function, same environment, at every request): the
    # banner cannot miss a spelling that the worker accepts.
    sandbox = read_setting()
    return {
        "signup_enabled": settings.SIGNUP_ENABLED,
        "max_source_kb": settings.PLAYGROUND_MAX_SOURCE_BYTES // 1000,
        "sandbox_unsafe": sandbox.unsafe,
        "sandbox_refused": sandbox.refusal is not None,
    }
