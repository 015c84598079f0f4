"""URLs of the console: the dashboard is the site's landing page."""

from django.urls import path

from . import views

app_name = "console"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("advanced/", views.advanced, name="advanced"),
]
