"""Forms of the staff pages. Every problem a teacher can cause comes back as a message on the
field (or above the form), never as an error page."""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import zip_longest
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from playground.classroom.authoring import ItemData
from playground.classroom.checkpoints import check_checkpoints
from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Role
from playground.emulation.registry import REGISTRY, methods_for
from playground.lib.params import DecimalNumberField, WholeNumberField, object_id
from playground.llm.registry import RegistryError, load_models
from playground.programs.models import Program, Puzzle
from playground.programs.validation import ProgramError, check_call, check_source, strip_bom

MAX_ROSTER_BYTES = 1_000_000
MAX_CHECKPOINTS = 50
MAX_CHECKPOINT_VARIABLES = 20
_CODE = {"spellcheck": "false", "class": "code", "autocapitalize": "off"}


def site_time_zone() -> str:
    """The zone in which teachers type and read dates (the site's TIME_ZONE)."""
    return str(settings.TIME_ZONE)


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
    class Meta:
        model = Course
        fields = ["title", "description"]
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

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        opens, due, late = cleaned.get("opens_at"), cleaned.get("due_at"), cleaned.get("late_until")
        if opens and due and due < opens:
            self.add_error("due_at", "The due time is before the opening time.")
        if due and late and late < due:
            self.add_error("late_until", "The end of the late period is before the due time.")
        return cleaned


class MemberChoiceField(forms.ModelChoiceField):
    # Usernames only: members' e-mail addresses appear on the roster and gradebook pages alone.
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.user.get_username())


class ExtensionForm(forms.Form):
    student = MemberChoiceField(queryset=Membership.objects.none(), empty_label=None)
    due_at = LocalDateTimeField(label="New due time")
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


# Items ----------------------------------------------------------------------------------------

ORIGINS = [("library", "From the library"), ("new", "Write a new program")]
MODEL_MODES = (Mode.DIVERGENCE, Mode.BEAT_MODEL)


def checkpoint_rows(data: QueryDict | None, item: Item | None, blank: int = 3) -> list[dict]:
    """The rows of the checkpoint editor: what was posted, or the item's checkpoints, then a few
    blank rows to add more."""
    if data is not None and "cp_line" in data:
        rows = [
            {"line": line, "occurrence": occurrence, "variables": variables}
            for line, occurrence, variables in zip_longest(
                data.getlist("cp_line"),
                data.getlist("cp_occurrence"),
                data.getlist("cp_variables"),
                fillvalue="",
            )
        ]
        rows = [r for r in rows if any(str(v).strip() for v in r.values())]
    elif item is not None:
        rows = [
            {
                "line": str(cp.get("line", "")),
                "occurrence": str(cp.get("occurrence", 1)),
                "variables": ", ".join(cp.get("variables", [])),
            }
            for cp in item.checkpoints
        ]
    else:
        rows = []
    return rows[:MAX_CHECKPOINTS] + [
        {"line": "", "occurrence": "", "variables": ""} for _ in range(blank)
    ]


def parse_checkpoints(
    rows: Sequence[dict[str, str]], source: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Checkpoints from the editor's rows, checked against the program: (checkpoints, errors).
    Blank rows are skipped; a line must hold code (execution never stops on a blank line or a
    comment) and a row names at least one variable."""
    lines = source.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no line of its own
    count = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
    checkpoints: list[dict[str, Any]] = []
    errors: list[str] = []
    filled = [r for r in rows if any(str(v).strip() for v in r.values())]
    if len(filled) > MAX_CHECKPOINTS:
        errors.append(f"At most {MAX_CHECKPOINTS} checkpoints.")
    for number, row in enumerate(filled[:MAX_CHECKPOINTS], start=1):
        where = f"Checkpoint {number}"
        raw_line = str(row.get("line", "")).strip()
        if not (raw_line.isascii() and raw_line.isdigit() and len(raw_line) <= 9):
            errors.append(f"{where}: the line is a number from 1 to {len(lines)}.")
            continue
        line = int(raw_line)
        if not 1 <= line <= len(lines):
            errors.append(f"{where}: line {line} is not in the program (it has {count}).")
            continue
        text = lines[line - 1].strip()
        if not text or text.startswith("#"):
            errors.append(
                f"{where}: line {line} is blank or a comment, so execution never stops there."
            )
            continue
        raw_occurrence = str(row.get("occurrence", "")).strip() or "1"
        if not (
            raw_occurrence.isascii()
            and raw_occurrence.isdigit()
            and 1 <= int(raw_occurrence[:7]) <= 100_000
            and len(raw_occurrence) <= 7
        ):
            errors.append(f"{where}: the occurrence is a whole number from 1 to 100,000.")
            continue
        names: list[str] = []
        bad: list[str] = []
        for name in str(row.get("variables", "")).split(","):
            name = name.strip()
            if not name:
                continue
            if not name.isidentifier() or keyword.iskeyword(name):
                bad.append(name[:40])
            elif name not in names:
                names.append(name)
        if bad:
            errors.append(f"{where}: not a variable name: {', '.join(bad)}.")
            continue
        if not names:
            errors.append(f"{where}: name at least one variable (comma-separated).")
            continue
        if len(names) > MAX_CHECKPOINT_VARIABLES:
            errors.append(f"{where}: at most {MAX_CHECKPOINT_VARIABLES} variables.")
            continue
        checkpoints.append({"line": line, "occurrence": int(raw_occurrence), "variables": names})
    return checkpoints, errors


def model_choices() -> tuple[list[tuple[str, str]], str]:
    """The configured models as choices, and the configuration problem if there is one."""
    try:
        return [(m.name, m.label) for m in load_models()], ""
    except RegistryError as exc:
        return [], str(exc)


def library_programs(user: Any) -> Any:
    """The programs a staff member may put in an assignment: the built-in data sets (public) and
    their own programs."""
    return Program.objects.filter(
        Q(is_public=True, dataset__in=["cruxeval", "humaneval"]) | Q(owner=user)
    )


class ItemForm(forms.Form):
    mode = forms.ChoiceField(choices=Mode.choices, widget=forms.RadioSelect, initial=Mode.OUTPUT)
    title = forms.CharField(
        max_length=200, required=False, help_text="Optional: shown to the students."
    )
    prompt = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional instructions shown with the item.",
    )
    points = DecimalNumberField(min_value=0, max_value=1000, initial=1)
    origin = forms.ChoiceField(choices=ORIGINS, widget=forms.RadioSelect, initial="library")
    pick = forms.CharField(required=False, widget=forms.HiddenInput)
    source = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 12, **_CODE})
    )
    call = forms.CharField(
        required=False,
        help_text="One expression evaluated after the program, e.g. f([1, 2, 3]).",
        widget=forms.TextInput(attrs={"placeholder": "f([1, 2, 3])", **_CODE}),
    )
    model = forms.ChoiceField(required=False, label="Model")
    method = forms.ChoiceField(required=False, label="Method")

    def __init__(
        self,
        *args: Any,
        user: Any,
        item: Item | None = None,
        rows: Sequence[dict[str, str]] = (),
        may_run: Callable[[Program | None, str], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        if item is not None and "initial" not in kwargs:
            kwargs["initial"] = _item_initial(item)
        super().__init__(*args, **kwargs)
        self.user = user
        self.item = item
        self.rows = rows
        self.checkpoint_errors: list[str] = []
        self.check_note = ""  # why the checkpoints could not be checked against a real run
        # Whether this person may have the program run (its real trace must not reach a
        # student of an open assignment with it); the view refuses the item itself.
        self.may_run = may_run or (lambda program, source: True)
        models, self.models_problem = model_choices()
        self.fields["model"].choices = [("", "Choose a model"), *models]  # type: ignore[attr-defined]
        self.fields["method"].choices = [("", "Choose a method"), *methods_for("program").items()]  # type: ignore[attr-defined]
        self.data_out: ItemData | None = None

    def picked(self) -> Program | Puzzle | None:
        """What the library pick currently names (for showing it), if it exists."""
        value = self["pick"].value() or ""
        kind, _, raw = str(value).partition(":")
        pk = object_id(raw)  # "²", "٣", 5,000 digits: no such thing, not a 500
        if pk is None:
            return None
        if kind == "puzzle":
            return Puzzle.objects.filter(pk=pk).first()
        if kind == "program":
            return self._programs().filter(pk=pk).first()
        return None

    def _programs(self) -> Any:
        allowed = library_programs(self.user)
        if self.item is not None and self.item.program_id is not None:
            allowed = allowed | Program.objects.filter(pk=self.item.program_id)
        return allowed

    def clean_title(self) -> str:
        return str(self.cleaned_data.get("title") or "").strip()

    def _reachable(
        self, checkpoints: list[dict[str, Any]], program: Program | None, source: str, call: str
    ) -> list[str]:
        """Problems of checkpoints the real run never reaches or where a variable has no value,
        from the program's real trace (the item's own key when the program is unchanged, else
        a run in the sandbox now). If no trace can be had in time the item may still be saved:
        its key checks the checkpoints again, and students cannot answer until they hold."""
        if not self.may_run(program, source):
            return []  # the item is refused as a whole: say nothing about its real run
        current = self.item.key_run if self.item is not None else None
        check = check_checkpoints(
            checkpoints,
            source=source,
            call=call,
            stdin=program.stdin if program is not None else "",
            key_run=current if program is not None and program.pk == self.item_program_id else None,
        )
        self.check_note = check.unchecked
        return list(check.problems)

    @property
    def item_program_id(self) -> int | None:
        return self.item.program_id if self.item is not None else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        mode = cleaned.get("mode")
        if mode is None or self.has_error("points"):
            return cleaned
        program: Program | None = None
        puzzle: Puzzle | None = None
        new_source: str | None = None
        call = ""
        if mode == Mode.PUZZLE:
            picked = self.picked()
            if not isinstance(picked, Puzzle):
                self.add_error("pick", "Pick a P3 puzzle from the library search.")
                return cleaned
            puzzle = picked
        elif cleaned.get("origin") == "new":
            new_source = strip_bom(str(cleaned.get("source") or "").replace("\r\n", "\n"))
            call = str(cleaned.get("call") or "").strip()
            try:
                check_source(new_source, max_bytes=settings.PLAYGROUND_MAX_SOURCE_BYTES)
            except ProgramError as exc:
                self.add_error("source", str(exc))
                return cleaned
            try:
                check_call(call, max_chars=settings.PLAYGROUND_MAX_CALL_CHARS)
            except ProgramError as exc:
                self.add_error("call", str(exc))
                return cleaned
            current = self.item.program if self.item is not None else None
            if current is not None and (current.source, current.call) == (new_source, call):
                program, new_source = current, None  # unchanged: keep the program and its key
        else:
            picked = self.picked()
            if not isinstance(picked, Program):
                self.add_error(
                    "pick", "Pick a program from the library search, or write a new program."
                )
                return cleaned
            program = picked
            call = program.call
        source = new_source if new_source is not None else (program.source if program else "")
        if mode in (Mode.OUTPUT, Mode.BEAT_MODEL) and not call.strip():
            self.add_error(
                "call" if new_source is not None else "pick",
                "The students predict the value of a call: this program needs one "
                "(e.g. f([1, 2, 3])).",
            )
        checkpoints: list[dict[str, Any]] = []
        if mode == Mode.TRACE:
            checkpoints, self.checkpoint_errors = parse_checkpoints(self.rows, source)
            if not checkpoints and not self.checkpoint_errors:
                self.checkpoint_errors = ["Add at least one checkpoint (line and variables)."]
            if not self.checkpoint_errors and not self.errors:
                self.checkpoint_errors = self._reachable(checkpoints, program, source, call)
            for message in self.checkpoint_errors:
                self.add_error(None, message)
        model = str(cleaned.get("model") or "")
        method = str(cleaned.get("method") or "")
        if mode in MODEL_MODES:
            if self.models_problem:
                self.add_error(
                    "model", f"The site's models are misconfigured: {self.models_problem}"
                )
            elif not model:
                self.add_error("model", "Choose the model the students are compared with.")
            if not method:
                self.add_error("method", "Choose how the model emulates the program.")
            elif mode == Mode.DIVERGENCE and not REGISTRY[method].compares_steps:
                steps = ", ".join(n for n, m in REGISTRY.items() if m.compares_steps)
                self.add_error(
                    "method",
                    f"Spot the divergence needs a method that writes a step trace ({steps}).",
                )
        if not self.errors:
            self.data_out = ItemData(
                mode=mode,
                title=cleaned.get("title", ""),
                prompt=str(cleaned.get("prompt") or ""),
                points=float(cleaned["points"]),
                program=program,
                puzzle=puzzle,
                new_source=new_source,
                new_call=call,
                checkpoints=checkpoints,
                model=model if mode in MODEL_MODES else "",
                method=method if mode in MODEL_MODES else "",
            )
        return cleaned


def _item_initial(item: Item) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "mode": item.mode,
        "title": item.title,
        "prompt": item.prompt,
        "points": item.points,
        "origin": "library",
        "model": item.model,
        "method": item.method,
    }
    if item.puzzle_id is not None:
        initial["pick"] = f"puzzle:{item.puzzle_id}"
    elif item.program is not None:
        initial["pick"] = f"program:{item.program_id}"
        initial["source"] = item.program.source
        initial["call"] = item.program.call
    return initial
