"""The CSV upload page takes files up to CONTACTS_IMPORT_UPLOAD_MAX_BYTES; larger ones go to the command."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.forms import ImportContactsForm
from contacts.models import Contact, MailingList

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def csv_of(rows: int) -> bytes:
    return ("email,name\n" + "".join(f"c{i}@example.com,Contact {i}\n" for i in range(rows))).encode()


def form_with(data: bytes, mailing_list: MailingList) -> ImportContactsForm:
    upload = SimpleUploadedFile("contacts.csv", data, content_type="text/csv")
    return ImportContactsForm({"mailing_list": mailing_list.pk, "update_names": "on"}, {"file": upload})


def test_a_file_above_the_limit_is_refused_with_a_pointer_to_the_command(settings):
    settings.CONTACTS_IMPORT_UPLOAD_MAX_BYTES = 1024
    form = form_with(csv_of(100), MailingList.objects.create(name="news"))

    assert not form.is_valid()
    message = form.errors["file"][0]
    assert "1.0\xa0KB" in message and "manage.py import_contacts" in message
    assert form.errors.as_data()["file"][0].code == "too_large"


def test_a_file_within_the_limit_is_accepted(settings):
    settings.CONTACTS_IMPORT_UPLOAD_MAX_BYTES = 1024
    form = form_with(csv_of(5), MailingList.objects.create(name="news"))

    assert form.is_valid(), form.errors


def test_a_zero_limit_means_no_limit(settings):
    settings.CONTACTS_IMPORT_UPLOAD_MAX_BYTES = 0
    form = form_with(csv_of(200), MailingList.objects.create(name="news"))

    assert form.is_valid(), form.errors
    assert "manage.py" not in form.fields["file"].help_text


def test_the_default_limit_is_shown_next_to_the_field():
    form = ImportContactsForm()

    assert "100.0\xa0MB" in form.fields["file"].help_text
    assert "import_contacts" in form.fields["file"].help_text


def test_the_upload_page_refuses_a_large_file_and_imports_nothing(admin_client, settings):
    settings.CONTACTS_IMPORT_UPLOAD_MAX_BYTES = 1024
    mailing_list = MailingList.objects.create(name="news")
    upload = SimpleUploadedFile("big.csv", csv_of(100), content_type="text/csv")

    response = admin_client.post(reverse("contacts:import"),
                                 {"mailing_list": mailing_list.pk, "file": upload})

    assert response.status_code == 200
    assert "manage.py import_contacts" in response.content.decode()
    assert not Contact.objects.exists()
