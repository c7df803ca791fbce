from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "playground.llm"
    label = "llm"
    verbose_name = "Language models"
