"""Site-wide pages: home and the health check."""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

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


def _check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when PostgreSQL and Redis answer, 503 when not. Anyone sees only ok/down; staff also
    see which part is down and why (the log always has it): error texts name hosts, ports,
    sockets and database users."""
    checks: dict[str, dict[str, object]] = {}
    for name, check in (("database", _check_database), ("redis", _check_redis)):
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
