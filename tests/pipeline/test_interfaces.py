"""Admin buttons, run page, schedules, the management command and the Celery task."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from bouncemgr.celery import app as celery_app
from bounces.intake.mailbox import TransientRunError, process_mailbox
from bounces.intake.schedules import sync_all_schedules
from bounces.models import Bounce, Mailbox, ProcessingRun
from bounces.tasks import process_mailbox_task

from .conftest import dsn, send

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _mailbox_post_data(mailbox: Mailbox, **changes) -> dict:
    data = {
        "name": mailbox.name, "enabled": "on", "protocol": mailbox.protocol, "host": mailbox.host,
        "port": str(mailbox.port or ""), "security": mailbox.security, "verify_certificate": "on",
        "ca_pem": "", "folder": mailbox.folder, "path": "", "auth": mailbox.auth, "username": mailbox.username,
        "password": "", "oauth2_token_url": "", "oauth2_client_id": "", "oauth2_client_secret": "",
        "oauth2_refresh_token": "", "oauth2_scope": "", "fetch_mode": mailbox.fetch_mode,
        "interval_minutes": str(mailbox.interval_minutes), "batch_size": str(mailbox.batch_size),
        "max_messages_per_run": "", "processed_action": mailbox.processed_action, "processed_folder": "",
        "unmatched_action": mailbox.unmatched_action, "unmatched_folder": "", "hard_action": "",
        "soft_policy": "", "soft_threshold": "", "soft_window_days": "", "soft_blacklist_threshold": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


@pytest.mark.dovecot
def test_the_mailbox_page_has_the_buttons_and_process_now_shows_the_result(
    admin_client, eager_celery, pipeline_dovecot, mail_user, mailbox, campaign
):
    sent = send(campaign, "btn@example.net")
    pipeline_dovecot.inject(mail_user, dsn("btn@example.net", token=sent.token))

    page = admin_client.get(f"/admin/bounces/mailbox/{mailbox.pk}/change/").content.decode()
    assert "Process bounces now" in page and "Test connection" in page and "Browse folders" in page
    response = admin_client.post(f"/bounces/mailboxes/{mailbox.pk}/process/")

    run = ProcessingRun.objects.get()
    assert response.status_code == 302 and response.url == f"/bounces/runs/{run.pk}/"
    status = json.loads(admin_client.get(f"/bounces/runs/{run.pk}/status.json").content)
    assert status["finished"] and status["status"] == "succeeded"
    assert status["summary"].startswith("1 hard, 0 soft, 0 complaints, 0 auto-replies, 0 unknown, 0 unmatched")
    assert run.trigger == "manual" and run.triggered_by is not None
    assert "1 hard" in admin_client.get(f"/bounces/runs/{run.pk}/").content.decode()


def test_the_mailbox_list_has_a_process_all_button_and_pages_render(admin_client):
    Mailbox.objects.create(name="off", host="127.0.0.1", enabled=False)
    assert "Process all mailboxes now" in admin_client.get("/admin/bounces/mailbox/").content.decode()
    for url in ("/bounces/runs/", "/bounces/unexplained/", "/bounces/deliverability/",
                "/admin/bounces/processingrun/", "/admin/bounces/bounce/", "/admin/bounces/rawmessage/"):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/bounces/bouncesettings/").status_code == 302
    response = admin_client.post("/bounces/mailboxes/process-all/")
    assert response.status_code == 302 and not ProcessingRun.objects.exists()  # none enabled


def test_saving_a_mailbox_in_the_admin_keeps_its_beat_entry_in_step(admin_client):
    mailbox = Mailbox.objects.create(name="sched", host="127.0.0.1", port=1, security="none", username="u",
                                     password="pw")
    response = admin_client.post(f"/admin/bounces/mailbox/{mailbox.pk}/change/",
                                 _mailbox_post_data(mailbox, interval_minutes="7"))
    assert response.status_code == 302, response.content.decode()[:2000]
    task = PeriodicTask.objects.get(name=f"bounces: process mailbox #{mailbox.pk}")
    assert (task.interval.every, task.enabled, json.loads(task.args)) == (7, True, [mailbox.pk])

    admin_client.post(f"/admin/bounces/mailbox/{mailbox.pk}/change/",
                      _mailbox_post_data(mailbox, interval_minutes="7", enabled=False))
    assert not PeriodicTask.objects.get(pk=task.pk).enabled

    admin_client.post(f"/admin/bounces/mailbox/{mailbox.pk}/delete/", {"post": "yes"})
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_sync_schedules_creates_missing_and_removes_stale_entries():
    mailbox = Mailbox.objects.create(name="s2", host="127.0.0.1")
    out = io.StringIO()
    call_command("process_bounces", "--sync-schedules", stdout=out)
    assert "1 mailbox schedules in sync" in out.getvalue()
    mailbox.delete()
    assert sync_all_schedules() == (0, 1)


@pytest.mark.dovecot
def test_the_command_processes_a_mailbox_and_prints_the_summary(pipeline_dovecot, mail_user, mailbox, campaign):
    sent = send(campaign, "cmd@example.net")
    pipeline_dovecot.inject(mail_user, dsn("cmd@example.net", token=sent.token))
    out = io.StringIO()

    call_command("process_bounces", "--mailbox", mailbox.name, "--dry-run", stdout=out)
    assert "[dry run]" in out.getvalue() and not Bounce.objects.exists()
    call_command("process_bounces", "--all", stdout=out)

    assert "1 hard, 0 soft, 0 complaints, 0 auto-replies, 0 unknown, 0 unmatched" in out.getvalue()
    assert Bounce.objects.count() == 1


def test_an_unreachable_server_fails_the_run_with_a_transient_error_for_retry():
    from tests.servers.common import free_loopback_port

    mailbox = Mailbox.objects.create(name="down", host="127.0.0.1", port=free_loopback_port(),
                                     security="none", username="u", password="p")
    with pytest.raises(TransientRunError):
        process_mailbox(mailbox_id=mailbox.pk)

    mailbox.refresh_from_db()
    run = ProcessingRun.objects.get()
    assert run.status == "failed" and "refused" in run.error_log
    assert mailbox.last_error and mailbox.last_error_at and mailbox.locked_until is None


def test_the_task_is_safe_to_run_twice_and_retries_transient_errors():
    assert process_mailbox_task.acks_late
    assert TransientRunError in process_mailbox_task.autoretry_for
    assert process_mailbox_task.time_limit and process_mailbox_task.soft_time_limit
    assert process_mailbox_task.run(999_999) == {"skipped": "mailbox deleted"}


def test_the_unexplained_queue_links_to_the_rule_editor_with_a_pattern(admin_client):
    from bounces.intake.stored import process_stored_messages
    from bounces.models import RawMessage

    raw = b"From: robot@example.net\r\nSubject: Strange notice 42\r\n\r\nsomething odd\r\n"
    RawMessage.objects.create(dedupe_key="q:1", source="upload", sha256="0" * 64, raw=raw, size=len(raw))
    process_stored_messages()

    page = admin_client.get("/bounces/unexplained/").content.decode()

    assert "/bounces/rules/new/?pattern=Strange+notice+42&amp;section=subject" in page
    bounce = Bounce.objects.get()
    response = admin_client.post(f"/bounces/unexplained/{bounce.pk}/", {"action": "not_bounce"})
    assert response.status_code == 302
    assert Bounce.objects.get().state == "ignored"


def test_a_view_only_staff_user_cannot_mark_bounces_not_a_bounce_in_the_admin(client):
    from django.contrib.auth.models import Permission, User

    from bounces.intake.stored import process_stored_messages
    from bounces.models import RawMessage

    raw = b"From: robot@example.net\r\nSubject: Strange notice\r\n\r\nsomething odd\r\n"
    RawMessage.objects.create(dedupe_key="q:2", source="upload", sha256="0" * 64, raw=raw, size=len(raw))
    process_stored_messages()
    bounce = Bounce.objects.get()
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_bounce"))
    client.force_login(viewer)

    client.post("/admin/bounces/bounce/", {"action": "mark_not_a_bounce", "_selected_action": [bounce.pk]})

    assert Bounce.objects.get().state == Bounce.State.UNMATCHED
