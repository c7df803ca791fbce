from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "playground.sharing"
    verbose_name = "Shared run links"
