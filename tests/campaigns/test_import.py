"""Importing contacts from CSV: every row ends in one reported outcome."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from contacts.importing import ImportFileError, Outcome, import_contacts
from contacts.models import Contact, ContactEvent, MailingList, Subscription, Suppression

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SAMPLE = """email,name
ann@example.com,Ann
not-an-address,Nobody
ANN@example.com,Ann again
bob@example.com,Bob
gone@example.com,Gone
x@blocked.test,Blocked
,
old@example.com,Old Name
kept@example.com,
"""


@pytest.fixture
def mailing_list():
    return MailingList.objects.create(name="news")


def run(text: str, mailing_list: MailingList, **kw):
    return import_contacts(stream=io.StringIO(text), mailing_list=mailing_list, **kw)


def test_each_row_gets_exactly_one_reported_outcome(mailing_list):
    Suppression.objects.create(kind=Suppression.Kind.ADDRESS, value="gone@example.com")
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.test")
    Contact.objects.create(email="Old@Example.com", name="Older")
    kept = Contact.objects.create(email="kept@example.com", name="K")
    Subscription.objects.create(contact=kept, mailing_list=mailing_list)

    report = run(SAMPLE, mailing_list)

    assert report.rows == 9
    outcomes = {(r.line, r.outcome) for r in report.notable}
    assert outcomes == {
        (3, Outcome.INVALID),
        (4, Outcome.DUPLICATE),
        (6, Outcome.SUPPRESSED),
        (7, Outcome.SUPPRESSED),
        (8, Outcome.EMPTY),
        (9, Outcome.UPDATED),
        (10, Outcome.KEPT),
    }
    assert report.counts[Outcome.CREATED] == 2
    assert report.rejected == 5
    assert sum(report.counts.values()) == report.rows


def test_created_contacts_are_active_subscribed_and_audited(mailing_list):
    run("email,name\nann@example.com,Ann\n", mailing_list)

    contact = Contact.objects.get(email="ann@example.com")
    assert contact.name == "Ann" and contact.status == Contact.Status.ACTIVE
    assert Subscription.objects.get(contact=contact).mailing_list == mailing_list
    event = ContactEvent.objects.get(contact=contact)
    assert event.kind == ContactEvent.Kind.IMPORT and event.detail == {"list": "news"}


def test_an_existing_contact_is_matched_regardless_of_case_and_added_to_the_list(mailing_list):
    contact = Contact.objects.create(email="Ann@Example.com", name="Ann")

    report = run("email\nann@EXAMPLE.com\n", mailing_list)

    assert report.notable[0].outcome == Outcome.SUBSCRIBED
    assert Contact.objects.count() == 1
    assert Subscription.objects.filter(contact=contact, mailing_list=mailing_list).exists()


def test_names_of_existing_contacts_are_kept_when_asked(mailing_list):
    Contact.objects.create(email="ann@example.com", name="Ann")

    report = run("email,name\nann@example.com,Annie\n", mailing_list, update_names=False)

    assert report.notable[0].outcome == Outcome.SUBSCRIBED
    assert Contact.objects.get().name == "Ann"


def test_unsubscribed_and_blacklisted_contacts_are_not_brought_back(mailing_list):
    left = Contact.objects.create(email="left@example.com")
    Subscription.objects.create(contact=left, mailing_list=mailing_list, status=Subscription.Status.UNSUBSCRIBED)
    Contact.objects.create(email="banned@example.com", status=Contact.Status.BLACKLISTED)

    report = run("left@example.com\nbanned@example.com\n", mailing_list)

    assert [r.outcome for r in report.notable] == [Outcome.LIST_UNSUBSCRIBED, Outcome.CONTACT_BLOCKED]
    assert Subscription.objects.get(contact=left).status == Subscription.Status.UNSUBSCRIBED
    assert not Subscription.objects.filter(contact__email="banned@example.com").exists()


def test_a_file_without_header_is_read_as_email_then_name(mailing_list):
    report = run("ann@example.com,Ann\nbob@example.com\n", mailing_list)

    assert report.counts[Outcome.CREATED] == 2
    assert Contact.objects.get(email="ann@example.com").name == "Ann"


def test_a_header_without_an_email_column_is_refused(mailing_list):
    with pytest.raises(ImportFileError):
        run("first,last\nAnn,Smith\n", mailing_list)


def test_duplicates_are_found_across_chunks(mailing_list):
    text = "email\n" + "".join(f"r{i}@example.com\n" for i in range(25)) + "R3@example.com\n"

    report = run(text, mailing_list, chunk_size=10)

    assert report.counts[Outcome.CREATED] == 25
    assert [(r.line, r.outcome) for r in report.notable] == [(27, Outcome.DUPLICATE)]


def test_importing_the_same_file_again_changes_nothing(mailing_list):
    run(SAMPLE, mailing_list)
    before = Contact.objects.count()

    report = run(SAMPLE, mailing_list)

    assert Contact.objects.count() == before
    assert report.counts[Outcome.CREATED] == 0
    assert report.counts[Outcome.KEPT] == 6  # every valid, distinct address of the file


def test_the_command_imports_a_file_and_prints_every_row_not_created(tmp_path, mailing_list):
    path = tmp_path / "contacts.csv"
    path.write_bytes("\ufeffEmail,Name\nann@example.com,Ann\nbad,\nann@example.com,\n".encode())
    out = io.StringIO()

    call_command("import_contacts", str(path), "--list", "news", stdout=out)

    text = out.getvalue()
    assert "line 3: bad: rejected: invalid address" in text
    assert "line 4: ann@example.com: rejected: duplicate" in text
    assert "created: 1" in text
    assert Contact.objects.filter(email="ann@example.com").exists()


def test_the_command_writes_a_full_report_and_can_create_the_list(tmp_path, db):
    path = tmp_path / "contacts.csv"
    path.write_text("email\nann@example.com\nbad\n")
    report = tmp_path / "report.csv"

    call_command("import_contacts", str(path), "--list", "new list", "--create-list", "--report",
                 str(report), stdout=io.StringIO())

    lines = report.read_text().splitlines()
    assert lines[0] == "line,email,outcome,detail"
    assert lines[1].startswith("2,ann@example.com,created,contact #")
    assert lines[2] == "3,bad,rejected: invalid address,"
    assert MailingList.objects.filter(name="new list").exists()


def test_the_command_refuses_an_unknown_list(tmp_path, db):
    path = tmp_path / "c.csv"
    path.write_text("email\na@example.com\n")
    with pytest.raises(CommandError):
        call_command("import_contacts", str(path), "--list", "nope")
