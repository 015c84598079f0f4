from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's console: dashboard, navigation and the shared page frame."""

    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from django.contrib import admin

        # The console's own navigation replaces the admin's model sidebar, which lists
        # every internal model and does not fit a phone screen.
        admin.site.enable_nav_sidebar = False
        admin.site.site_header = "bouncemgr"
        admin.site.site_title = "bouncemgr"
        admin.site.index_title = "Dashboard"
