from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "playground.classroom"
    default_auto_field = "django.db.models.BigAutoField"
