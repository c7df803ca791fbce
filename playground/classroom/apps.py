from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "playground.classroom"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from playground.classroom.signals import claim_roster_on_login

        user_logged_in.connect(claim_roster_on_login, dispatch_uid="classroom-claim-roster")
