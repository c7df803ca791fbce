from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "playground.lti"
    verbose_name = "LTI 1.3"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A grade written by the classroom (marking, overrides, regrading) goes back to the LMS
        # through this receiver; the classroom knows nothing of LTI (its signal, lti below it).
        from playground.lti import passback

        passback.connect()
