"""An operator's first mailbox, in a real browser against a real Dovecot: add it, test the
connection, browse and pick the bounce folder, process bounces now and read the counts,
then open the bounce it found."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bounces.models import Bounce, Mailbox
from tests.browser.conftest import login
from tests.pipeline.conftest import dsn
from tests.servers.dovecot import dovecot, mail_user, oauth2_provider  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]


@pytest.fixture
def eager_tasks(monkeypatch):
    """"Process bounces now" runs the task in the request (no worker in this test)."""
    from bounces.tasks import process_mailbox_task

    monkeypatch.setattr(process_mailbox_task.app.conf, "task_always_eager", True)


def _fill_imap_form(page, dovecot, user) -> None:  # noqa: F811
    page.fill("#id_name", "bounces@example.org")
    page.select_option("#id_protocol", "imap")
    page.fill("#id_host", "127.0.0.1")
    page.fill("#id_port", str(dovecot.imap_port))
    page.select_option("#id_security", "none")
    page.fill("#id_username", user.name)
    page.fill("#id_password", user.password)


def test_add_test_browse_pick_process_and_read_a_bounce(page, make_user, dovecot, mail_user, eager_tasks):  # noqa: F811
    make_user("operator", superuser=True)
    dovecot.make_folder(mail_user, "Bounces")
    dovecot.inject(mail_user, dsn("gone@example.net"), folder="Bounces")

    login(page, "operator")
    page.click("text=Add a mailbox")
    _fill_imap_form(page, dovecot, mail_user)
    page.shots("form")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    mailbox = Mailbox.objects.get(name="bounces@example.org")

    page.click("text=Test connection")
    expect(page.locator("text=Connection OK")).to_be_visible()
    assert mail_user.password not in page.content()
    page.shots("test-connection")

    page.go_back()
    page.click("text=Browse folders")
    row = page.locator("#mailbox-folders tr", has_text="Bounces")
    expect(row.locator("td").nth(1)).to_have_text("1")
    page.shots("folders")
    row.locator("button", has_text="Use this folder").click()
    expect(page.locator("#mailbox-folders tr", has_text="Bounces")).to_contain_text("selected")
    mailbox.refresh_from_db()
    assert mailbox.folder == "Bounces"

    page.goto("/")
    page.click("text=Process bounces now")
    expect(page).to_have_url(re.compile(r"/bounces/runs/\d+/"))
    expect(page.locator("#run-summary")).to_contain_text("1 hard")
    page.shots("run")

    bounce = Bounce.objects.get(recipient="gone@example.net")
    assert bounce.kind == "hard"
    page.goto("/")
    expect(page.locator("#bm-bounces")).to_be_visible()
    page.goto(f"/bounces/{bounce.pk}/")
    expect(page.locator("#fields")).to_contain_text("gone@example.net")
    expect(page.locator("#delivery-status")).to_contain_text("5.1.1")
    expect(page.locator("#human-readable")).to_contain_text("could not")
    expect(page.locator("#returned-headers")).to_contain_text("gone@example.net")
    expect(page.locator("#raw")).to_have_count(0)
    page.shots("bounce-detail")
    page.click("#show-raw")
    expect(page.locator("#raw")).to_contain_text("Final-Recipient: rfc822; gone@example.net")
    page.shots("bounce-raw")
