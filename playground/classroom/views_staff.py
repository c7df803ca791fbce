"""Staff pages of the classroom (being written: each view answers 404 until it is)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse


def course_new(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def course_manage(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def course_code(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def course_roster(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def member_role(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def course_delete(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def assignment_new(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def assignment_edit(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def item_new(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def item_edit(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def item_delete(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def item_stats(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def library_search(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def extensions(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def submissions(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def gradebook(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def gradebook_csv(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


def override(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404
