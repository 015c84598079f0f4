"""CSV import in a real browser: a `;` file with a bad row gives a line-numbered report;
a large file is imported in the background while its page refreshes itself."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, MailingList
from tests.browser.conftest import PHONE, assert_no_horizontal_scroll, login

pytestmark = pytest.mark.django_db(transaction=True)

SEMICOLON_FILE = ("E-Mail;Name\n"
                  "ann@example.org;Ann Müller\n"
                  'bob@example.org;"Bob\n'          # line 3: a quote never closed
                  "carl@example.org;Carl\n"
                  "not an address;Dora\n").encode("cp1252")


@pytest.fixture(autouse=True)
def _import_dir(settings, tmp_path):
    settings.CONTACTS_IMPORT_DIR = tmp_path / "imports"


def _upload(page, data: bytes, *, new_list: str) -> None:
    page.goto("/contacts/import/")
    page.set_input_files("#id_file", files=[{"name": "members.csv", "mimeType": "text/csv", "buffer": data}])
    page.fill("#id_new_list", new_list)
    page.click("#import-form button[type=submit]")


def test_a_semicolon_file_with_a_bad_row_gets_a_line_numbered_report(page, make_user):
    make_user("operator", perms=("contacts.add_contact", "contacts.view_contact", "contacts.view_mailinglist"))
    login(page, "operator", next_url="/contacts/import/")
    page.shots("form")

    _upload(page, SEMICOLON_FILE, new_list="Members")

    expect(page).to_have_url(re.compile(r"/contacts/import/[0-9a-f]{32}/$"))
    expect(page.locator("#import-status")).to_contain_text("4 rows read: 2 imported, 2 rejected")
    rows = page.locator("#rejected-rows tbody tr")
    expect(rows.nth(0).locator("td").first).to_have_text("3")
    expect(rows.nth(0)).to_contain_text("unbalanced quote")
    expect(rows.nth(1).locator("td").first).to_have_text("5")
    expect(page.locator("main")).to_contain_text("separated by semicolon")
    assert Contact.objects.get(email="ann@example.org").name == "Ann Müller"
    assert Contact.objects.filter(email="carl@example.org").exists()
    assert_no_horizontal_scroll(page)
    page.shots("report")
    page.set_viewport_size(PHONE)
    page.reload()
    assert_no_horizontal_scroll(page)
    page.shots("report-phone")


def test_a_large_file_imports_in_the_background_while_the_page_shows_progress(page, make_user, settings):
    from contacts.tasks import import_contacts_file_task

    settings.CONTACTS_IMPORT_INLINE_MAX_BYTES = 100
    make_user("operator", perms=("contacts.add_contact",))
    login(page, "operator", next_url="/contacts/import/")
    data = ("email,name\n" + "".join(f"m{i}@example.org,M {i}\n" for i in range(3000))).encode()

    _upload(page, data, new_list="Many")

    expect(page.locator("#import-status")).to_contain_text("Waiting for a worker")
    page.shots("waiting")
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]
    import_contacts_file_task.apply(args=[job_id])  # what the worker does
    expect(page.locator("#import-status")).to_contain_text("3000 rows read: 3000 imported")  # refreshed itself
    assert MailingList.objects.get(name="Many").contacts.count() == 3000
    page.shots("done")
