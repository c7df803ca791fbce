"""Starting runs (the writes that touch several models, and the hand-off to Celery)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from playground.programs.models import Program
from playground.runs.models import Run


def start_real_run(
    *, program: Program, user: Any, anon_token: str | None, limits: dict[str, Any] | None = None
) -> Run:
    """Queue a real (sandboxed) execution of ``program``; the worker picks it up after commit."""
    from playground.runs.tasks import execute_real_run

    with transaction.atomic():
        run = Run.objects.create(
            program=program,
            method="real",
            source=program.source,
            call=program.call,
            stdin=program.stdin,
            limits=limits or {},
            owner=user if getattr(user, "is_authenticated", False) else None,
            anon_owner="" if getattr(user, "is_authenticated", False) else (anon_token or ""),
        )
        transaction.on_commit(lambda: execute_real_run.delay(run.pk))
    return run
