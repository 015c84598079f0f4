"""URLs of bounces: rules pages (staff only), mounted under /bounces/ (namespace `bounces`)."""

from django.urls import path

from . import rule_views

urlpatterns = [
    path("rules/new/", rule_views.rule_edit, name="rule_new"),
    path("rules/<int:pk>/", rule_views.rule_edit, name="rule_edit"),
    path("rules/coverage/", rule_views.rule_coverage, name="rule_coverage"),
    path("rules/reapply/", rule_views.rule_reapply, name="rule_reapply"),
    path("rules/reapply/<int:pk>/", rule_views.rule_reapply_detail, name="rule_reapply_detail"),
    path("rules/reapply/<int:pk>/undo/", rule_views.rule_reapply_undo, name="rule_reapply_undo"),
    path("rules/paste/", rule_views.rule_paste, name="rule_paste"),
    path("rules/import/", rule_views.rule_import, name="rule_import"),
    path("rules/export/", rule_views.rule_export, name="rule_export"),
]
