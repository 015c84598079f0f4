"""URLs of the campaigns app (staff pages), mounted at /campaigns/."""

from django.urls import path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("<int:pk>/", views.campaign_results, name="results"),
    path("<int:pk>/bounces.csv", views.bounced_recipients_csv, name="bounces_csv"),
]
