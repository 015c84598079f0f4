from django.apps import AppConfig


class BouncemgrConfig(AppConfig):
    name = "bouncemgr"
    verbose_name = "bouncemgr"
