"""``{% moderation_panel program is_owner "notice" %}`` on a program's page: staff's notice to its
owner (at the top); ``"report"``: the Report box for everyone else and a review link for staff
(at the bottom)."""

from __future__ import annotations

from typing import Any

from django import template

from playground.moderation import services
from playground.moderation.forms import ReportForm
from playground.moderation.models import ProgramLock, Report
from playground.programs.models import Dataset, Program

register = template.Library()


@register.inclusion_tag("moderation/_program_panel.html", takes_context=True)
def moderation_panel(context: Any, program: Program, is_owner: bool, part: str) -> dict[str, Any]:
    request = context["request"]
    if part == "notice":
        lock = ProgramLock.objects.filter(program=program).first() if is_owner else None
        return {"part": part, "lock": lock}
    staff = bool(request.user.is_authenticated and request.user.is_staff)
    staff = staff and program.dataset == Dataset.USER
    can_report = services.reportable(program) and not is_owner
    return {
        "part": part,
        "program": program,
        "can_report": can_report,
        "already_reported": can_report and services.already_reported(request, program),
        "form": ReportForm(),
        "staff": staff,
        "locked": staff and ProgramLock.objects.filter(program=program).exists(),
        "open_reports": Report.objects.open().filter(program=program).count() if staff else 0,
        "csrf_token": context.get("csrf_token"),
    }
