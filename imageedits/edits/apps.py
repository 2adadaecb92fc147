from django.apps import AppConfig


class EditsConfig(AppConfig):
    name = "imageedits.edits"
    verbose_name = "Edits"

    def ready(self) -> None:
        from . import accounts, checks  # noqa: F401  (connect signals, register checks)
