from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "playground.moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from playground.moderation import signals  # noqa: F401
