"""When a worker starts, runs left unfinished by a worker that died are sent again; when an
anonymous visitor logs in or signs up, their runs move to the account (as their programs do)."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from playground.programs.signals import ANON_TOKEN_KEY

log = logging.getLogger(__name__)
# Longer than any task's hard time limit (the emulation task's is 660 s): such a run is stuck.
STALE_AFTER_S = 15 * 60


@worker_ready.connect
def recover_unfinished_runs(sender: Any = None, **kwargs: Any) -> None:
    from playground.runs.services import requeue_stale_runs

    try:
        requeued = requeue_stale_runs(older_than_s=STALE_AFTER_S)
    except Exception:  # the worker must start even if the database is briefly away
        log.exception("could not look for unfinished runs")
        return
    if requeued:
        log.warning("sent %d unfinished run(s) again: %s", len(requeued), requeued)


@receiver(user_logged_in, dispatch_uid="runs-claim-anonymous")
def claim_anonymous_runs(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Without this the visitor's runs would be unreachable after logging in (the pages look
    runs up by account once signed in), and would expire as anonymous ones."""
    from playground.runs.models import Run

    token = request.session.get(ANON_TOKEN_KEY) if request is not None else None
    if token:
        Run.objects.filter(owner__isnull=True, anon_owner=token).update(owner=user, anon_owner="")
