from django.urls import path

from playground.sharing import views

app_name = "sharing"

urlpatterns = [
    path("runs/<int:pk>/share/", views.create_link, name="create"),
    path("runs/<int:pk>/share/<int:link_id>/revoke/", views.revoke_link, name="revoke"),
    path("s/<str:token>/", views.shared_run, name="view"),
    path("s/<str:token>/embed/", views.shared_run_embed, name="embed"),
    path("s/<str:token>/status/", views.shared_status, name="status"),
    path("s/<str:token>/trace.cwm.txt", views.shared_trace_cwm, name="trace_cwm"),
]
