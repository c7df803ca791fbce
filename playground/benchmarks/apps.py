from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    name = "playground.benchmarks"
    verbose_name = "Evaluations"
