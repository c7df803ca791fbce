"""When a worker starts, it may start sandboxes only if it is the sandbox queue's; when an
anonymous visitor logs in or signs up, their runs move to the account (as their programs do).
(Runs a dead worker left unfinished are sent again by the reaper: recovery.py.)"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from playground import sandbox
from playground.programs.signals import ANON_TOKEN_KEY


@worker_init.connect(dispatch_uid="runs-sandbox-home")
def sandbox_only_on_its_queue(sender: Any = None, **kwargs: Any) -> None:
    """A worker that consumes anything but the sandbox queue refuses to start a sandbox (its
    pool children inherit the refusal): untrusted code has one home, the sandbox workers, which
    have the container permissions bubblewrap needs and no secrets; the others send it there."""
    app = getattr(sender, "app", None)
    queues = set(app.amqp.queues.consume_from or {}) if app is not None else set()
    if queues != {settings.PLAYGROUND_SANDBOX_QUEUE}:
        sandbox.forbid(f"a worker of the queues {', '.join(sorted(queues))}")


@receiver(user_logged_in, dispatch_uid="runs-claim-anonymous")
def claim_anonymous_runs(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Without this the visitor's runs would be unreachable after logging in (the pages look
    runs up by account once signed in), and would expire as anonymous ones."""
    from playground.runs.models import Run

    token = request.session.get(ANON_TOKEN_KEY) if request is not None else None
    if token:
        Run.objects.filter(owner__isnull=True, anon_owner=token).update(owner=user, anon_owner="")
