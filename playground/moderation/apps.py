from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "playground.moderation"
    verbose_name = "Moderation"
