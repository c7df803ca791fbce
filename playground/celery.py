"""Celery application: queues ``sandbox`` (real execution), ``llm`` (emulation), ``batch``
(evaluations) and ``default`` (periodic and unrouted tasks, taken by the llm worker)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("sandbox"), Queue("llm"), Queue("batch"), Queue("default")]
app.autodiscover_tasks()
