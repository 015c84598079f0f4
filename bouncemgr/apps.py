from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class BouncemgrConfig(AppConfig):
    default = True
    name = "bouncemgr"
    verbose_name = "bouncemgr"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the secrets and deployment checks)


class AdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the project's site (two-factor login when REQUIRE_2FA)."""

    default = False
    default_site = "bouncemgr.admin_site.AdminSite"
