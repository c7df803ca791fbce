"""Who may see which program: the owner (user or anonymous session) and, when public, everyone."""

from __future__ import annotations

import secrets

from django.http import Http404, HttpRequest

from playground.programs.models import Program, ProgramQuerySet
from playground.programs.signals import ANON_TOKEN_KEY


def anon_token(request: HttpRequest, *, create: bool = False) -> str | None:
    """The anonymous visitor's owner token (created on first submit when ``create``)."""
    token = request.session.get(ANON_TOKEN_KEY)
    if token is None and create:
        token = secrets.token_urlsafe(24)
        request.session[ANON_TOKEN_KEY] = token
    return token


def visible_programs(request: HttpRequest) -> ProgramQuerySet:
    return Program.objects.visible_to(request.user, anon_token(request))


def owns(request: HttpRequest, program: Program) -> bool:
    if request.user.is_authenticated:
        return program.owner_id == request.user.pk
    token = anon_token(request)
    return bool(token) and program.owner_id is None and program.anon_owner == token


def get_program_for_user(request: HttpRequest, pk: int) -> Program:
    """The program, or 404 when it does not exist or is private to someone else."""
    try:
        return visible_programs(request).get(pk=pk)
    except Program.DoesNotExist:
        raise Http404("No such program, or it is private.") from None


def get_own_program(request: HttpRequest, pk: int) -> Program:
    """The program when the requester owns it; 404 otherwise (never reveal that it exists)."""
    program = get_program_for_user(request, pk)
    if not owns(request, program):
        raise Http404("No such program, or it is private.")
    return program
