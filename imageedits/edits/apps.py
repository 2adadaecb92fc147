from django.apps import AppConfig


class EditsConfig(AppConfig):
    name = "imageedits.edits"
    verbose_name = "Edits"
