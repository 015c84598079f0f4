"""Operator rules: models, pure patterns and rule sets, services, selectors, forms, views,
admin and urls. Models and selectors import no services; only views/admin/urls import views."""
