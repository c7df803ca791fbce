from django.urls import path

from playground.benchmarks import views

app_name = "benchmarks"

urlpatterns = [
    path("evaluations/", views.leaderboard, name="leaderboard"),
    path("evaluations/start/", views.start, name="start"),
    path("evaluations/compare/", views.compare, name="compare"),
    path("evaluations/<int:pk>/", views.detail, name="detail"),
    path("evaluations/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("evaluations/<int:pk>/results.json", views.export_json, name="export_json"),
    path("evaluations/<int:pk>/results.csv", views.export_csv, name="export_csv"),
]
