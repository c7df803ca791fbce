from django.urls import path

from playground.benchmarks.views import boards, comparing, evaluation, exports, starting, surprise

app_name = "benchmarks"

urlpatterns = [
    path("evaluations/", boards.leaderboard, name="leaderboard"),
    path("evaluations/start/", starting.start, name="start"),
    path("evaluations/import/", starting.import_outputs, name="import"),
    path("evaluations/compare/", comparing.compare, name="compare"),
    path("evaluations/<int:pk>/", evaluation.detail, name="detail"),
    path("evaluations/<int:pk>/cancel/", starting.cancel, name="cancel"),
    path("evaluations/<int:pk>/rescore/", starting.rescore, name="rescore"),
    path("evaluations/<int:pk>/surprise/", surprise.score, name="surprise"),
    path("evaluations/<int:pk>/standard-twin/", starting.start_twin, name="start_twin"),
    path("evaluations/<int:pk>/results.json", exports.export_json, name="export_json"),
    path("evaluations/<int:pk>/results.csv", exports.export_csv, name="export_csv"),
    path(
        "evaluations/<int:pk>/generations.json",
        exports.export_generations,
        name="export_generations",
    ),
]
