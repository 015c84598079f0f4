"""The mailbox form: presets, per-protocol validation without script, credentials required for a
remote mailbox, move-to-a-folder by default, the schedule (interval or time of day) with its
beat entry and next run."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from bounces.intake import schedules
from bounces.models import Mailbox
from bounces.views.mailbox_form import PRESETS

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "/admin/bounces/mailbox/add/"


def _data(**changes) -> dict:
    data = {
        "name": "bounces", "enabled": "on", "protocol": "imap", "host": "imap.example.com", "port": "",
        "security": "ssl", "verify_certificate": "on", "ca_pem": "", "folder": "INBOX", "path": "",
        "auth": "password", "username": "bounces@example.com", "password": "s3cret-pw",
        "oauth2_token_url": "", "oauth2_client_id": "", "oauth2_client_secret": "", "oauth2_refresh_token": "",
        "oauth2_scope": "", "fetch_mode": "unseen", "schedule": "interval", "interval_minutes": "10",
        "run_at": "", "batch_size": "200", "max_messages_per_run": "", "processed_action": "move",
        "processed_folder": "Processed", "unmatched_action": "mark_read", "unmatched_folder": "",
        "hard_action": "", "soft_policy": "", "soft_threshold": "", "soft_window_days": "",
        "soft_blacklist_threshold": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())


def test_the_add_page_offers_presets_and_moves_processed_messages_by_default(admin_client):
    page = admin_client.get(ADD).content.decode()
    for label, _ in PRESETS.values():
        assert label.split(" (")[0] in page
    assert 'src="/static/bouncemgr/mailbox-form.js"' in page
    assert "<script>" not in page.replace('<script src=', '')  # nothing inline
    form = admin_client.get(ADD).context["adminform"].form
    assert form.initial["processed_action"] == "move" and form.initial["processed_folder"] == "Processed"


def test_fill_in_without_script_reloads_the_add_page_with_the_preset(admin_client):
    response = admin_client.post(ADD, {"preset": "gmail", "_preset": "1", "name": "gm", "password": "x"})
    assert response.status_code == 302 and "preset=gmail" in response.url and "password" not in response.url
    form = admin_client.get(response.url).context["adminform"].form
    assert form.initial["host"] == "imap.gmail.com" and form.initial["auth"] == "xoauth2"
    assert form.initial["port"] == 993 and form.initial["name"] == "gm"
    assert not Mailbox.objects.exists()


@pytest.mark.parametrize(("changes", "field"), [
    ({"username": ""}, "username"),
    ({"password": ""}, "password"),
    ({"auth": "xoauth2", "password": ""}, "oauth2_client_secret"),
    ({"protocol": "pop3", "password": ""}, "password"),
    ({"schedule": "daily", "run_at": ""}, "run_at"),
])
def test_a_remote_mailbox_is_not_saved_without_what_its_login_and_schedule_need(admin_client, changes, field):
    response = admin_client.post(ADD, _data(**changes))
    assert response.status_code == 200, response
    assert field in response.context["adminform"].form.errors, _errors(response)
    assert not Mailbox.objects.exists()


def test_fields_of_another_protocol_are_ignored_and_pop3_cannot_move(admin_client, settings, tmp_path):
    settings.LOCAL_MAILBOX_ROOTS = [str(tmp_path)]
    response = admin_client.post(ADD, _data(protocol="pop3", processed_action="move"))
    assert "processed_action" in response.context["adminform"].form.errors
    response = admin_client.post(ADD, _data(protocol="maildir", path="bounces", processed_folder="Processed",
                                            host="imap.example.com", port="993"))
    assert response.status_code == 302, _errors(response)
    box = Mailbox.objects.get()
    assert (box.host, box.port, box.path) == ("", None, "bounces")


def test_an_imap_mailbox_with_credentials_saves_with_its_beat_entry(admin_client):
    response = admin_client.post(ADD, _data())
    assert response.status_code == 302, _errors(response)
    box = Mailbox.objects.get()
    assert box.password == "s3cret-pw" and box.processed_action == "move"
    task = PeriodicTask.objects.get(name=schedules.PERIODIC_TASK_NAME.format(id=box.pk))
    assert task.interval.every == 10 and task.crontab is None


def test_a_daily_schedule_makes_a_crontab_entry_and_the_pages_show_the_next_run(admin_client, settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC), tick=False):
        response = admin_client.post(ADD, _data(schedule="daily", run_at="06:30"))
        assert response.status_code == 302, _errors(response)
        box = Mailbox.objects.get()
        task = PeriodicTask.objects.get(name=schedules.PERIODIC_TASK_NAME.format(id=box.pk))
        assert (task.crontab.hour, task.crontab.minute, task.interval) == ("6", "30", None)
        page = admin_client.get(f"/admin/bounces/mailbox/{box.pk}/change/").content.decode()
        assert "2026-03-03 06:30" in page  # tomorrow: today's 06:30 has passed
        listing = admin_client.get("/admin/bounces/mailbox/").content.decode()
        assert "daily at 06:30" in listing and "2026-03-03 06:30" in listing
        dashboard = admin_client.get("/").content.decode()
        assert "2026-03-03 06:30" in dashboard or "Mar" in dashboard


def test_the_next_interval_run_follows_the_beat_entry_s_last_run():
    box = Mailbox.objects.create(name="m", host="h", username="u", interval_minutes=15)
    schedules.sync_mailbox_schedule(mailbox=box)
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    assert schedules.next_run(box, now=now) == now  # never run: due now
    PeriodicTask.objects.filter(name=schedules.PERIODIC_TASK_NAME.format(id=box.pk)).update(
        last_run_at=now - dt.timedelta(minutes=5))
    annotated = schedules.with_last_scheduled_run(Mailbox.objects.all()).get()
    assert schedules.next_run(annotated, now=now) == now + dt.timedelta(minutes=10)
    box.enabled = False
    assert box.next_run(now=now) is None
