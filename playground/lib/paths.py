"""Where the embedded services keep their data and sockets (shared by settings and the launcher)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO_DIR = Path(__file__).resolve().parents[2]
# Unix socket paths are limited to 107 bytes; PostgreSQL's socket name adds 17.
_MAX_SOCKET_DIR = 80


def var_dir() -> Path:
    """The directory for local state (embedded databases, logs, the generated secret key)."""
    return Path(os.environ.get("PLAYGROUND_VAR_DIR") or REPO_DIR / "var").resolve()


def socket_dir(base: Path | None = None) -> Path:
    """Directory for the embedded services' unix sockets; under /tmp when var/ is too deep."""
    base = base or var_dir()
    candidate = base / "run"
    if len(str(candidate)) <= _MAX_SOCKET_DIR:
        return candidate
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    return Path("/tmp") / f"playground-{digest}"  # noqa: S108 - deterministic, created 0700 by the launcher


def embedded_database_url(base: Path | None = None) -> str:
    """URL of the embedded PostgreSQL (unix socket, trust auth, database ``playground``)."""
    return f"postgresql://postgres@/playground?host={socket_dir(base)}"


def over_the_network(url: str) -> bool:
    """Whether a database URL names a server reached over the network (a host name or an
    address, loopback included), not a unix socket on this machine (the embedded server's)."""
    parts = urlsplit(url)
    socket = parse_qs(parts.query).get("host", [""])[0]
    host = socket or parts.hostname or ""
    return bool(host) and not host.startswith("/")


def database_url(settings_dict: dict[str, Any]) -> str:
    """The URL of a Django database connection (for child processes, e.g. on the test database)."""
    s = settings_dict
    host = s["OPTIONS"].get("host") or s["HOST"]
    if str(host).startswith("/"):
        return f"postgresql://{s['USER']}:{s['PASSWORD']}@/{s['NAME']}?host={host}"
    return f"postgresql://{s['USER']}:{s['PASSWORD']}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def embedded_redis_url(base: Path | None = None, db: int = 0) -> str:
    """URL of the embedded Redis (unix socket), database ``db`` of its 16."""
    return f"unix://{socket_dir(base)}/redis.sock?db={db}"


def xdist_worker_redis_db() -> int:
    """The embedded Redis database of this pytest-xdist worker (``gw0``: 1, ``gw1``: 2, ...;
    0 outside xdist). `make test` runs the suite in two workers that share the embedded
    services: pytest-django gives each a PostgreSQL database of its own (``test_playground_gw0``)
    and this gives each a Redis database of its own, so that one worker's cache, queues, leases
    and counters never meet the other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
