"""Celery application: queues ``sandbox`` (real execution), ``llm`` (emulation) and ``batch``."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("sandbox"), Queue("llm"), Queue("batch")]
app.autodiscover_tasks()
