"""URLs of the campaigns app (staff pages), mounted at /campaigns/."""

from django.urls import path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("<int:pk>/", views.campaign_results, name="results"),
    path("<int:pk>/bounces.csv", views.bounced_recipients_csv, name="bounces_csv"),
    path("<int:pk>/preview/", views.campaign_preview, name="preview"),
    path("<int:pk>/test/", views.campaign_test_send, name="test_send"),
    path("<int:pk>/send/", views.campaign_send, name="send"),
    path("<int:pk>/pause/", views.campaign_pause, name="pause"),
    path("<int:pk>/progress.json", views.campaign_progress, name="progress"),
    path("<int:pk>/resume/", views.resume_campaign, name="resume"),
]
