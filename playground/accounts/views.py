"""Sign-up (log in, log out and password resets are Django's own views)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from playground.accounts.forms import SignupForm


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing up (e.g. back to an invitation link): this site only."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


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
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
        return _go_on(next_url)
    return render(request, "registration/signup.html", {"form": form, "next": next_url})
