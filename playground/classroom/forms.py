"""Forms of the staff pages: courses, assignments, the roster and roles, deletions, extensions
and grade overrides. Every problem a teacher can cause comes back as a message on the field (or
above the form), never as an error page. The item form, which reaches into programs, checkpoints
and the model registry, is in ``item_form.py``."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from playground.classroom import zones
from playground.classroom.models import Assignment, Course, Membership, Role
from playground.lib.params import DecimalNumberField, WholeNumberField

MAX_ROSTER_BYTES = 1_000_000


def site_time_zone() -> str:
    """The zone in which teachers type and read dates: the active one, which is the course's on
    its pages (``zones.in_course_zone``), else the site's TIME_ZONE."""
    return str(timezone.get_current_timezone_name())


def zone_choices() -> list[tuple[str, str]]:
    return [("", f"The site's ({settings.TIME_ZONE})"), *((n, n) for n in sorted(zones.names()))]


class LocalDateTimeField(forms.DateTimeField):
    """A date and time typed in an <input type="datetime-local"> in the site's time zone, made
    aware on the way in and shown in that zone on the way out. A time that does not exist or is
    ambiguous there (a DST change) gets Django's message instead of a guess."""

    input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        with timezone.override(site_time_zone()):
            return super().prepare_value(value)

    def to_python(self, value: Any) -> datetime | None:
        with timezone.override(site_time_zone()):
            return super().to_python(value)


class CourseForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=zone_choices,
        required=False,
        label="Time zone",
        help_text="Due dates and exam windows are typed and shown in it (e.g. Europe/Berlin).",
        error_messages={
            "invalid_choice": "%(value)s is not a time zone name: choose one such as "
            "Europe/Berlin or America/New_York."
        },
    )

    class Meta:
        model = Course
        fields = ["title", "description", "time_zone"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"description": "Optional: shown to the course's members."}
        error_messages = {"title": {"required": "Give the course a title."}}

    def clean_title(self) -> str:
        title = str(self.cleaned_data.get("title") or "").strip()
        if not title:
            raise forms.ValidationError("Give the course a title.")
        return title


class RosterForm(forms.Form):
    file = forms.FileField(
        label="Roster (CSV)",
        help_text="One e-mail address or username per row; an optional second column gives "
        "the role (student or assistant). A header row is skipped.",
        error_messages={
            "required": "Choose a CSV file to upload.",
            "empty": "The roster file is empty.",
        },
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size is not None and upload.size > MAX_ROSTER_BYTES:
            raise forms.ValidationError(
                f"The roster file is {upload.size:,} bytes; the limit is "
                f"{MAX_ROSTER_BYTES:,} bytes (1 MB)."
            )
        return upload


REMOVE = "remove"


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[*Role.choices, (REMOVE, "Remove from the course")])


class DeleteForm(forms.Form):
    """Deleting something with everything in it: the title must be typed to confirm."""

    confirm = forms.CharField(label="Type the title to confirm", required=False)

    def __init__(self, *args: Any, title: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = title

    def clean_confirm(self) -> str:
        typed = str(self.cleaned_data.get("confirm") or "").strip()
        if typed != self.title.strip():
            raise forms.ValidationError(
                "The title you typed does not match: nothing was deleted.", code="mismatch"
            )
        return typed


class AssignmentForm(forms.ModelForm):
    late_credit = WholeNumberField(
        min_value=0,
        max_value=100,
        initial=50,
        label="Late credit (%)",
        help_text="Percent of the credit a late submission earns.",
    )
    max_attempts = WholeNumberField(
        min_value=1,
        max_value=1000,
        required=False,
        label="Attempts per item",
        help_text="Empty for no limit.",
    )
    time_limit = WholeNumberField(
        min_value=1,
        max_value=10_080,
        required=False,
        label="Timed exam: minutes per student",
        help_text="Each student starts when they choose between the opening and the due time "
        "and has this many minutes (never past the due time). Empty: not timed.",
    )

    weight = DecimalNumberField(
        min_value=0,
        max_value=1000,
        initial=1,
        required=False,
        label="Weight in its category",
        help_text="The course gradebook: how much it counts among its category's assignments.",
    )

    class Meta:
        model = Assignment
        fields = [
            "title",
            "instructions",
            "opens_at",
            "due_at",
            "late_until",
            "late_credit",
            "max_attempts",
            "feedback",
            "exam_mode",
            "time_limit",
            "category",
            "weight",
        ]
        field_classes = {
            "opens_at": LocalDateTimeField,
            "due_at": LocalDateTimeField,
            "late_until": LocalDateTimeField,
        }
        widgets = {"instructions": forms.Textarea(attrs={"rows": 4})}
        labels = {
            "opens_at": "Opens",
            "due_at": "Due",
            "late_until": "Late submissions until",
            "feedback": "Students see their grade",
            "exam_mode": "Exam mode: during the window, the course's students cannot run programs",
        }
        help_texts = {
            "opens_at": "From this time the students see the assignment and its items.",
            "late_until": "Empty: nothing is accepted after the due time.",
        }
        error_messages = {"title": {"required": "Give the assignment a title."}}

    def clean_title(self) -> str:
        title = str(self.cleaned_data.get("title") or "").strip()
        if not title:
            raise forms.ValidationError("Give the assignment a title.")
        return title

    def clean_category(self) -> str:
        return str(self.cleaned_data.get("category") or "").strip()

    def clean_weight(self) -> float:
        weight = self.cleaned_data.get("weight")
        return 1.0 if weight is None else float(weight)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        opens, due, late = cleaned.get("opens_at"), cleaned.get("due_at"), cleaned.get("late_until")
        if opens and due and due < opens:
            self.add_error("due_at", "The due time is before the opening time.")
        if due and late and late < due:
            self.add_error("late_until", "The end of the late period is before the due time.")
        if cleaned.get("time_limit") and late:
            self.add_error(
                "late_until",
                "A timed exam has no late period: each student's time ends their exam. Leave "
                "this empty (an extension gives one student a later due time).",
            )
        return cleaned


class MemberChoiceField(forms.ModelChoiceField):
    # Usernames only: members' e-mail addresses appear on the roster and gradebook pages alone.
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.user.get_username())


class ExtensionForm(forms.Form):
    student = MemberChoiceField(queryset=Membership.objects.none(), empty_label=None)
    due_at = LocalDateTimeField(
        label="New due time", required=False, help_text="Empty: the assignment's due time."
    )
    extra_minutes = WholeNumberField(
        min_value=0,
        max_value=10_080,
        required=False,
        label="Timed exam: extra minutes",
        help_text="Added to this student's duration (still ending by their due time).",
    )
    late_until = LocalDateTimeField(
        label="Late submissions until",
        required=False,
        help_text="Empty: no late period after the new due time (unless the assignment's own "
        "late period ends later).",
    )

    def __init__(self, *args: Any, assignment: Assignment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.assignment = assignment
        field = self.fields["student"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            Membership.objects.filter(course_id=assignment.course_id, role=Role.STUDENT)
            .select_related("user")
            .order_by("user__username")
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("due_at") and not self.has_error("due_at"):
            cleaned["due_at"] = self.assignment.due_at
        cleaned["extra_minutes"] = cleaned.get("extra_minutes") or 0
        if cleaned["extra_minutes"] and self.assignment.time_limit is None:
            self.add_error(None, "Extra minutes are for timed exams only.")
        due, late = cleaned.get("due_at"), cleaned.get("late_until")
        if due and due < self.assignment.due_at:
            self.add_error(
                "due_at", "An extension gives more time: this is before the assignment's due time."
            )
        if due and late and late < due:
            self.add_error("late_until", "The end of the late period is before the new due time.")
        return cleaned


_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{0,6})?|\.[0-9]{1,6}")


class OverrideForm(forms.Form):
    credit = forms.CharField(
        max_length=20,
        help_text="A number from 0 to 1 (0.5) or a percentage (50%).",
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The student sees it with the grade.",
    )

    def clean_credit(self) -> float:
        text = str(self.cleaned_data.get("credit") or "").strip().replace(",", ".")
        percent = text.endswith("%")
        number = text.rstrip("%").strip()
        # ASCII decimals only: float() would also take Arabic-Indic digits, "1_0", "1e3",
        # "inf" and "nan".
        if not _DECIMAL.fullmatch(number):
            raise forms.ValidationError(
                "Write the credit as a number from 0 to 1 (e.g. 0.5) or a percentage (e.g. 50%)."
            )
        value = float(number)
        if percent:
            value /= 100
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise forms.ValidationError(
                "The credit is from 0 to 1 (or 0% to 100%)"
                + ("; for a percentage, add %." if not percent and 1 < value <= 100 else ".")
            )
        return round(value, 4)


class WeightsForm(forms.Form):
    """The course gradebook's category weights, one a line (``coursebook.parse_weights``)."""

    weights = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Category weights",
        help_text="One a line, e.g. Homework: 40 and Exams: 60. A category not named weighs 1; "
        "0 leaves it out of the course grade.",
    )

    def clean_weights(self) -> dict[str, float]:
        from playground.classroom.coursebook import parse_weights

        try:
            return parse_weights(str(self.cleaned_data.get("weights") or ""))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
