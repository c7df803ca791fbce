"""LTI 1.3: the platforms (LMSs) an admin registered, the tool's own signing keys, and how the
LMS's courses, links and people map onto this site's courses, assignments and accounts. The
classroom's tables are untouched: every link to them lives here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

from playground.classroom.models import Assignment, Course


class Platform(models.Model):
    """One registration of this tool in an LMS: what the LMS's admin gave ours (client id,
    deployment ids) and where the LMS's endpoints are."""

    name = models.CharField(max_length=100, help_text="Shown to staff, e.g. 'Canvas (main)'.")
    issuer = models.URLField(max_length=500, help_text="The 'iss' of the LMS's id_tokens.")
    client_id = models.CharField(max_length=255, help_text="This tool's client id in the LMS.")
    deployment_ids = models.JSONField(
        default=list, blank=True, help_text="The deployment ids launches may carry."
    )
    auth_login_url = models.URLField(max_length=500, help_text="The LMS's OIDC auth endpoint.")
    auth_token_url = models.URLField(max_length=500, help_text="The LMS's OAuth2 token URL.")
    jwks_url = models.URLField(max_length=500, help_text="The LMS's public key set.")
    # Who may frame this site during a session launched from this platform (CSP
    # frame-ancestors), space-separated origins; empty: the origin of the auth endpoint.
    frame_origins = models.CharField(max_length=500, blank=True, default="")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer})"

    def origins(self) -> list[str]:
        """The origins allowed to frame this site for this platform's launches."""
        if self.frame_origins.strip():
            return self.frame_origins.split()
        parts = urlsplit(self.auth_login_url)
        return [f"{parts.scheme}://{parts.netloc}"]


class ToolKey(models.Model):
    """An RSA key this tool signs with (client assertions, deep-link responses). The newest
    active one signs; older ones stay in the public key set until retired, so that a platform
    holding a cached key set still verifies what was signed just before a rotation. The private
    half lives in the database only, never in the repository (docs/LTI.md)."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.kid


class LtiContext(models.Model):
    """An LMS course (its context) linked to one course here, once."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "context_id"], name="lti_context_once")
        ]

    def __str__(self) -> str:
        return f"{self.title or self.context_id} -> {self.course}"


class ResourceLink(models.Model):
    """A link placed in the LMS course: to one assignment (deep linking put its id in the
    link's custom parameters) or to the course. The grade service's endpoints it came with say
    where its scores go."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="links")
    resource_link_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    lineitems_url = models.URLField(max_length=1000, blank=True)
    lineitem_url = models.URLField(max_length=1000, blank=True)
    ags_scopes = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["context", "resource_link_id"], name="lti_resource_link_once"
            )
        ]

    def __str__(self) -> str:
        return self.title or self.resource_link_id

    @property
    def can_send_scores(self) -> bool:
        scope = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
        return bool(self.lineitem_url or self.lineitems_url) and scope in (self.ags_scopes or [])


class LtiUser(models.Model):
    """A person of the LMS (``sub`` of one issuer) and the account made for them here. Never
    matched by e-mail: an address the LMS sends is not proof of owning a local account."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="users")
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "sub"], name="lti_user_once")]

    def __str__(self) -> str:
        return f"{self.sub} at {self.platform.issuer}"


class ScoreSend(models.Model):
    """The score of one student on one link's line item: what was last sent and how it went.
    One row per (link, student); the task sends the grade as it is when it runs, so sending
    again is harmless and a later grade never loses to an older one."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    link = models.ForeignKey(ResourceLink, on_delete=models.CASCADE, related_name="scores")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    grading_progress = models.CharField(max_length=20, blank=True)
    activity_progress = models.CharField(max_length=20, blank=True)
    tries = models.PositiveIntegerField(default=0)
    # Times the periodic sweep sent it again since it was last queued by a grade change or a
    # resend (tasks.resend_stale_scores); past worktimes.MAX_RESENDS it is left failed.
    resends = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # When its task was last sent to the broker (queued, resent, or a retry scheduled).
    queued_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["link", "student"]
        constraints = [models.UniqueConstraint(fields=["link", "student"], name="lti_score_once")]

    def __str__(self) -> str:
        return f"{self.student} on {self.link}: {self.status}"


class ScoreLog(models.Model):
    """Every try at sending a score, appended (the passback's audit trail)."""

    send = models.ForeignKey(ScoreSend, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=200)
    by = models.CharField(max_length=150, blank=True, help_text="Who asked for a resend.")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("A score log line is never changed.")
        super().save(*args, **kwargs)
