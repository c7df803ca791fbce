"""Fixtures for runs: Celery tasks executed in-process (eager), and the run button."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.celery import app


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery tasks run in the calling process, at once (unit tests only)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def run_now(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Any]:
    """POST to the run button; the tasks queued on commit run before it returns."""

    def post(client: Client, program_id: int, **data: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("runs:start", args=[program_id]), data)

    return post
