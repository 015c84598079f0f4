"""URLs of the API, mounted at /api/v1/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import views
from .errors import not_found

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.DocsPage.as_view(), name="docs"),
    path("me/", views.Me.as_view(), name="me"),
    path("check", views.Check.as_view(), name="check"),
    path("bounces/", views.BounceList.as_view(), name="bounce-list"),
    path("bounces/<int:pk>/", views.BounceDetail.as_view(), name="bounce-detail"),
    path("contacts/", views.ContactList.as_view(), name="contact-list"),
    path("contacts/<int:pk>/", views.ContactDetail.as_view(), name="contact-detail"),
    path("suppressions/", views.SuppressionList.as_view(), name="suppression-list"),
    path("suppressions/bulk/", views.SuppressionBulk.as_view(), name="suppression-bulk"),
    path("suppressions/<int:pk>/", views.SuppressionDetail.as_view(), name="suppression-detail"),
    path("campaigns/", views.CampaignList.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", views.CampaignDetail.as_view(), name="campaign-detail"),
    path("mailboxes/", views.MailboxList.as_view(), name="mailbox-list"),
    path("mailboxes/<int:pk>/", views.MailboxDetail.as_view(), name="mailbox-detail"),
    path("mailboxes/<int:pk>/runs/", views.MailboxRuns.as_view(), name="mailbox-runs"),
    path("mailboxes/<int:pk>/process/", views.MailboxProcess.as_view(), name="mailbox-process"),
    path("runs/", views.RunList.as_view(), name="run-list"),
    path("runs/<int:pk>/", views.RunDetail.as_view(), name="run-detail"),
    path("incidents/", views.IncidentList.as_view(), name="incident-list"),
    path("incidents/<int:pk>/", views.IncidentDetail.as_view(), name="incident-detail"),
    path("rules/", views.RuleList.as_view(), name="rule-list"),
    path("rules/test/", views.RuleTest.as_view(), name="rule-test"),
    path("rules/<int:pk>/", views.RuleDetail.as_view(), name="rule-detail"),
    re_path(r"^.*$", not_found),
]
