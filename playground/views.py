"""Site-wide pages: home and the health check."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from playground.lib import redis_roles
from playground.programs.forms import ProgramForm
from playground.programs.models import Dataset, Program, Puzzle, Task, TaskExample

log = logging.getLogger(__name__)

EXAMPLE_PROGRAM = """def f(nums):
    total = 0
    for n in nums:
        if n % 2 == 0:
            total += n
        else:
            total -= 1
    return total
"""


def home(request: HttpRequest) -> HttpResponse:
    form = ProgramForm(initial={"source": EXAMPLE_PROGRAM, "call": "f([1, 2, 3, 4])"})
    counts = {
        "cruxeval": Program.objects.filter(dataset=Dataset.CRUXEVAL).count(),
        "humaneval": Program.objects.filter(dataset=Dataset.HUMANEVAL).count(),
        "p3": Puzzle.objects.count(),
        "bbh_tasks": Task.objects.count(),
        "bbh_examples": TaskExample.objects.count(),
    }
    return render(request, "home.html", {"form": form, "counts": counts})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis_checks() -> list[tuple[str, Callable[[], None]]]:
    """One check per Redis server the site uses (lib/redis_roles.py): named ``redis`` when one
    serves every role, else after the roles it serves (``redis:cache+events``)."""
    roles: dict[str, list[str]] = {}
    for role, url in settings.REDIS_ROLES.items():
        roles.setdefault(url, []).append(role)
    for url in settings.PLAYGROUND_REDIS_CHANNELS_URLS:
        roles.setdefault(url, []).append("channels")
    checks: list[tuple[str, Callable[[], None]]] = []
    for url, served in roles.items():
        name = "redis" if len(roles) == 1 else "redis:" + "+".join(dict.fromkeys(served))
        checks.append((name, partial(_check_redis, url)))
    return checks


def _check_redis(url: str) -> None:
    client = redis_roles.new_client(url, socket_timeout=2, retry=False)
    try:
        client.ping()
    finally:
        client.close()


@never_cache
def livez(request: HttpRequest) -> JsonResponse:
    """200 while this process answers requests, whatever PostgreSQL and Redis do: a liveness
    probe. A restart cures a stuck process, not a database that is down, so /healthz (which
    checks them) is for readiness and load balancers, never for restarting."""
    return JsonResponse({"status": "alive"})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when PostgreSQL and Redis answer, 503 when not (readiness; /livez is liveness).
    Anyone sees only ok/down; staff also see which part is down and why (the log always has
    it): error texts name hosts, ports, sockets and database users."""
    checks: dict[str, dict[str, object]] = {}
    for name, check in [("database", _check_database), *_redis_checks()]:
        t0 = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means "down"; the type is enough to act on
            error = f"{type(exc).__name__}: {exc}"[:300]
            log.error("healthz: %s is down: %s", name, error)
            checks[name] = {"ok": False, "error": error}
        else:
            checks[name] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    down = [name for name, result in checks.items() if not result["ok"]]
    status = 503 if down else 200
    body: dict[str, object] = {"status": "down" if down else "ok"}
    if _is_staff(request):
        body.update(down=down, checks=checks)
    return JsonResponse(body, status=status)


def _is_staff(request: HttpRequest) -> bool:
    """Whether a staff user asks; False when that cannot be known (the session and the user
    live in the database, which may be the part that is down)."""
    try:
        return bool(request.user.is_staff)
    except Exception:
        return False
