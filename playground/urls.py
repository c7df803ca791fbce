from django.contrib import admin
from django.urls import include, path

from playground import metrics, views
from playground.accounts.forms import AdminLoginForm
from playground.accounts.views import limited_login
from playground.api import api
from playground.runs import urls as runs_urls
from playground.streaming import urls as streaming_urls

# The admin's login has the site's login limits (a 429 when they refuse it).
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/", api.urls),
    path("accounts/", include("playground.accounts.urls")),
    path("", include("playground.programs.urls")),
    # One ``runs`` namespace: the run pages, and the run's events served by ``streaming``.
    path("", include((runs_urls.urlpatterns + streaming_urls.urlpatterns, runs_urls.app_name))),
    path("", include("playground.sharing.urls")),
    path("", include("playground.classroom.urls")),
    path("", include("playground.benchmarks.urls")),
    path("", include("playground.moderation.urls")),
    path("", include("playground.lti.urls")),
    path("admin/login/", limited_login(admin.site.login)),
    path("admin/", admin.site.urls),
]
# A share link whose run expired says so; every other 404 is Django's page (templates/404.html).
handler404 = "playground.sharing.views.page_not_found"
