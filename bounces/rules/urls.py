"""URLs of the rules pages (staff only), mounted under /bounces/ (namespace `bounces`) by
bounces/urls.py. Imports the rules' views only."""

from django.urls import path

from . import views

urlpatterns = [
    path("rules/new/", views.rule_edit, name="rule_new"),
    path("rules/<int:pk>/", views.rule_edit, name="rule_edit"),
    path("rules/coverage/", views.rule_coverage, name="rule_coverage"),
    path("rules/reapply/", views.rule_reapply, name="rule_reapply"),
    path("rules/reapply/<int:pk>/", views.rule_reapply_detail, name="rule_reapply_detail"),
    path("rules/reapply/<int:pk>/undo/", views.rule_reapply_undo, name="rule_reapply_undo"),
    path("rules/paste/", views.rule_paste, name="rule_paste"),
    path("rules/import/", views.rule_import, name="rule_import"),
    path("rules/export/", views.rule_export, name="rule_export"),
]
