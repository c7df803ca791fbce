"""Reporting a public program (anyone), and the moderators' pages (site staff, ``is_staff``):
open reports, a program's review, accounts, and the moderation log.

Moderators' pages: anonymous visitors are sent to log in; signed-in users who are not staff get
404 (the pages are not advertised). Every change is a POST and an audit event."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.lib import ratelimits
from playground.lib.pagination import page_of
from playground.moderation import services
from playground.moderation.forms import DisableForm, ReportForm, UnpublishForm
from playground.moderation.models import ProgramLock, Report
from playground.programs.access import get_program_for_user, owns
from playground.programs.models import Dataset, Program

PER_PAGE = 25
LOG_PER_PAGE = 100
NOTES_SHOWN = 3
_MAX_QUERY = 150

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return guarded


# Reporting -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def report(request: HttpRequest, pk: int) -> HttpResponse:
    """Report a public program: one report per reporter and program, rate-limited."""
    program = get_program_for_user(request, pk)
    if not services.reportable(program):
        raise Http404("No such program, or it is private.")
    if owns(request, program):
        messages.error(request, "This is your own program: you cannot report it.")
        return redirect(program)
    if services.already_reported(request, program):
        messages.info(request, "You already reported this program. Staff will look at it.")
        return redirect(program)
    form = ReportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        refused = ratelimits.exceeded(request, "reports")
        if refused is not None:
            # The form comes back with what was typed, and the page says when to try again.
            form.add_error(None, refused.message)
            response = render(
                request, "moderation/report.html", {"program": program, "form": form}, status=429
            )
            response["Retry-After"] = str(refused.retry_after)
            return response
        try:
            services.report(
                request,
                program,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except services.AlreadyReported:
            messages.info(request, "You already reported this program. Staff will look at it.")
            return redirect(program)
        messages.success(request, "Thank you: staff will look at this program.")
        return redirect(program)
    status = 400 if form.is_bound else 200
    return render(
        request, "moderation/report.html", {"program": program, "form": form}, status=status
    )


# Moderators' pages -----------------------------------------------------------------------------


def _reviewable() -> QuerySet[Program]:
    """The programs moderators may look at: users' programs that are public, were reported or
    are locked. Other private programs stay their owners' alone."""
    reported = Report.objects.filter(program=OuterRef("pk"))
    locked = ProgramLock.objects.filter(program=OuterRef("pk"))
    return Program.objects.filter(dataset=Dataset.USER).filter(
        Q(is_public=True) | Exists(reported) | Exists(locked)
    )


def _reviewable_program(pk: int) -> Program:
    program = _reviewable().select_related("owner").filter(pk=pk).first()
    if program is None:
        raise Http404("No such program, or nothing to review.")
    return program


def _lock_of(program: Program) -> ProgramLock | None:
    return ProgramLock.objects.filter(program=program).select_related("locked_by").first()


@require_GET
@staff_only
def reports(request: HttpRequest) -> HttpResponse:
    """Open reports grouped by program, the most recently reported first."""
    groups = (
        Report.objects.open()
        .values("program")
        .annotate(count=Count("id"), latest=Max("created_at"))
        .order_by("-latest", "-program")
    )
    page = page_of(request, groups, PER_PAGE)
    ids = [group["program"] for group in page]
    programs = {
        p.pk: p
        for p in Program.objects.filter(pk__in=ids).select_related("owner", "moderation_lock")
    }
    reasons: dict[int, list[tuple[str, int]]] = {}
    for row in (
        Report.objects.open()
        .filter(program__in=ids)
        .values("program", "reason")
        .annotate(n=Count("id"))
        .order_by("program", "-n", "reason")
    ):
        label = Report(reason=row["reason"]).get_reason_display()
        reasons.setdefault(row["program"], []).append((label, row["n"]))
    notes: dict[int, list[str]] = {}
    latest_notes = (
        Report.objects.open()
        .filter(program__in=ids)
        .exclude(note="")
        .annotate(
            rank=Window(RowNumber(), partition_by=F("program"), order_by=F("created_at").desc())
        )
        .filter(rank__lte=NOTES_SHOWN)
        .values_list("program", "note")
    )
    for program_id, note in latest_notes:
        notes.setdefault(program_id, []).append(note)
    rows = [
        {
            "program": programs[group["program"]],
            "count": group["count"],
            "latest": group["latest"],
            "reasons": reasons.get(group["program"], []),
            "notes": notes.get(group["program"], []),
        }
        for group in page
        if group["program"] in programs
    ]
    return render(request, "moderation/reports.html", {"page": page, "rows": rows})


@require_GET
@staff_only
def program(request: HttpRequest, pk: int) -> HttpResponse:
    """A reported (or public, or locked) program: its source, every report, and the actions."""
    program = _reviewable_program(pk)
    report_page = page_of(
        request,
        Report.objects.filter(program=program).select_related("reporter", "resolved_by"),
        PER_PAGE,
    )
    context = {
        "program": program,
        "lock": _lock_of(program),
        "report_page": report_page,
        "open_count": Report.objects.open().filter(program=program).count(),
        "unpublish_form": UnpublishForm(),
    }
    return render(request, "moderation/program.html", context)


@require_POST
@staff_only
def dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    program = _reviewable_program(pk)
    count = services.dismiss(program=program, moderator=request.user)
    if count:
        messages.success(request, f"Dismissed {count} report{'s' if count != 1 else ''}.")
    else:
        messages.info(request, "There were no open reports to dismiss.")
    return redirect("moderation:reports")


@require_POST
@staff_only
def unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    program = _reviewable_program(pk)
    form = UnpublishForm(request.POST)
    if not form.is_valid():
        context = {
            "program": program,
            "lock": _lock_of(program),
            "report_page": page_of(request, Report.objects.filter(program=program), PER_PAGE),
            "open_count": Report.objects.open().filter(program=program).count(),
            "unpublish_form": form,
        }
        return render(request, "moderation/program.html", context, status=400)
    services.unpublish(
        program=program,
        moderator=request.user,
        reason=form.cleaned_data["reason"],
        message=form.cleaned_data["message"],
    )
    messages.success(
        request,
        f"“{program.display_title}” is unpublished: its owner sees why, and cannot make it "
        "public again until staff allow it.",
    )
    return redirect("moderation:program", pk=program.pk)


@require_POST
@staff_only
def allow(request: HttpRequest, pk: int) -> HttpResponse:
    program = _reviewable_program(pk)
    if services.allow_publishing(program=program, moderator=request.user):
        messages.success(request, "Its owner may make it public again (it stays private now).")
    else:
        messages.info(request, "This program was not locked.")
    return redirect("moderation:program", pk=program.pk)


def _account(user_id: int) -> Any:
    account = get_user_model().objects.filter(pk=user_id).first()
    if account is None:
        raise Http404("No such account.")
    return account


@require_GET
@staff_only
def accounts(request: HttpRequest) -> HttpResponse:
    """Find an account by its name."""
    q = request.GET.get("q", "").strip()[:_MAX_QUERY]
    found = get_user_model().objects.none()
    if q:
        found = get_user_model().objects.filter(username__icontains=q).order_by("username")
    page = page_of(request, found, PER_PAGE)
    return render(request, "moderation/accounts.html", {"q": q, "page": page})


def _account_context(request: HttpRequest, account: Any, form: DisableForm) -> dict[str, Any]:
    programs = Program.objects.filter(owner=account)
    return {
        "account": account,
        "refusal": services.may_change_account(request.user, account),
        "programs_total": programs.count(),
        "public_programs": programs.filter(is_public=True).order_by("-id")[:PER_PAGE],
        "public_count": programs.filter(is_public=True).count(),
        "open_reports": Report.objects.open().filter(program__owner=account).count(),
        "events": services.site_events().filter(subject_ref=account.pk)[:20],
        "disable_form": form,
    }


@require_GET
@staff_only
def account(request: HttpRequest, user_id: int) -> HttpResponse:
    target = _account(user_id)
    return render(
        request, "moderation/account.html", _account_context(request, target, DisableForm())
    )


@require_POST
@staff_only
def disable(request: HttpRequest, user_id: int) -> HttpResponse:
    target = _account(user_id)
    form = DisableForm(request.POST)
    why = services.may_change_account(request.user, target)
    if why:
        messages.error(request, why)
        return redirect("moderation:account", user_id=target.pk)
    if not form.is_valid():
        context = _account_context(request, target, form)
        return render(request, "moderation/account.html", context, status=400)
    if not target.is_active:
        messages.info(request, "This account is already disabled.")
        return redirect("moderation:account", user_id=target.pk)
    sessions = services.disable(
        account=target,
        moderator=request.user,
        note=form.cleaned_data["note"],
        unpublish_programs=form.cleaned_data["unpublish_programs"],
    )
    messages.success(
        request,
        f"{target.get_username()} is disabled: {sessions} session{'s' if sessions != 1 else ''} "
        "ended, and they cannot log in.",
    )
    return redirect("moderation:account", user_id=target.pk)


@require_POST
@staff_only
def enable(request: HttpRequest, user_id: int) -> HttpResponse:
    target = _account(user_id)
    why = services.may_change_account(request.user, target)
    if why:
        messages.error(request, why)
    elif target.is_active:
        messages.info(request, "This account is not disabled.")
    else:
        services.enable(account=target, moderator=request.user)
        messages.success(request, f"{target.get_username()} may log in again.")
    return redirect("moderation:account", user_id=target.pk)


@require_GET
@staff_only
def log(request: HttpRequest) -> HttpResponse:
    """Every site-level moderation event, newest first."""
    page = page_of(request, services.site_events(), LOG_PER_PAGE)
    return render(request, "moderation/log.html", {"page": page})
