"""URLs of bounces: detail pages (staff only)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
