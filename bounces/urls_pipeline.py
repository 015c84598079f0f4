"""URLs of bounces: pipeline pages (staff only)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
