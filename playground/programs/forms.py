"""The submit form: every check from ``validation`` surfaces as an inline message."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from playground.programs.models import Program
from playground.programs.validation import (
    ProgramError,
    check_call,
    check_size,
    check_source,
    decode_utf8,
    strip_bom,
)

_TEXT_FIELDS = ("title", "source", "call", "stdin")
_LABELS = {"title": "title", "source": "program", "call": "call", "stdin": "standard input"}


def raw_form_fields(request: HttpRequest) -> dict[str, bytes]:
    """The urlencoded body's text fields as raw bytes (Django replaces invalid UTF-8 by U+FFFD)."""
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    fields: dict[str, bytes] = {}
    for pair in request.body.split(b"&"):
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("latin-1")
        if key in _TEXT_FIELDS:
            fields[key] = unquote_to_bytes(value.replace(b"+", b" "))
    return fields


class ProgramForm(forms.ModelForm):
    source_file = forms.FileField(
        required=False,
        # A plain file input: the default one also reads a "source_file-clear" box, and a
        # forged one made the cleaned value False instead of a file.
        widget=forms.FileInput,
        label="…or upload a .py file",
        help_text="Replaces the text above.",
    )

    class Meta:
        model = Program
        fields = ["title", "source", "call", "stdin", "is_public"]
        labels = {
            "source": "Program",
            "call": "Call",
            "stdin": "Standard input",
            "is_public": "Public: anyone with the link can see it and it is listed in the library",
        }
        help_texts = {
            "call": "One expression evaluated after the program, e.g. f([1, 2, 3]). "
            "Leave empty to run the program as a script.",
            "stdin": "Optional text the program reads from standard input.",
        }
        widgets = {
            "title": forms.TextInput(attrs={"placeholder": "Optional: a name for this program"}),
            "source": forms.Textarea(
                attrs={"rows": 14, "spellcheck": "false", "class": "code", "autocapitalize": "off"}
            ),
            "call": forms.TextInput(
                attrs={"placeholder": "f([1, 2, 3])", "spellcheck": "false", "class": "code"}
            ),
            "stdin": forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "code"}),
        }

    def __init__(self, *args: Any, raw_fields: dict[str, bytes] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.raw_fields = raw_fields or {}
        self.fields["source"].required = False  # "empty" gets our own message, not Django's
        for name in ("source", "stdin"):  # whitespace is part of a program and of its input
            self.fields[name].strip = False  # type: ignore[attr-defined]
        self.problem: ProgramError | None = None  # shown with the offending line and a caret

    def _strict_text(self, name: str) -> str:
        """The cleaned text of ``name``; an error when the raw bytes were not UTF-8."""
        if name in self.raw_fields:
            try:
                decode_utf8(self.raw_fields[name], _LABELS[name])
            except ProgramError as exc:
                raise forms.ValidationError(str(exc), code="encoding") from None
        return str(self.cleaned_data.get(name) or "")

    def clean_title(self) -> str:
        return self._strict_text("title").strip()

    def clean_source(self) -> str:
        return strip_bom(self._strict_text("source").replace("\r\n", "\n"))

    def clean_call(self) -> str:
        call = self._strict_text("call").strip()
        try:
            check_call(call, max_chars=settings.PLAYGROUND_MAX_CALL_CHARS)
        except ProgramError as exc:
            raise forms.ValidationError(str(exc), code="call") from None
        return call

    def clean_stdin(self) -> str:
        stdin = self._strict_text("stdin").replace("\r\n", "\n")
        try:
            check_size(stdin, settings.PLAYGROUND_MAX_STDIN_BYTES, "standard input")
        except ProgramError as exc:
            raise forms.ValidationError(str(exc), code="size") from None
        return stdin

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.has_error("source"):
            return cleaned
        upload: UploadedFile | None = cleaned.get("source_file")
        source = cleaned.get("source", "")
        try:
            if isinstance(upload, UploadedFile):
                limit = settings.PLAYGROUND_MAX_SOURCE_BYTES
                if upload.size is not None and upload.size > limit:
                    raise ProgramError(
                        f"The uploaded file is {upload.size:,} bytes; "
                        f"the limit is {limit:,} bytes ({limit // 1000} KB)."
                    )
                source = decode_utf8(upload.read(), "uploaded file").replace("\r\n", "\n")
                source = strip_bom(source)
                cleaned["source"] = source
            check_source(source, max_bytes=settings.PLAYGROUND_MAX_SOURCE_BYTES)
        except ProgramError as exc:
            self.problem = exc
            self.add_error("source", forms.ValidationError(str(exc), code="source"))
        return cleaned
