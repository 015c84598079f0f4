"""URLs of bounces: pipeline pages (staff only)."""

from django.urls import path

from . import views_pipeline as views

urlpatterns: list = [
    path("runs/", views.run_list, name="pipeline_runs"),
    path("runs/<int:run_id>/", views.run_detail, name="pipeline_run"),
    path("runs/<int:run_id>/status.json", views.run_status, name="pipeline_run_status"),
    path("mailboxes/<int:mailbox_id>/process/", views.process_now, name="pipeline_process"),
    path("mailboxes/process-all/", views.process_all_now, name="pipeline_process_all"),
    path("unexplained/", views.unexplained, name="pipeline_unexplained"),
    path("unexplained/<int:bounce_id>/", views.unexplained_action, name="pipeline_unexplained_action"),
    path("deliverability/", views.deliverability, name="pipeline_deliverability"),
]
