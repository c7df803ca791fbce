from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "playground.runs"
    verbose_name = "Runs and traces"

    def ready(self) -> None:
        from playground.runs import signals  # noqa: F401 - connects the login handler
