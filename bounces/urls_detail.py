"""URLs of bounces: detail pages (staff only)."""

from django.urls import path

from . import views_detail

urlpatterns = [
    path("<int:pk>/", views_detail.bounce_detail, name="detail"),
    path("<int:pk>/raw.eml", views_detail.bounce_raw, name="detail_raw"),
]
