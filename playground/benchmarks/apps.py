from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    name = "playground.benchmarks"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        from playground.benchmarks import signals  # noqa: F401
