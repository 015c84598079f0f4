"""The bounces app config: registers the mailbox system checks on start. Imports checks only."""

from django.apps import AppConfig


class BouncesConfig(AppConfig):
    name = "bounces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from . import checks  # noqa: F401  (registers the mailbox system checks)
        from .intake.signals import on_anymail_tracking

        tracking.connect(on_anymail_tracking, dispatch_uid="bouncemgr-intake-tracking")
