"""URLs of the campaigns app (staff pages)."""

from django.urls import path  # noqa: F401

app_name = "campaigns"
urlpatterns: list = []
