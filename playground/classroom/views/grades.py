"""Staff pages of results: an item's statistics, extensions, the live submissions, overriding a
grade, and the gradebook (page and CSV).

Its own file because what students handed in and what they got for it is one topic apart from
setting the work. Every view starts from ``access`` (not a member: 404; a student: 403); changes
are POST only."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from playground.classroom import coursebook, pools, stats, variants
from playground.classroom.access import get_assignment, get_course, get_item
from playground.classroom.courses import remove_extension, set_extension
from playground.classroom.errors import ClassroomError
from playground.classroom.forms import ExtensionForm, OverrideForm, WeightsForm, site_time_zone
from playground.classroom.gradebook import Gradebook, build
from playground.classroom.models import Extension, Membership, Role, Submission
from playground.classroom.submissions import clear_override
from playground.classroom.submissions import override as override_credit
from playground.classroom.zones import in_course_zone
from playground.lib.htmx import HtmxHttpRequest, partial_for
from playground.lib.pagination import page_of
from playground.lib.params import object_id
from playground.lib.spreadsheet import spreadsheet_safe

SUBMISSIONS_PER_PAGE = 100


def _answer_items(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    """A dict answer's fields in order: a trace's "<checkpoint>.<variable>" by name, the
    probes' questions by number (from 1, as the students see them)."""
    if answer and all(str(k).isascii() and str(k).isdigit() and len(str(k)) < 6 for k in answer):
        return [(f"question {int(k) + 1}", answer[k]) for k in sorted(answer, key=int)]
    return sorted(answer.items())


@login_required
@require_GET
def item_stats(
    request: HttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    item, member = get_item(request, course_id, assignment_id, item_id, staff=True)
    result = stats.item_stats(item)
    context = {
        "course": item.assignment.course,
        "member": member,
        "assignment": item.assignment,
        "item": item,
        "stats": result,
        "chart": stats.chart(result.bars),
    }
    return render(request, "classroom/staff/item_stats.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@in_course_zone
def extensions(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """Per-student extensions: a later due time and late period for one student."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    here = reverse("classroom:extensions", args=[course_id, assignment.pk])
    form = ExtensionForm(assignment=assignment, initial={"due_at": assignment.due_at})
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            extension = get_object_or_404(
                Extension.objects.select_related("student", "assignment__course"),
                pk=object_id(request.POST.get("extension")) or 0,
                assignment=assignment,
            )
            remove_extension(extension, by=request.user)
            messages.success(request, f"Extension of {extension.student.get_username()} removed.")
            return redirect(here)
        form = ExtensionForm(request.POST, assignment=assignment)
        if form.is_valid():
            student = form.cleaned_data["student"].user
            set_extension(
                assignment=assignment,
                student=student,
                due_at=form.cleaned_data["due_at"],
                late_until=form.cleaned_data["late_until"],
                extra_minutes=form.cleaned_data["extra_minutes"],
                by=request.user,
            )
            messages.success(request, f"Extension for {student.get_username()} saved.")
            return redirect(here)
    rows = [
        (ext, assignment.window(ext.student))
        for ext in assignment.extensions.select_related("student").order_by("student__username")
    ]
    starts = [
        (start, assignment.window(start.student)[1])
        for start in assignment.exam_starts.select_related("student").order_by("started_at")
    ]
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "form": form,
        "rows": rows,
        "starts": starts,
        "time_zone": site_time_zone(),
    }
    return render(request, "classroom/staff/extensions.html", context)


@login_required
@require_GET
@in_course_zone
def submissions(request: HtmxHttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """Every submission to the assignment, newest first, filtered by item and student; the list
    refreshes itself every 2 s (htmx polling of its partial)."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    items = list(assignment.items.order_by("position", "id"))
    students = (
        Membership.objects.filter(course_id=course_id, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    qs = (
        Submission.objects.filter(item__assignment=assignment)
        .select_related("item", "student", "overridden_by", "variant")
        .order_by("-submitted_at", "-id")
    )
    item_id = request.GET.get("item", "")
    student_id = request.GET.get("student", "")
    if (item_pk := object_id(item_id)) is not None:
        qs = qs.filter(item_id=item_pk)
    drawn: list[dict[str, Any]] = []
    if (student_pk := object_id(student_id)) is not None:
        qs = qs.filter(student_id=student_pk)
        who = next((m.user for m in students if m.user_id == student_pk), None)
        if who is not None:
            drawn = _what_they_got(assignment, items, who)
    page = page_of(request, qs, SUBMISSIONS_PER_PAGE)
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "items": items,
        "students": students,
        "item_id": item_id,
        "student_id": student_id,
        "page": page,
        "now": timezone.now(),
        "drawn": drawn,
    }
    return render(
        request,
        partial_for(request, "classroom/staff/submissions.html", "submission-rows"),
        context,
    )


def _what_they_got(assignment: Any, items: list[Any], student: Any) -> list[dict[str, Any]]:
    """Per item, what one student got: whether their pool gave them this item, and their
    variant's call of a varied item (for the staff only: the variant is not its answer)."""
    mine = {i.pk for i in pools.items_for(assignment, student, items)}
    rows = []
    for item in items:
        got = item.pk in mine
        variant = variants.variant_for(item, student) if got else None
        rows.append({"item": item, "drawn": got, "variant": variant.call if variant else ""})
    return rows


@login_required
@require_http_methods(["GET", "POST"])
@in_course_zone
def override(request: HttpRequest, course_id: int, submission_id: int) -> HttpResponse:
    """Set a submission's credit by hand, with a comment for the student (staff), or remove the
    override."""
    course, member = get_course(request, course_id, staff=True)
    submission = get_object_or_404(
        Submission.objects.select_related("item__assignment", "student", "overridden_by"),
        pk=submission_id,
        item__assignment__course=course,
    )
    item = submission.item
    assignment = item.assignment
    back = reverse("classroom:submissions", args=[course.pk, assignment.pk])
    who = f"{submission.student.get_username()} on “{item}” (attempt {submission.attempt})"
    initial = {}
    if submission.override_credit is not None:
        initial = {
            "credit": f"{submission.override_credit * 100:g}%",
            "comment": submission.override_comment,
        }
    form = OverrideForm(initial=initial)
    if request.method == "POST":
        if request.POST.get("action") == "clear":
            clear_override(submission, by=request.user)
            messages.success(request, f"Override removed: {who} counts as graded again.")
            return redirect(back)
        form = OverrideForm(request.POST)
        if form.is_valid():
            try:
                override_credit(
                    submission,
                    credit=form.cleaned_data["credit"],
                    comment=form.cleaned_data["comment"],
                    by=request.user,
                )
            except ClassroomError as exc:
                form.add_error("credit", str(exc))
            else:
                messages.success(
                    request, f"Credit of {who} set to {form.cleaned_data['credit'] * 100:g}%."
                )
                return redirect(back)
    attempts = Submission.objects.filter(item=item, student=submission.student).order_by("attempt")
    answer = submission.answer
    context = {
        "course": course,
        "member": member,
        "assignment": assignment,
        "item": item,
        "submission": submission,
        "answer_items": _answer_items(answer) if isinstance(answer, dict) else None,
        "answer_text": answer if isinstance(answer, str) else None,
        "attempts": attempts,
        # Its grades before each regrade (regrading.py), oldest first.
        "history": [
            {**old, "at": parse_datetime(str(old.get("at") or ""))}
            for old in (submission.history if isinstance(submission.history, list) else [])
            if isinstance(old, dict)
        ],
        "form": form,
    }
    return render(request, "classroom/staff/override.html", context)


def _item_averages(book: Gradebook) -> list[float | None]:
    """Each item's mean credit over the students who got it (no submission counts as 0; an
    item of a pool: only those who drew it)."""
    averages: list[float | None] = []
    for i in range(len(book.items)):
        cells = [row.cells[i] for row in book.rows if row.cells[i].drawn]
        averages.append(sum(c.credit or 0.0 for c in cells) / len(cells) if cells else None)
    return averages


@login_required
@require_GET
@in_course_zone
def gradebook(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """Every student of the course x every item: the credit that counts (best attempt, overrides
    applied), late marks, the total weighted by points, and the percentage."""
    assignment, member = get_assignment(request, course_id, assignment_id, staff=True)
    book = build(assignment)
    average_percent = sum(r.percent for r in book.rows) / len(book.rows) if book.rows else None
    context = {
        "course": assignment.course,
        "member": member,
        "assignment": assignment,
        "book": book,
        "averages": _item_averages(book),
        "average_percent": average_percent,
    }
    return render(request, "classroom/staff/gradebook.html", context)


def _points(value: float) -> str:
    """A number as a spreadsheet reads it: 2.5, 1, 0.3333 (never 1e+06)."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def gradebook_rows(book: Gradebook) -> list[list[str]]:
    """The gradebook as CSV rows: username, email, the points earned per item, total, percent."""
    header = ["username", "email", *(str(item) for item in book.items), "total", "percent"]
    rows = [header]
    for row in book.rows:
        cells = [
            "" if cell.credit is None or not cell.drawn else _points(cell.credit * item.points)
            for cell, item in zip(row.cells, book.items, strict=True)
        ]
        rows.append([row.username, row.email, *cells, _points(row.total), f"{row.percent:.2f}"])
    return [[spreadsheet_safe(cell) for cell in r] for r in rows]


@login_required
@require_GET
def gradebook_csv(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    assignment, _ = get_assignment(request, course_id, assignment_id, staff=True)
    out = io.StringIO()
    out.write("\ufeff")  # the BOM makes spreadsheets read the file as UTF-8
    csv.writer(out).writerows(gradebook_rows(build(assignment)))
    name = slugify(f"{assignment.course.title} {assignment.title}")[:80].strip("-")
    filename = f"{name or 'assignment'}-gradebook.csv"
    response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
@in_course_zone
def course_gradebook(request: HttpRequest, course_id: int) -> HttpResponse:
    """The course gradebook (staff): every student x every opened assignment, by category, with
    the course grade; instructors set the category weights (POST)."""
    course, member = get_course(request, course_id, staff=True)
    form = WeightsForm(initial={"weights": coursebook.weights_text(course)})
    if request.method == "POST":
        if member.role != Role.INSTRUCTOR:
            raise PermissionDenied("Only the course's instructors set the weights.")
        form = WeightsForm(request.POST)
        if form.is_valid():
            course.category_weights = form.cleaned_data["weights"]
            course.save(update_fields=["category_weights"])
            messages.success(request, "Category weights saved.")
            return redirect("classroom:course_gradebook", course.pk)
    context = {
        "course": course,
        "member": member,
        "book": coursebook.build(course),
        "form": form,
    }
    return render(request, "classroom/staff/course_gradebook.html", context)


@login_required
@require_GET
def course_gradebook_csv(request: HttpRequest, course_id: int) -> HttpResponse:
    course, _ = get_course(request, course_id, staff=True)
    out = io.StringIO()
    out.write("\ufeff")  # the BOM makes spreadsheets read the file as UTF-8
    rows = coursebook.csv_rows(coursebook.build(course))
    csv.writer(out).writerows([[spreadsheet_safe(cell) for cell in row] for row in rows])
    name = slugify(course.title)[:60]
    filename = f"{name or 'course'}-gradebook.csv"
    response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
