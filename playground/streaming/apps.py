from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "playground.streaming"
    verbose_name = "Live streaming of runs"
