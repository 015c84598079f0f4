"""URLs of the contacts app (staff pages)."""

from django.urls import path  # noqa: F401

app_name = "contacts"
urlpatterns: list = []
