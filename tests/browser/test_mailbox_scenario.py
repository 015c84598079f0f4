"""An operator's first mailbox, in a real browser against a real Dovecot: add it, test the
connection, browse and pick the bounce folder, process bounces now and read the counts,
then open the bounce it found."""

from __future__ import annotations

import pytest

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
    assert page.locator(".messagelist .success").count() == 1, page.locator(".errorlist").all_inner_texts()
    mailbox = Mailbox.objects.get(name="bounces@example.org")

    page.click("text=Test connection")
    assert page.locator("text=Connection OK").is_visible()
    assert mail_user.password not in page.content()
    page.shots("test-connection")

    page.go_back()
    page.click("text=Browse folders")
    row = page.locator("#mailbox-folders tr", has_text="Bounces")
    assert row.locator("td").nth(1).inner_text() == "1"
    page.shots("folders")
    row.locator("button", has_text="Use this folder").click()
    page.wait_for_load_state()
    mailbox.refresh_from_db()
    assert mailbox.folder == "Bounces"

    page.goto("/")
    page.click("text=Process bounces now")
    page.wait_for_load_state()
    assert "/bounces/runs/" in page.url
    assert page.locator("text=1 hard").first.is_visible()
    page.shots("run")

    bounce = Bounce.objects.get(recipient="gone@example.net")
    assert bounce.kind == "hard"
    page.goto("/")
    assert page.locator("#bm-bounces").is_visible()
    page.goto(f"/bounces/{bounce.pk}/")
    assert page.locator("text=gone@example.net").first.is_visible()
    page.shots("bounce-detail")
