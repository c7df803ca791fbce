"""The sign-up form: Django's, with an optional e-mail address for password resets."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        required=False,
        label="E-mail (optional)",
        help_text="Only for resetting your password. The instructors and assistants of the "
        "courses you join see it; nobody else does.",
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        # Not checked for uniqueness: saying "taken" would tell anyone which addresses have an
        # account. Nothing trusts this address (course invitations go by signed link).
        return str(self.cleaned_data.get("email") or "").strip().lower()

    def save(self, commit: bool = True) -> Any:
        user = super().save(commit=False)
        user.email = self.cleaned_data["email"]
        if commit:
            user.save()
        return user
