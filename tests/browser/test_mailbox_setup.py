"""Mailbox setup and rules in a real browser, against a real Dovecot: the form adapts to the
protocol and fills in presets (static script), the mailbox is tested, its folders browsed and
their newest messages listed without marking anything seen, the schedule set to a time of day
with the next run shown everywhere; "Process bounces now" and its counts; a rule written,
tested against the stored bounces and seen applied. Every page also at 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bounces.mailboxes import ConnectionSettings, open_mailbox
from bounces.models import Bounce, Mailbox
from bounces.rules.models import BounceRule
from tests.browser.conftest import PHONE, login
from tests.pipeline.conftest import dsn
from tests.servers.dovecot import dovecot, mail_user, oauth2_provider  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]


@pytest.fixture
def eager_tasks(monkeypatch):
    """"Process bounces now" runs the task in the request (no worker in this test)."""
    from bounces.tasks import process_mailbox_task

    monkeypatch.setattr(process_mailbox_task.app.conf, "task_always_eager", True)


def _phone(page, name: str) -> None:
    """The same page at 390 px: the frame fits, a screenshot is kept."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.shots(f"{name}-390")
    width = page.evaluate("() => document.getElementById('header').getBoundingClientRect().width")
    assert width <= PHONE["width"], f"{name}: header {width}px wide at 390px"
    page.set_viewport_size(size)


def _counts(dovecot, user, folder: str) -> tuple[int | None, int | None]:  # noqa: F811
    conn = ConnectionSettings(protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
                              username=user.name, password=user.password)
    with open_mailbox(conn) as box:
        info = next((f for f in box.list_folders() if f.name == folder), None)
    return (info.messages, info.unseen) if info else (None, None)


def test_set_up_an_imap_mailbox_browse_it_schedule_it_and_process_it(  # noqa: PLR0915
        page, make_user, dovecot, mail_user, eager_tasks):  # noqa: F811
    make_user("operator", superuser=True)
    dovecot.make_folder(mail_user, "Bounces")
    dovecot.inject(mail_user, dsn("gone@example.net"), folder="Bounces")
    dovecot.inject(mail_user, dsn("left@example.net"), folder="Bounces")

    login(page, "operator")
    page.click("text=Add a mailbox")
    expect(page).to_have_url(re.compile(r"/admin/bounces/mailbox/add/"))
    # IMAP by default: server and login fields, no local path; moving processed mail is the default
    expect(page.locator(".field-host")).to_be_visible()
    expect(page.locator(".field-path")).to_be_hidden()
    expect(page.locator("#id_processed_action")).to_have_value("move")
    expect(page.locator("#id_processed_folder")).to_have_value("Processed")
    expect(page.locator(".bm-preset-apply")).to_be_hidden()  # the script applies presets at once

    page.select_option("#id_preset", "microsoft365")
    expect(page.locator("#id_host")).to_have_value("outlook.office365.com")
    expect(page.locator(".field-oauth2_client_id")).to_be_visible()
    expect(page.locator(".field-password")).to_be_hidden()
    page.shots("preset-microsoft365")

    page.select_option("#id_protocol", "maildir")
    expect(page.locator(".field-path")).to_be_visible()
    expect(page.locator(".field-host")).to_be_hidden()
    expect(page.locator(".field-username")).to_be_hidden()

    page.select_option("#id_preset", "imap_starttls")
    expect(page.locator("#id_protocol")).to_have_value("imap")
    expect(page.locator("#id_port")).to_have_value("143")
    expect(page.locator(".field-password")).to_be_visible()
    expect(page.locator(".field-oauth2_client_id")).to_be_hidden()

    page.fill("#id_name", "bounces@example.org")
    page.fill("#id_host", "127.0.0.1")
    page.fill("#id_port", str(dovecot.imap_port))
    page.select_option("#id_security", "none")
    page.fill("#id_username", mail_user.name)
    expect(page.locator(".field-run_at")).to_be_hidden()
    page.check("input[name=schedule][value=daily]")
    expect(page.locator(".field-run_at")).to_be_visible()
    expect(page.locator(".field-interval_minutes")).to_be_hidden()
    page.fill("#id_run_at", "06:30")
    _phone(page, "form")

    # no password: refused by the server, not only by the script
    page.click("input[name=_continue]")
    expect(page.locator(".errorlist")).to_contain_text("Enter the password")
    assert not Mailbox.objects.exists()
    page.fill("#id_password", mail_user.password)
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    mailbox = Mailbox.objects.get(name="bounces@example.org")
    assert (mailbox.schedule, f"{mailbox.run_at:%H:%M}", mailbox.processed_action) == ("daily", "06:30", "move")
    expect(page.locator(".field-next_run_text")).to_contain_text("06:30")
    page.shots("saved")
    _phone(page, "mailbox")

    page.click("text=Test connection")
    expect(page.locator("text=Connection OK")).to_be_visible()
    assert mail_user.password not in page.content()
    _phone(page, "test-connection")

    page.go_back()
    page.click("text=Browse folders")
    row = page.locator("#mailbox-folders tr", has_text="Bounces")
    expect(row.locator("td").nth(1)).to_have_text("2")
    row.locator("a", has_text="Newest messages").click()
    table = page.locator("#newest-messages-table")
    expect(table).to_contain_text("Undelivered Mail Returned to Sender")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("MAILER-DAEMON")
    page.shots("newest-messages")
    _phone(page, "newest-messages")
    assert _counts(dovecot, mail_user, "Bounces") == (2, 2)  # still unseen: nothing processed

    page.locator("#mailbox-folders tr", has_text="Bounces").locator("button", has_text="Use this folder").click()
    expect(page.locator("#mailbox-folders tr", has_text="Bounces")).to_contain_text("selected")
    mailbox.refresh_from_db()
    assert mailbox.folder == "Bounces"

    page.goto("/admin/bounces/mailbox/")
    listing = page.locator("#result_list")
    expect(listing).to_contain_text("daily at 06:30")
    expect(listing.locator("td.field-next_run_text")).to_contain_text("06:30")
    _phone(page, "mailbox-list")

    page.goto("/")
    expect(page.locator("#bm-mailboxes").locator("..")).to_contain_text("daily at 06:30")
    page.locator("section", has=page.locator("#bm-mailboxes")).locator(
        "button", has_text="Process bounces now").click()
    expect(page).to_have_url(re.compile(r"/bounces/runs/\d+/"))
    expect(page.locator("#run-summary")).to_contain_text("2 hard")
    _phone(page, "run")
    assert Bounce.objects.filter(kind="hard").count() == 2
    # nothing deleted: these two match no contact, so they are marked read and stay (the
    # matched ones move to "Processed": tests/mailboxes/test_imap.py creates it on TRYCREATE)
    assert _counts(dovecot, mail_user, "Bounces") == (2, 0)
    assert not page.js_errors


def test_write_a_rule_test_it_against_stored_bounces_and_see_it_applied(
        page, make_user, dovecot, mail_user, eager_tasks):  # noqa: F811
    make_user("operator", superuser=True)
    diagnostic = "552 5.2.2 <{rcpt}>: mailbox over quota, try again much later"
    dovecot.inject(mail_user, dsn("full@example.net", status="5.2.2", diagnostic=diagnostic))
    mailbox = Mailbox.objects.create(
        name="bounces", protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
        username=mail_user.name, password=mail_user.password, processed_action="mark_read",
    )
    login(page, "operator")
    page.goto(f"/admin/bounces/mailbox/{mailbox.pk}/change/")
    page.click("text=Process bounces now")
    expect(page.locator("#run-summary")).to_contain_text("1")
    stored = Bounce.objects.get(recipient="full@example.net")

    page.goto("/bounces/rules/new/")
    page.fill("#id_pattern", "try again much later")
    page.select_option("#id_bounce_type", "soft")
    page.fill("#id_name", "Over quota, much later")
    page.click("button[name=_test]")
    expect(page.locator("#matched-count")).to_have_text("1")
    expect(page.locator("#test-summary").locator("..")).to_contain_text("full@example.net")
    page.shots("rule-test")
    _phone(page, "rule-test")
    assert not BounceRule.objects.exists()  # testing saves nothing

    page.click("button[name=_save]")
    rule = BounceRule.objects.get(name="Over quota, much later")

    # a new bounce of that kind is matched by the rule when processed
    dovecot.inject(mail_user, dsn("also-full@example.net", status="5.2.2", diagnostic=diagnostic))
    page.goto(f"/admin/bounces/mailbox/{mailbox.pk}/change/")
    page.click("text=Process bounces now")
    expect(page.locator("#run-summary")).to_contain_text("1 soft")
    fresh = Bounce.objects.get(recipient="also-full@example.net")
    assert (fresh.matched_rule_id, fresh.kind) == (rule.pk, "soft")

    # and re-applied to the stored one
    page.goto("/bounces/rules/reapply/")
    page.click("button[name=preview]")
    expect(page.locator("body")).to_contain_text("full@example.net")
    page.shots("reapply-preview")
    page.click("button:has-text('Apply these changes')")
    expect(page).to_have_url(re.compile(r"/bounces/rules/reapply/\d+/"))
    _phone(page, "reapply")
    stored.refresh_from_db()
    assert stored.matched_rule_id == rule.pk
    page.goto(f"/bounces/{stored.pk}/")
    expect(page.locator("body")).to_contain_text("Over quota, much later")
    _phone(page, "bounce-with-rule")
    assert not page.js_errors
