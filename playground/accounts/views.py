"""Sign-up, the account page with personal API tokens, the data export and account deletion
(playground/privacy), and Django's login and password-reset views with the site's limits (log
out and the rest of the reset are Django's own views)."""

from __future__ import annotations

from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from playground.accounts.forms import ApiTokenForm, DeleteAccountForm, LoginForm, SignupForm
from playground.accounts.models import ApiToken
from playground.accounts.tokens import TokenLimitReached
from playground.accounts.tokens import create_token as create_token_for
from playground.classroom import invitations
from playground.lib import ratelimits
from playground.lib.middleware import with_refusal
from playground.privacy import deletion
from playground.privacy.export import export_response


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing up (e.g. back to an invitation link): this site only."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _invitation_key(next_url: str) -> str | None:
    """``invitation:<id>`` when ``next_url`` is a working link of a pending course invitation,
    else None (the sign-up is counted against its address)."""
    try:
        match = resolve(urlsplit(next_url).path) if next_url else None
    except Resolver404:
        return None
    if match is None or match.view_name != "classroom:invitation":
        return None
    invitation, problem = invitations.resolve(str(match.kwargs.get("token", "")))
    return f"invitation:{invitation.pk}" if invitation is not None and problem is None else None


def _go_on(next_url: str) -> HttpResponse:
    # An address, never handed to redirect(), which would read "home" or "0" as a view's name.
    return HttpResponseRedirect(next_url) if next_url else redirect("home")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is disabled on this site.")
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return _go_on(next_url)
    form = SignupForm(request.POST or None)
    refused = None
    if request.method == "POST" and form.is_valid():
        # Counted when an account would be made (the form is valid): per address, or per
        # invitation for someone who follows a course's e-mailed invitation link (a class
        # behind one school address signs up together; the link is the instructor's word,
        # and the instructor's mails are capped per day).
        refused = ratelimits.exceeded(request, "signups.ip", key=_invitation_key(next_url))
        if refused is None:
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
            return _go_on(next_url)
        form.add_error(None, refused.message)
    page = render(request, "registration/signup.html", {"form": form, "next": next_url})
    return with_refusal(page, refused) if refused is not None else page


def limited_login(view: Any) -> Any:
    """A login view (the site's or the admin's) whose form was refused by the login limits
    answers 429 with ``Retry-After``, the form shown again with the refusal."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        refused = getattr(form, "refused", None)
        return with_refusal(response, refused) if refused is not None else response

    return wrapped


login_view = limited_login(auth_views.LoginView.as_view(authentication_form=LoginForm))


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request, limited (each one may send an e-mail): per address
    (``password_resets.ip``) and per e-mail address asked for (``password_resets.account``,
    counted whether or not an account has it)."""

    def form_valid(self, form: Any) -> HttpResponse:
        email = str(form.cleaned_data.get("email") or "").strip().lower()
        refused = ratelimits.exceeded(self.request, "password_resets.ip") or (
            ratelimits.exceeded(self.request, "password_resets.account", key=email)
        )
        if refused is None:
            return super().form_valid(form)
        form.add_error("email", refused.message)
        return with_refusal(self.form_invalid(form), refused)


def _account_page(
    request: HttpRequest,
    form: ApiTokenForm,
    *,
    new_token: ApiToken | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    tokens = list(request.user.api_tokens.all()[:100])  # type: ignore[union-attr]
    context = {
        "form": form,
        "tokens": tokens,
        "active": sum(1 for t in tokens if t.active),
        "most": ratelimits.cap("api_tokens_active.user"),
        "new_token": new_token,
        "secret": secret,
        "export_rate": ratelimits.describe_rate("exports.user"),
    }
    response = render(request, "registration/account.html", context, status=status)
    # The page may hold a token's secret: never cached, by the browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET"])
def account(request: HttpRequest) -> HttpResponse:
    """Your account: who you are, and your personal API tokens."""
    return _account_page(request, ApiTokenForm())


@login_required
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    """Make a token and show its secret, on this response only (it is not kept)."""
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _account_page(request, form)
    refused = ratelimits.exceeded(request, "api_tokens")
    if refused is not None:
        form.add_error(None, refused.message)
        response = _account_page(request, form, status=429)
        response["Retry-After"] = str(refused.retry_after)
        return response
    data = form.cleaned_data
    try:
        token, secret = create_token_for(
            user=request.user, name=data["name"], scope=data["scope"],
            expires_in_days=data["expires"],
        )  # fmt: skip
    except TokenLimitReached as exc:
        form.add_error(None, str(exc))
        return _account_page(request, form)
    return _account_page(
        request,
        ApiTokenForm(),
        new_token=token,
        secret=secret,
    )


@login_required
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of your tokens: it stops working at once."""
    token = ApiToken.objects.filter(user_id=request.user.pk or 0, pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    messages.success(request, f"The token “{token.name}” is revoked: it no longer works.")
    return redirect("account")


@login_required
@require_POST
def export_data(request: HttpRequest) -> StreamingHttpResponse:
    """Everything the site holds about you, as one JSON file (``exports.user``)."""
    ratelimits.hit(request, "exports")
    return export_response(request, request.user)


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """Delete your account after typing your password again (playground/privacy/deletion.py).
    Refused, with the courses named, while you are a course's only instructor."""
    user = request.user
    form = DeleteAccountForm(user, request.POST if request.method == "POST" else None)
    blocked = deletion.refusal(user)
    refused = None
    if request.method == "POST" and not blocked:
        # Every attempt is counted (a wrong password too): a borrowed session cannot guess.
        refused = ratelimits.exceeded(request, "account_deletions")
        if refused is not None:
            # Unbound: past the limit the password is not even checked (the page would tell).
            form = DeleteAccountForm(user)
        elif form.is_valid():
            try:
                done = deletion.delete_account(user)
            except deletion.DeletionRefused as exc:
                blocked = str(exc)
            else:
                logout(request)
                kept = (
                    f" Your grades stay in your courses under the name “{done.pseudonym}”."
                    if done.submissions_kept
                    else ""
                )
                messages.success(request, "Your account and your data are deleted." + kept)
                return redirect("home")
    context = {
        "form": form,
        "blocked": blocked,
        "has_password": user.has_usable_password(),  # type: ignore[union-attr]
        "refusal": refused.message if refused is not None else "",
    }
    # A refused page never checks the password (its status would tell a guess from the right
    # one, outside the attempts' limit).
    if blocked:
        status = 409 if request.method == "POST" else 200
    else:
        status = 429 if refused is not None else (400 if form.errors else 200)
    page = render(request, "privacy/delete_account.html", context, status=status)
    page["Cache-Control"] = "no-store"
    return with_refusal(page, refused) if refused is not None else page
