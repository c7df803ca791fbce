from django.urls import path

from playground.runs import cwm_export, surprise_views, views

# Mounted by playground/urls.py in the ``runs`` namespace, together with playground.streaming.urls
# (``runs:events``, the run's Server-Sent Events).
app_name = "runs"

urlpatterns = [
    path("programs/<int:pk>/run/", views.run_program, name="start"),
    path("library/puzzles/<str:name>/run/", views.run_puzzle, name="start_puzzle"),
    path(
        "library/tasks/<slug:name>/<int:index>/run/",
        views.run_task_example,
        name="start_task_example",
    ),
    path("runs/", views.my_runs, name="mine"),
    path("runs/<int:pk>/", views.run_detail, name="detail"),
    path("runs/<int:pk>/status/", views.run_status, name="status"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<int:pk>/surprise/", surprise_views.run_surprise, name="surprise"),
    path("runs/<int:pk>/trace.json", views.run_trace_json, name="trace_json"),
    path("runs/<int:pk>/trace.cwm.txt", cwm_export.run_trace_cwm, name="trace_cwm"),
]
