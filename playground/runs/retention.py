"""Expiry of what anonymous visitors leave behind: a periodic task that Celery beat sends
(``CELERY_BEAT_SCHEDULE`` in the settings).

A run made without an account (``owner`` empty, an ``anon_owner`` token set) is deleted
``PLAYGROUND_ANON_RUN_TTL_HOURS`` after it was made, with its traces and share links; each share
link's token is remembered for a year so that the link answers "expired", not "not found".
Runs with neither an owner nor a token (``manage.py bench``, answer keys) are not anonymous
visitors' and stay. An anonymous *private* program older than the TTL goes too once no run of
anyone refers to it (nobody can reach it after its session ends); an anonymous program made public
stays, like any public program, and so does one a course item uses.

Deletes go in batches, each in its own short transaction, rows locked with SKIP LOCKED: a
second copy of the task (two beats, a retried message) takes other rows or none, and running it
again deletes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from playground.programs.models import Dataset, Program
from playground.runs.models import Run
from playground.sharing.models import ExpiredLink, ShareLink

log = logging.getLogger(__name__)

BATCH = 500
# How long an expired link keeps saying "expired" before it is an ordinary unknown link.
LINK_MEMORY = timedelta(days=365)


def expired_runs(cutoff: datetime) -> QuerySet[Run]:
    """Anonymous visitors' runs made before ``cutoff``."""
    return Run.objects.filter(owner__isnull=True, created_at__lt=cutoff).exclude(anon_owner="")


def orphaned_programs(cutoff: datetime) -> QuerySet[Program]:
    """Anonymous visitors' private programs made before ``cutoff`` that nothing refers to."""
    from playground.classroom.models import Item

    return (
        Program.objects.filter(
            owner__isnull=True, is_public=False, dataset=Dataset.USER, created_at__lt=cutoff
        )
        .exclude(anon_owner="")
        .exclude(Exists(Run.objects.filter(program=OuterRef("pk"))))
        .exclude(Exists(Item.objects.filter(program=OuterRef("pk"))))
    )


def delete_in_batches(
    queryset: QuerySet[Any],
    batch_size: int,
    before_delete: Callable[[list[int]], None] | None = None,
) -> int:
    """Delete the rows of ``queryset`` ``batch_size`` at a time; returns how many went.

    Walks the primary key upwards so that a big table is read once per call, not once per
    batch; rows another transaction holds are skipped (the next call takes them)."""
    model = queryset.model
    deleted, after = 0, 0
    while True:
        with transaction.atomic():
            ids = list(
                queryset.filter(pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            if before_delete is not None:
                before_delete(ids)
            # only("pk"): the collector needs the ids, not sources and model text.
            model.objects.filter(pk__in=ids).only("pk").delete()
        deleted += len(ids)
        after = ids[-1]


def remember_links(run_ids: list[int]) -> None:
    """Each share link of these runs answers "expired" (not "not found") once they are gone."""
    tokens = ShareLink.objects.filter(run_id__in=run_ids).values_list("token", flat=True)
    ExpiredLink.objects.bulk_create(
        [ExpiredLink(token=token) for token in tokens], ignore_conflicts=True
    )


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def expire_anonymous_runs(batch_size: int = BATCH) -> dict[str, int]:
    """Delete anonymous runs older than the TTL, then the anonymous programs they leave behind."""
    hours = settings.PLAYGROUND_ANON_RUN_TTL_HOURS
    if hours <= 0:
        return {"runs": 0, "programs": 0, "links": 0}
    now = timezone.now()
    cutoff = now - timedelta(hours=hours)
    runs = delete_in_batches(expired_runs(cutoff), batch_size, before_delete=remember_links)
    programs = delete_in_batches(orphaned_programs(cutoff), batch_size)
    forgotten = ExpiredLink.objects.filter(expired_at__lt=now - LINK_MEMORY)
    links = delete_in_batches(forgotten, batch_size)
    if runs or programs:
        log.info("expired %d anonymous run(s) and %d anonymous program(s)", runs, programs)
    return {"runs": runs, "programs": programs, "links": links}
