from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "playground.llm"
    label = "llm"
    verbose_name = "Language models"

    def ready(self) -> None:
        """Leases (a model's concurrent streams across the site, lib/leases.py) live in the
        site's Redis (the broker's role), under its database's name: read from the settings
        when used (the tests rename the database after start-up)."""
        from django.conf import settings

        from playground.lib import leases

        leases.configure(
            redis_url=lambda: str(settings.REDIS_ROLES["broker"]),
            namespace=lambda: str(settings.DATABASES["default"]["NAME"]),
        )
