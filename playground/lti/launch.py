"""An LTI 1.3 launch from the OIDC login initiation to the person signed in, in the right
course or assignment with the role the LMS gave them.

State and nonce live in the shared cache (Redis), never in one process: the login initiation
stores them under the state for ten minutes; the launch takes the state once, and a nonce is
accepted once per issuer (``cache.add``, atomic in Redis), so a replayed id_token is refused
even with a fresh state."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.text import slugify

from playground.classroom import audit
from playground.classroom.models import Assignment, Course, Membership, Role
from playground.lti import protocol
from playground.lti.models import LtiContext, LtiUser, Platform, ResourceLink
from playground.lti.protocol import LaunchRefused

STATE_TTL_S = 600
DEEP_LINK_TTL_S = 3600
COOKIE_PREFIX = "lti-state-"

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
TEACHING_ASSISTANT = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
)


def state_cookie_name(state: str) -> str:
    return COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


@dataclass
class LoginRedirect:
    url: str
    state: str


def find_platform(iss: str, client_id: str) -> Platform:
    platforms = list(Platform.objects.filter(issuer=iss, active=True))
    if client_id:
        platforms = [p for p in platforms if p.client_id == client_id]
    if not platforms:
        raise LaunchRefused("This LMS is not registered with this site (ask its admin).", 403)
    if len(platforms) > 1:
        raise LaunchRefused("Several registrations of this LMS: it must send its client_id.")
    return platforms[0]


# The longest login parameter taken (an LMS's issuer, hints and URLs are far shorter).
MAX_PARAM = 2048
# What a state made here looks like (secrets.token_urlsafe(32)): anything else is not ours, and
# must not reach a cache key.
STATE_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,100}")


def _param(params: Any, name: str) -> str:
    """A login parameter as text: refused when it could not be stored or looked up (too long,
    or holding a NUL or another control character)."""
    value = str(params.get(name) or "")
    if len(value) > MAX_PARAM or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise LaunchRefused(f"The LMS's login request has an unreadable {name}.")
    return value


def begin_login(params: Any, *, launch_url: str) -> LoginRedirect:
    """The OIDC third-party login initiation: where to send the browser (the platform's auth
    endpoint), with a new state and nonce kept in the cache."""
    iss = _param(params, "iss")
    login_hint = _param(params, "login_hint")
    target = _param(params, "target_link_uri")
    if not iss or not login_hint or not target:
        raise LaunchRefused("The LMS's login request lacks iss, login_hint or target_link_uri.")
    platform = find_platform(iss, _param(params, "client_id"))
    if urlsplit(target).netloc != urlsplit(launch_url).netloc:
        raise LaunchRefused("The launch's target is not this site.")
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    cache.set(f"lti:state:{state}", {"platform": platform.pk, "nonce": nonce}, STATE_TTL_S)
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": launch_url,
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if _param(params, "lti_message_hint"):
        query["lti_message_hint"] = str(params["lti_message_hint"])
    separator = "&" if "?" in platform.auth_login_url else "?"
    return LoginRedirect(platform.auth_login_url + separator + urlencode(query), state)


@dataclass
class Launch:
    platform: Platform
    claims: dict[str, Any]
    user: Any
    course: Course
    role: str
    link: ResourceLink | None
    deep_link: str  # the key of a deep-linking request's settings in the cache, or ""

    @property
    def message_type(self) -> str:
        return str(self.claims.get(protocol.MESSAGE_TYPE))


def map_role(roles: Any) -> str | None:
    """The course role the LMS's roles mean; None: none this site knows."""
    names = {str(r) for r in roles} if isinstance(roles, list) else set()
    if TEACHING_ASSISTANT in names:
        return Role.ASSISTANT
    if names & {MEMBERSHIP + "Instructor", "Instructor"}:
        return Role.INSTRUCTOR
    if names & {MEMBERSHIP + "Learner", "Learner"}:
        return Role.STUDENT
    return None


def verify(
    *, state: str, id_token: str, state_cookie: str | None
) -> tuple[Platform, dict[str, Any]]:
    """The verified claims of a launch POST; raises LaunchRefused with the reason."""
    if not state or not id_token:
        raise LaunchRefused("The launch lacks its state or id_token.")
    saved = cache.get(f"lti:state:{state}") if STATE_SHAPE.fullmatch(state) else None
    if not isinstance(saved, dict):
        raise LaunchRefused("This launch is unknown or expired: start it again from the LMS.")
    if state_cookie != state:
        raise LaunchRefused(
            "Your browser did not send back the cookie this launch set. Open the tool in a new "
            "window (the LMS offers it) or allow this site's cookies, then launch again.",
            403,
        )
    cache.delete(f"lti:state:{state}")
    platform = Platform.objects.filter(pk=saved["platform"], active=True).first()
    if platform is None:
        raise LaunchRefused("This LMS is no longer registered with this site.", 403)
    claims = protocol.verify_id_token(id_token, platform)
    if claims["nonce"] != saved["nonce"]:
        raise LaunchRefused("The launch's nonce is not the one this login asked for.")
    nonce_key = (
        "lti:nonce:" + hashlib.sha256(f"{platform.issuer} {claims['nonce']}".encode()).hexdigest()
    )
    if not cache.add(nonce_key, 1, STATE_TTL_S + protocol.LEEWAY_S * 2):
        raise LaunchRefused("This launch was already used (a replayed nonce).")
    if str(claims.get(protocol.DEPLOYMENT_ID) or "") not in platform.deployment_ids:
        raise LaunchRefused("This LMS deployment is not registered with this site.", 403)
    return platform, claims


def _lock(name: str) -> None:
    """A transaction-long PostgreSQL advisory lock on this name."""
    key = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _local_user(platform: Platform, claims: dict[str, Any]) -> Any:
    """The account of this LMS person (issuer + sub), made on their first launch. Never an
    existing account found by e-mail or name."""
    sub = str(claims["sub"])[:255]
    # Two launches of one person at once (a double click) make one account, one membership.
    _lock(f"user\n{platform.pk}\n{sub}")
    found = LtiUser.objects.filter(platform=platform, sub=sub).select_related("user").first()
    if found is not None:
        return found.user
    user_model = get_user_model()
    digest = hashlib.sha256(f"{platform.issuer}\n{sub}".encode()).hexdigest()
    # Read by the staff in rosters and gradebooks: the LMS's name when it sends one, made unique
    # by the digest (never an existing account's name: the suffix).
    given, family = str(claims.get("given_name") or ""), str(claims.get("family_name") or "")
    name = slugify(f"{given} {family}" if (given or family) else str(claims.get("name") or ""))
    username = f"{name[:30] or 'lti'}-{digest[:8]}"
    if user_model.objects.filter(username=username).exists():
        username = f"lti-{digest[:24]}"
    user = user_model(
        username=username,
        first_name=str(claims.get("given_name") or "")[:150],
        last_name=str(claims.get("family_name") or "")[:150],
    )
    user.set_unusable_password()
    user.save()
    LtiUser.objects.create(platform=platform, sub=sub, user=user)
    return user


def _course(platform: Platform, claims: dict[str, Any], user: Any, role: str) -> Course:
    found = claims.get(protocol.CONTEXT)
    context: dict[str, Any] = found if isinstance(found, dict) else {}
    context_id = str(context.get("id") or "")
    if not context_id:
        raise LaunchRefused("The launch names no LMS course (its context).")
    title = str(context.get("title") or context.get("label") or "LMS course")[:200]
    # One course per LMS course, even when two instructors launch at once.
    _lock(f"context\n{platform.pk}\n{context_id}")
    linked = LtiContext.objects.filter(platform=platform, context_id=context_id[:255]).first()
    if linked is not None:
        return linked.course
    if role != Role.INSTRUCTOR:
        raise LaunchRefused(
            "This LMS course is not set up on this site yet: its instructor's first launch "
            "sets it up.",
            403,
        )
    course = Course.objects.create(title=title, created_by=user)
    LtiContext.objects.create(
        platform=platform, context_id=context_id[:255], title=title, course=course
    )
    audit.record(audit.Action.COURSE_CREATED, course=course, actor=user, via="LTI launch")
    return course


def _membership(course: Course, user: Any, role: str) -> None:
    """The LMS says the role in its course: set it exactly (never above or below)."""
    member = Membership.objects.select_for_update().filter(course=course, user=user).first()
    if member is None:
        Membership.objects.create(course=course, user=user, role=role)
        audit.record(
            audit.Action.MEMBER_JOINED,
            course=course,
            actor=user,
            subject=user,
            via="LTI",
            role=role,
        )
    elif member.role != role or member.pending_role:
        before = member.role
        member.role, member.pending_role = role, ""
        member.save(update_fields=["role", "pending_role"])
        audit.record(
            audit.Action.ROLE_CHANGED,
            course=course,
            actor=None,
            subject=user,
            via="LTI",
            role_before=before,
            role_after=role,
        )


def _link(course: Course, platform: Platform, claims: dict[str, Any]) -> ResourceLink:
    found = claims.get(protocol.RESOURCE_LINK)
    resource: dict[str, Any] = found if isinstance(found, dict) else {}
    link_id = str(resource.get("id") or "")
    if not link_id:
        raise LaunchRefused("A resource-link launch must name its link.")
    context = LtiContext.objects.get(
        platform=platform, course=course, context_id=str(claims[protocol.CONTEXT]["id"])[:255]
    )
    custom = claims.get(protocol.CUSTOM)
    assignment = None
    wanted = str(custom.get("assignment_id") or "") if isinstance(custom, dict) else ""
    if wanted:
        assignment = Assignment.objects.filter(
            course=course, pk=int(wanted) if wanted.isdigit() else -1
        ).first()
        if assignment is None:
            raise LaunchRefused("This link names an assignment that is not in this course.", 404)
    ags = claims.get(protocol.AGS_ENDPOINT)
    ags = ags if isinstance(ags, dict) else {}
    scopes = ags.get("scope")
    link, _ = ResourceLink.objects.update_or_create(
        context=context,
        resource_link_id=link_id[:255],
        defaults={
            "title": str(resource.get("title") or "")[:255],
            "assignment": assignment,
            "lineitems_url": str(ags.get("lineitems") or "")[:1000],
            "lineitem_url": str(ags.get("lineitem") or "")[:1000],
            "ags_scopes": [str(s) for s in scopes] if isinstance(scopes, list) else [],
        },
    )
    return link


def complete(platform: Platform, claims: dict[str, Any]) -> Launch:
    """Map the verified launch: the account, the course, the membership, the link."""
    role = map_role(claims.get(protocol.ROLES))
    if role is None:
        raise LaunchRefused(
            "The LMS gave you no role this site knows (Instructor, TA or Learner).", 403
        )
    with transaction.atomic():
        user = _local_user(platform, claims)
        if not user.is_active:
            raise LaunchRefused("This account is disabled on this site.", 403)
        course = _course(platform, claims, user, role)
        _membership(course, user, role)
        link = None
        deep_link = ""
        if claims[protocol.MESSAGE_TYPE] == protocol.RESOURCE_LINK_REQUEST:
            link = _link(course, platform, claims)
        else:
            if role == Role.STUDENT:
                raise LaunchRefused(
                    "Only the course's staff may pick assignments for the LMS.", 403
                )
            settings_ = claims.get(protocol.DL_SETTINGS)
            if not isinstance(settings_, dict) or urlsplit(
                str(settings_.get("deep_link_return_url") or "")
            ).scheme not in ("https", "http"):
                raise LaunchRefused("The deep-linking request has no web address to return to.")
            accepted = settings_.get("accept_types") or []
            if "ltiResourceLink" not in accepted:
                raise LaunchRefused("The LMS does not accept links to assignments here.")
            deep_link = secrets.token_urlsafe(24)
            cache.set(
                f"lti:deeplink:{deep_link}",
                {
                    "platform": platform.pk,
                    "user": user.pk,
                    "course": course.pk,
                    "deployment_id": str(claims[protocol.DEPLOYMENT_ID]),
                    "return_url": str(settings_["deep_link_return_url"]),
                    "data": settings_.get("data"),
                    "multiple": bool(settings_.get("accept_multiple", True)),
                },
                DEEP_LINK_TTL_S,
            )
    return Launch(platform, claims, user, course, role, link, deep_link)
