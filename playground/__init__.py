"""The code-reasoning playground (Django project package)."""

from playground.celery import app as celery_app

__all__ = ["celery_app"]
