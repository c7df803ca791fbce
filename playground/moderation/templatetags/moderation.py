"""``{% moderation_panel program is_owner %}`` on a program's page: staff's notice to its owner,
the Report box for everyone else, and a review link for staff."""

from __future__ import annotations

from typing import Any

from django import template

from playground.moderation import services
from playground.moderation.forms import ReportForm
from playground.moderation.models import ProgramLock, Report
from playground.programs.models import Program

register = template.Library()


@register.inclusion_tag("moderation/_program_panel.html", takes_context=True)
def moderation_panel(context: Any, program: Program, is_owner: bool) -> dict[str, Any]:
    request = context["request"]
    staff = bool(request.user.is_authenticated and request.user.is_staff)
    lock = None
    if is_owner or staff:
        lock = ProgramLock.objects.filter(program=program).first()
    can_report = services.reportable(program) and not is_owner
    return {
        "program": program,
        "lock": lock,
        "show_lock": is_owner,
        "can_report": can_report,
        "already_reported": can_report and services.already_reported(request, program),
        "form": ReportForm(),
        "staff": staff and program.dataset == "user",
        "open_reports": Report.objects.open().filter(program=program).count() if staff else 0,
        "csrf_token": context.get("csrf_token"),
    }
