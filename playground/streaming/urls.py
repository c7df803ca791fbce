"""The run's Server-Sent Events route, mounted here so that ``runs`` (below ``streaming``) does not
import the streaming views.

Its public name stays ``runs:events`` (API clients and ``Run.as_dict`` reverse it), so
``playground/urls.py`` mounts these patterns inside the ``runs`` namespace, beside
``playground.runs.urls``. The websocket route is in ``routing.py`` (mounted by ``asgi.py``).
"""

from django.urls import path

from playground.streaming.views import run_events

urlpatterns = [
    path("runs/<int:pk>/events", run_events, name="events"),
]
