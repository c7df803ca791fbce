from django.urls import path

from playground.moderation import views

app_name = "moderation"

urlpatterns = [
    path("programs/<int:pk>/report/", views.report, name="report"),
    path("moderation/", views.reports, name="reports"),
    path("moderation/programs/<int:pk>/", views.program, name="program"),
    path("moderation/programs/<int:pk>/dismiss/", views.dismiss, name="dismiss"),
    path("moderation/programs/<int:pk>/unpublish/", views.unpublish, name="unpublish"),
    path("moderation/programs/<int:pk>/allow/", views.allow, name="allow"),
    path("moderation/accounts/", views.accounts, name="accounts"),
    path("moderation/accounts/<int:user_id>/", views.account, name="account"),
    path("moderation/accounts/<int:user_id>/disable/", views.disable, name="disable"),
    path("moderation/accounts/<int:user_id>/enable/", views.enable, name="enable"),
    path("moderation/log/", views.log, name="log"),
]
