from django.contrib import admin
from django.urls import include, path

from playground import views
from playground.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/", api.urls),
    path("accounts/", include("playground.accounts.urls")),
    path("", include("playground.programs.urls")),
    path("", include("playground.runs.urls")),
    path("", include("playground.sharing.urls")),
    path("", include("playground.classroom.urls")),
    path("", include("playground.benchmarks.urls")),
    path("", include("playground.moderation.urls")),
    path("admin/", admin.site.urls),
]
# A share link whose run expired says so; every other 404 is Django's page (templates/404.html).
handler404 = "playground.sharing.views.page_not_found"
