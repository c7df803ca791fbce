"""The sign-up form: Django's, with an optional e-mail address for password resets; the login
forms (the site's and the admin's), limited per address and per account name."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from playground.lib import ratelimits


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


class LoginForm(AuthenticationForm):
    """Django's login form, limited: failed attempts are counted per address (``logins.ip``)
    and per lower-cased account name (``logins.account``, whether or not such an account
    exists); once either is over its rate every attempt is refused before the password is
    checked, so a refusal says nothing about the account or the password. ``refused`` tells
    the view to answer 429."""

    refused: ratelimits.Refused | None = None

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        if self.request is None or not username or not self.cleaned_data.get("password"):
            return super().clean()
        account = username.lower()
        try:
            ratelimits.hit(self.request, "logins.ip", count=False)
            ratelimits.hit(self.request, "logins.account", key=account, count=False)
        except ratelimits.Refused as refused:
            self.refused = refused
            raise ValidationError(refused.message, code="too_many") from None
        try:
            return super().clean()
        except ValidationError:
            # Successful logins are not counted: a class behind one address signs in at once.
            ratelimits.exceeded(self.request, "logins.ip")
            ratelimits.exceeded(self.request, "logins.account", key=account)
            raise


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """The admin's login form (``/admin/login/``), with the same limits as the site's."""


class ApiTokenForm(forms.Form):
    """A new personal API token: a name to recognise it, what it may do, how long it works."""

    name = forms.CharField(
        max_length=100,
        help_text="To recognise it later, e.g. the script or machine that uses it.",
    )
    scope = forms.ChoiceField(
        choices=[
            ("read", "read: look at your runs, evaluations and the models"),
            ("run", "run: also start runs"),
        ],
        initial="read",
        widget=forms.RadioSelect,
    )
    expires = forms.TypedChoiceField(
        label="Expires",
        choices=[("", "never (until you revoke it)")]
        + [(str(days), f"in {days} days") for days in (7, 30, 90, 365)],
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
    )

    def clean_name(self) -> str:
        name = " ".join(str(self.cleaned_data.get("name") or "").split())
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name


class DeleteAccountForm(forms.Form):
    """Deleting one's account: the password typed again, and a box that says it is final."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        label="I understand that my account and my data are deleted for good",
        error_messages={"required": "Tick the box to say that you understand."},
    )

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = str(self.cleaned_data.get("password") or "")
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.", code="wrong_password")
        return password
