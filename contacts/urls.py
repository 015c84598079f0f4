"""URLs of the contacts app (staff pages), mounted at /contacts/."""

from django.urls import path

from . import views

app_name = "contacts"
urlpatterns = [
    path("<int:pk>/", views.contact_detail, name="detail"),
    path("<int:pk>/reset-bounce/", views.reset_bounce, name="reset_bounce"),
    path("import/", views.import_contacts_view, name="import"),
    path("suppressions.csv", views.suppressions_csv, name="suppressions_csv"),
]
