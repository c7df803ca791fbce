from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "playground.programs"
    verbose_name = "Programs and the built-in library"

    def ready(self) -> None:
        from playground.programs import signals  # noqa: F401 - connects the login handler
