"""Share links: an unguessable, revocable, read-only link to one run."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

from playground.runs.models import Run


def new_token() -> str:
    """192 random bits, URL-safe; unrelated to the run's id."""
    return secrets.token_urlsafe(24)


class ShareLinkQuerySet(models.QuerySet["ShareLink"]):
    def active(self) -> ShareLinkQuerySet:
        # A run of a program that staff unpublished is not shown through its links while the
        # program stays locked (playground/moderation): a link would otherwise keep spreading it.
        return self.filter(revoked_at__isnull=True, run__program__moderation_lock__isnull=True)


class ShareLink(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="share_links")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Share link of run #{self.run_id}"

    def get_absolute_url(self) -> str:
        return reverse("sharing:view", args=[self.token])


class ExpiredLink(models.Model):
    """The token of a share link whose run expired (runs made without an account are deleted
    after PLAYGROUND_ANON_RUN_TTL_HOURS), so that the link says so instead of "not found"."""

    token = models.CharField(max_length=64, unique=True)
    expired_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"Expired share link ({self.expired_at:%Y-%m-%d})"
