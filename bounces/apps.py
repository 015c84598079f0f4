"""The bounces app config: registers the mailbox system checks on start. Imports checks only."""

from django.apps import AppConfig


class BouncesConfig(AppConfig):
    name = "bounces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the mailbox system checks)
