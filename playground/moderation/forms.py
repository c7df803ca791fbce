"""The report form (anyone) and the moderators' forms."""

from __future__ import annotations

from django import forms

from playground.moderation.models import NOTE_MAX_CHARS, Reason


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        choices=Reason.choices, widget=forms.RadioSelect, label="What is wrong with it?"
    )
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": NOTE_MAX_CHARS}),
        label="Anything staff should know (optional)",
        help_text=f"At most {NOTE_MAX_CHARS} characters. Staff see it; the owner does not.",
    )


class UnpublishForm(forms.Form):
    reason = forms.ChoiceField(choices=Reason.choices, label="Reason")
    message = forms.CharField(
        required=False,
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX_CHARS}),
        label="Message to the owner (optional)",
        help_text="Shown to the owner on the program's page.",
    )


class DisableForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX_CHARS}),
        label="Why (for the moderation log)",
    )
    unpublish_programs = forms.BooleanField(
        required=False, initial=True, label="Also unpublish all their public programs"
    )
