"""Mailbox settings that cannot work are refused in the admin and reported by `manage.py check`."""

from __future__ import annotations

import pytest
from django.core import checks
from django.urls import reverse

from bounces.checks import check_mailboxes, mailbox_problems
from bounces.models import Bounce, Disposition, Mailbox

pytestmark = pytest.mark.django_db


def form_data(**overrides):
    data = {
        "name": "bounces", "enabled": "on", "protocol": "imap", "host": "imap.example.com", "port": "",
        "security": "ssl", "verify_certificate": "on", "folder": "INBOX", "path": "", "auth": "password",
        "username": "u", "password": "pw", "fetch_mode": "unseen", "interval_minutes": "10",
        "batch_size": "200", "processed_action": "delete", "unmatched_action": "mark_read",
    }
    data.update(overrides)
    return data


def test_a_pop3_mailbox_cannot_move_messages():
    mailbox = Mailbox(name="p", protocol="pop3", host="pop.example.com", processed_action=Disposition.MOVE,
                      processed_folder="Done")
    assert [p.id for p in mailbox_problems(mailbox)] == ["bounces.E003"]


def test_moving_needs_a_target_folder_and_a_remote_mailbox_needs_a_host():
    mailbox = Mailbox(name="i", protocol="imap", host="", unmatched_action=Disposition.MOVE)
    assert {p.id for p in mailbox_problems(mailbox)} == {"bounces.E001", "bounces.E004"}


def test_plain_text_login_to_a_remote_host_is_a_warning_not_an_error():
    problems = mailbox_problems(Mailbox(name="i", host="imap.example.com", security="none"))
    assert [(p.id, p.warning) for p in problems] == [("bounces.W001", True)]
    assert mailbox_problems(Mailbox(name="i", host="127.0.0.1", security="none")) == []


def test_the_system_check_reports_stored_mailboxes_that_cannot_work():
    Mailbox.objects.create(name="ok", host="imap.example.com")
    Mailbox.objects.create(name="bad", protocol="pop3", host="pop.example.com", processed_action="move",
                           processed_folder="x")
    found = check_mailboxes()
    assert [(m.id, m.level) for m in found] == [("bounces.E003", checks.ERROR)]
    assert "'bad'" in found[0].msg


def test_the_admin_form_refuses_a_pop3_move(admin_client):
    response = admin_client.post(reverse("admin:bounces_mailbox_add"),
                                 form_data(protocol="pop3", processed_action="move", processed_folder="Done"))
    assert response.status_code == 200
    assert "POP3 has no folders" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_the_admin_form_saves_good_settings_and_keeps_the_password_when_left_blank(admin_client):
    response = admin_client.post(reverse("admin:bounces_mailbox_add"), form_data())
    assert response.status_code == 302, response.content.decode()[:2000]
    mailbox = Mailbox.objects.get()
    assert mailbox.password == "pw"
    response = admin_client.post(reverse("admin:bounces_mailbox_change", args=[mailbox.pk]),
                                 form_data(password="", folder="Bounces"))
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.password, mailbox.folder) == ("pw", "Bounces")


def test_the_bounce_list_links_to_the_bounce_detail_page(admin_client):
    from django.utils import timezone

    bounce = Bounce.objects.create(recipient="a@example.com", kind="hard", bounced_at=timezone.now())
    page = admin_client.get(reverse("admin:bounces_bounce_changelist")).content.decode()
    assert reverse("bounces:detail", args=[bounce.pk]) in page


def test_the_blacklist_threshold_cannot_be_below_the_soft_threshold(admin_client):
    from bounces.models import BounceSettings

    settings_row = BounceSettings.load()
    url = reverse("admin:bounces_bouncesettings_change", args=[settings_row.pk])
    data = {"hard_actions": settings_row.hard_actions, "soft_policy": "consecutive", "soft_threshold": "5",
            "soft_window_days": "30", "score_stale_days": "7", "soft_blacklist_threshold": "3",
            "complaint_actions": settings_row.complaint_actions, "soft_suppression_days": "90",
            "blocked_suppression_days": "30", "hard_suppression_days": ""}
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "cannot be lower than the soft-bounce threshold" in response.content.decode()
    data["soft_blacklist_threshold"] = "8"
    assert admin_client.post(url, data).status_code == 302
    settings_row.refresh_from_db()
    assert settings_row.soft_blacklist_threshold == 8


def test_the_settings_page_says_what_each_kind_does_and_saves_action_sets(admin_client):
    from bounces.models import BounceSettings

    row = BounceSettings.load()
    assert row.hard_actions == ["mark_hard", "unsubscribe_all", "suppress"]
    url = reverse("admin:bounces_bouncesettings_change", args=[row.pk])
    page = admin_client.get(url).content.decode()
    assert "only on reaching the threshold does the contact get the hard actions" in page
    assert "never counted against the contact, no action" in page
    data = {"hard_actions": ["mark_hard", "suppress", "remove_address"], "soft_policy": "consecutive",
            "soft_threshold": "5", "soft_window_days": "30", "score_stale_days": "7",
            "complaint_actions": ["suppress"], "soft_suppression_days": "", "blocked_suppression_days": "30",
            "hard_suppression_days": ""}
    assert admin_client.post(url, data).status_code == 302
    row.refresh_from_db()
    assert (row.hard_actions, row.complaint_actions, row.soft_suppression_days) == (
        ["mark_hard", "suppress", "remove_address"], ["suppress"], None)


# ---------------------------------------------------------------- issue 12, item 2: local paths
@pytest.fixture
def root(tmp_path, settings):
    path = tmp_path / "mail"
    path.mkdir()
    (path / "bounces.mbox").write_bytes(b"")
    settings.LOCAL_MAILBOX_ROOTS = [str(path)]
    return path


@pytest.mark.parametrize("path", ["/etc/shadow", "../outside.mbox", "/usr/lib/python3/dist-packages/x.pth"])
def test_the_admin_form_refuses_an_mbox_path_outside_the_allowed_folders(admin_client, root, path):
    response = admin_client.post(reverse("admin:bounces_mailbox_add"),
                                 form_data(protocol="mbox", host="", path=path))
    assert response.status_code == 200
    page = response.content.decode()
    assert "outside the folders allowed" in page or "contains &#x27;..&#x27;" in page
    assert not Mailbox.objects.exists()


@pytest.mark.parametrize("folder", ["/usr/lib/python3/dist-packages", "../../x", "a/b", ".."])
def test_the_admin_form_refuses_a_local_move_target_that_is_a_path(admin_client, root, folder):
    response = admin_client.post(reverse("admin:bounces_mailbox_add"),
                                 form_data(protocol="mbox", host="", path="bounces.mbox",
                                           processed_action="move", processed_folder=folder))
    assert response.status_code == 200
    assert "must be a plain file name" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_the_admin_form_accepts_an_mbox_inside_the_root(admin_client, root):
    response = admin_client.post(reverse("admin:bounces_mailbox_add"),
                                 form_data(protocol="mbox", host="", path=str(root / "bounces.mbox"),
                                           processed_action="move", processed_folder="done.mbox"))
    assert response.status_code == 302, response.content.decode()[:3000]


def test_the_system_check_reports_stored_local_paths_outside_the_roots(root):
    Mailbox.objects.create(name="shadow", protocol="mbox", path="/etc/shadow")
    Mailbox.objects.create(name="mover", protocol="maildir", path=str(root), processed_action="move",
                           processed_folder="../../tmp")
    Mailbox.objects.create(name="fine", protocol="mbox", path="bounces.mbox")
    found = {(m.obj.name, m.id) for m in check_mailboxes()}
    assert ("shadow", "bounces.E006") in found
    assert ("mover", "bounces.E007") in found
    assert not [name for name, _ in found if name == "fine"]


def test_the_system_check_reads_no_secret_so_a_lost_key_does_not_crash_it(settings):
    # A lost FIELD_ENCRYPTION_KEY must not crash `manage.py check` here: the check reads
    # no secret (it only needs to know whether one is stored).
    Mailbox.objects.create(name="ok", host="imap.example.com", password="pw")
    settings.FIELD_ENCRYPTION_KEYS = ["bm90LXRoZS1rZXktdGhhdC1lbmNyeXB0ZWQtaXQtMDA="]
    assert [m.id for m in check_mailboxes()] == []


def test_a_relative_local_mailbox_root_is_a_configuration_error(settings):
    from bounces.checks import check_mailbox_settings

    settings.LOCAL_MAILBOX_ROOTS = ["mail", "/var/mail"]
    assert [m.id for m in check_mailbox_settings()] == ["bounces.E008"]
