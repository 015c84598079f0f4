"""URLs of the contacts app (staff pages), mounted at /contacts/."""

from django.urls import path

from . import views

app_name = "contacts"
urlpatterns = [
    path("<int:pk>/", views.contact_detail, name="detail"),
    path("<int:pk>/reset-bounce/", views.reset_bounce, name="reset_bounce"),
    path("import/", views.import_contacts_view, name="import"),
    path("import/<str:job_id>/", views.import_job_view, name="import_job"),
    path("import/<str:job_id>/report.csv", views.import_job_report, name="import_job_report"),
    path("suppressions.csv", views.suppressions_csv, name="suppressions_csv"),
]
