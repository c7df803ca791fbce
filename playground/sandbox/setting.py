"""PLAYGROUND_SANDBOX, read in ONE place: by the worker that starts sandboxes (jail.py) and by
the settings that show the site's banner, so that both agree on every spelling.

No Django here: the sandbox and the ``trace`` command run without it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

BWRAP = "bwrap"
UNSAFE_LOCAL = "unsafe-local"
# The second, explicit switch: unsafe-local on a site that answers on a non-loopback address.
UNSAFE_ANY_HOST = "PLAYGROUND_SANDBOX_UNSAFE_ANY_HOST"
_DEFAULT_ALLOWED_HOSTS = "127.0.0.1,localhost,[::1]"
_DEFAULT_HOST = "127.0.0.1"
_YES = frozenset({"yes", "true", "on", "1"})


@dataclass(frozen=True)
class SandboxSetting:
    """What PLAYGROUND_SANDBOX asks for, and whether that may be done here."""

    mode: str  # "bwrap" or "unsafe-local"; anything else is refused
    unsafe: bool  # unsafe-local is asked for, in any spelling: the site always warns
    refusal: str | None  # for the operator's log: why no program may run with this setting


def _normalise(value: str) -> str:
    return re.sub(r"[\s_-]+", "-", value.strip().lower())


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach (127.0.0.0/8, ::1,
    localhost and its subdomains). ``*``, ``0.0.0.0`` and any other name are not."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in {"localhost", ".localhost"} or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def public_hosts(environ: Mapping[str, str]) -> list[str]:
    """The entries of PLAYGROUND_ALLOWED_HOSTS and PLAYGROUND_HOST that are not loopback."""
    allowed = environ.get("PLAYGROUND_ALLOWED_HOSTS", _DEFAULT_ALLOWED_HOSTS)
    hosts = [h.strip() for h in allowed.split(",") if h.strip()]
    hosts.append(environ.get("PLAYGROUND_HOST", _DEFAULT_HOST).strip() or _DEFAULT_HOST)
    return [h for h in hosts if not is_loopback(h)]


def read_setting(environ: Mapping[str, str] | None = None) -> SandboxSetting:
    """PLAYGROUND_SANDBOX from ``environ`` (default: this process's environment), with case,
    surrounding spaces and ``-``/``_``/inner spaces ignored. unsafe-local is refused unless every
    host the site answers to is loopback or PLAYGROUND_SANDBOX_UNSAFE_ANY_HOST=yes says the
    operator means it."""
    env = os.environ if environ is None else environ
    raw = env.get("PLAYGROUND_SANDBOX", BWRAP)
    mode = _normalise(raw) or BWRAP
    if mode == BWRAP:
        return SandboxSetting(BWRAP, unsafe=False, refusal=None)
    if mode != UNSAFE_LOCAL:
        return SandboxSetting(
            mode,
            unsafe=False,
            refusal=f"PLAYGROUND_SANDBOX must be 'bwrap' or 'unsafe-local', not {raw!r}",
        )
    exposed = public_hosts(env)
    if exposed and _normalise(env.get(UNSAFE_ANY_HOST, "")) not in _YES:
        return SandboxSetting(
            UNSAFE_LOCAL,
            unsafe=True,
            refusal=(
                "PLAYGROUND_SANDBOX=unsafe-local runs programs without any isolation, as the "
                f"worker's own user, and this site answers on {', '.join(exposed)} (from "
                "PLAYGROUND_ALLOWED_HOSTS / PLAYGROUND_HOST): refused. Use the bwrap sandbox, "
                f"or set {UNSAFE_ANY_HOST}=yes if every visitor may run anything as that user."
            ),
        )
    return SandboxSetting(UNSAFE_LOCAL, unsafe=True, refusal=None)
