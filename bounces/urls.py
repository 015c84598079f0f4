"""URLs of the bounces app (namespace `bounces`): the rules pages from bounces/rules/urls.py,
then the pipeline and detail pages. Imports views only."""

from django.urls import path

from .rules import urls as rules_urls
from .views import deliverability, detail, incidents, pipeline

app_name = "bounces"
urlpatterns = [
    *rules_urls.urlpatterns,
    # pipeline pages (staff only)
    path("runs/", pipeline.run_list, name="pipeline_runs"),
    path("runs/<int:run_id>/", pipeline.run_detail, name="pipeline_run"),
    path("runs/<int:run_id>/status.json", pipeline.run_status, name="pipeline_run_status"),
    path("mailboxes/<int:mailbox_id>/process/", pipeline.process_now, name="pipeline_process"),
    path("mailboxes/process-all/", pipeline.process_all_now, name="pipeline_process_all"),
    path("unexplained/", pipeline.unexplained, name="pipeline_unexplained"),
    path("unexplained/<int:bounce_id>/", pipeline.unexplained_action, name="pipeline_unexplained_action"),
    path("deliverability/", deliverability.deliverability, name="pipeline_deliverability"),
    path("deliverability.csv", deliverability.deliverability_csv, name="pipeline_deliverability_csv"),
    # alerts and incidents (staff only; issue 14)
    path("alerts/<int:alert_id>/acknowledge/", incidents.acknowledge_alert, name="alert_acknowledge"),
    path("incidents/", incidents.incident_list, name="incident_list"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident_detail"),
    path("incidents/<int:pk>/resolve/", incidents.incident_resolve, name="incident_resolve"),
    # detail pages (staff only)
    path("<int:pk>/", detail.bounce_detail, name="detail"),
    path("<int:pk>/raw.eml", detail.bounce_raw, name="detail_raw"),
]
