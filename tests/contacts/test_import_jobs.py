"""The CSV import page as the operator uses it: the upload is stored, imported in the
request when small or by the Celery task when large, a page shows the progress and then
the report with line numbers; nothing is created when nothing is imported."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from contacts import import_jobs
from contacts.models import Contact, MailingList
from contacts.tasks import import_contacts_file_task

pytestmark = pytest.mark.django_db

BAD_ROW_FILE = (b"email;name\n"
                b"ann@example.org;Ann\n"
                b'bob@example.org;"Bob\n'       # line 3: unbalanced quote
                b"not-an-address;X\n"           # line 4
                b"carl@example.org;Carl\n")


def staff(django_user_model, username: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(username=username, password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="contacts",
                                                        codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def importer(django_user_model) -> Client:
    return staff(django_user_model, "importer", "add_contact", "view_contact")


def upload(client: Client, data: bytes, **fields):
    return client.post(reverse("contacts:import"), {
        "file": SimpleUploadedFile("people.csv", data, content_type="text/csv"), "update_names": "on", **fields,
    })


def test_a_small_file_is_imported_at_once_and_the_report_names_the_bad_lines(importer):
    response = upload(importer, BAD_ROW_FILE, new_list="Members")

    job_url = response["Location"]
    page = importer.get(job_url)
    html = page.content.decode()
    job = page.context["job"]
    assert (job.status, job.rows, job.imported, job.rejected) == ("done", 4, 2, 2)
    assert [row[0] for row in job.shown] == [3, 4]
    assert "unbalanced quote" in html and "separated by semicolon" in html
    assert "http-equiv=\"refresh\"" not in html
    assert set(Contact.objects.values_list("email", flat=True)) == {"ann@example.org", "carl@example.org"}
    assert MailingList.objects.filter(name="Members").exists()
    report = importer.get(reverse("contacts:import_job_report", args=[job.id]))
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert [r[0] for r in rows] == ["line", "3", "4"]


def test_a_large_file_is_imported_in_the_background_with_a_progress_page(
    importer, settings, django_capture_on_commit_callbacks
):
    settings.CONTACTS_IMPORT_INLINE_MAX_BYTES = 10
    members = MailingList.objects.create(name="Members")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = upload(importer, BAD_ROW_FILE, mailing_list=members.pk)

    waiting = importer.get(response["Location"])
    assert waiting.context["job"].status == "queued"
    assert "Waiting for a worker" in waiting.content.decode()
    assert 'http-equiv="refresh"' in waiting.content.decode()
    assert not Contact.objects.exists()
    assert len(queued) == 1

    import_contacts_file_task.apply(args=[waiting.context["job"].id])  # what the worker runs

    done = importer.get(response["Location"])
    assert done.context["job"].status == "done" and done.context["job"].imported == 2
    assert 'http-equiv="refresh"' not in done.content.decode()
    stored = [p.name for p in import_jobs.import_dir().glob("*.csv") if not p.name.endswith(".report.csv")]
    assert stored == []  # the stored upload is removed, the report kept
    assert len(list(import_jobs.import_dir().glob("*.report.csv"))) == 1


def test_the_task_is_sent_by_name_and_runs_on_commit(importer, settings, monkeypatch,
                                                      django_capture_on_commit_callbacks):
    settings.CONTACTS_IMPORT_INLINE_MAX_BYTES = 10
    monkeypatch.setattr(import_contacts_file_task.app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(importer, BAD_ROW_FILE, new_list="Members")

    assert importer.get(response["Location"]).context["job"].status == "done"
    assert Contact.objects.count() == 2


def test_progress_is_written_after_each_chunk(importer, settings, monkeypatch):
    states = []
    real_save = import_jobs._save
    monkeypatch.setattr(import_jobs, "_save", lambda job: (states.append((job.status, job.rows, job.bytes_read)),
                                                           real_save(job)))
    data = ("email,name\n" + "".join(f"p{i}@example.org,P {i}\n" for i in range(2500))).encode()
    settings.CONTACTS_IMPORT_INLINE_MAX_BYTES = 10**9

    upload(importer, data, new_list="Big")

    running = [(rows, read) for status, rows, read in states if status == "running"]
    assert [rows for rows, _ in running] == [0, 1000, 2000, 2500]
    assert 0 < running[1][1] < len(data)
    assert states[-1][0] == "done"


def test_nothing_imported_creates_nothing_not_even_the_new_list(importer):
    response = upload(importer, b"email\nnot-an-address\n\n", new_list="Fresh")

    page = importer.get(response["Location"])
    assert "nothing was created, not even the list" in page.content.decode()
    assert not MailingList.objects.filter(name="Fresh").exists()
    assert not Contact.objects.exists()


def test_a_file_with_no_email_column_is_refused_on_the_form(importer):
    response = upload(importer, b"colour;size\nred;10\n", new_list="Fresh")

    assert response.status_code == 200
    assert "No email column" in response.context["form"].errors["file"][0]
    assert not MailingList.objects.filter(name="Fresh").exists()


def test_an_import_is_seen_only_by_who_started_it_and_needs_add_contact(importer, django_user_model):
    job_url = upload(importer, BAD_ROW_FILE, new_list="Members")["Location"]
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    other = staff(django_user_model, "other", "add_contact")
    viewer = staff(django_user_model, "viewer", "view_contact")

    assert other.get(job_url).status_code == 404
    assert other.get(reverse("contacts:import_job_report", args=[job_id])).status_code == 404
    assert viewer.get(job_url).status_code == 403
    assert viewer.post(reverse("contacts:import"), {}).status_code == 403
    assert importer.get(reverse("contacts:import_job", args=["..%2f..%2fetc"])).status_code == 404
    assert importer.get(reverse("contacts:import_job", args=[job_id.upper()])).status_code == 404
