from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "playground.classroom"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The rooms below classroom obey the hiding policy through this hook (lib/hiding.py).
        from playground.classroom.visibility import POLICY
        from playground.lib import hiding

        hiding.register(POLICY)
