"""The Celery application.

Broker and result backend come from settings (CELERY_*): kombu's filesystem transport
and the django-db result backend by default, Redis when REDIS_URL is set. Periodic
work is scheduled by django-celery-beat's DatabaseScheduler, one entry per mailbox,
kept in step with the mailbox's own interval by bounces.intake.schedules.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bouncemgr.settings")

app = Celery("bouncemgr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Fixed periodic work. Per-mailbox runs are not here: each Mailbox gets its own
# django-celery-beat entry, kept in step with its interval by bounces.intake.schedules.
app.conf.beat_schedule = {
    # Backstop for deferred (4xx at send time) messages whose retry task was lost.
    "campaigns: retry deferred messages": {"task": "campaigns.retry_deferred", "schedule": 300.0},
    # Soft / blocked suppressions whose time ran out move to the history (issue 11).
    "contacts: expire suppressions": {"task": "contacts.expire_suppressions", "schedule": 3600.0},
    # ... and those an accepted send with no bounce since has disproved (issue 11 item 6).
    "bounces: lift suppressions after accepted sends": {
        "task": "bounces.lift_after_accepted_sends", "schedule": 3600.0},
    # The incident guard's per-minute counts older than its baseline period (issue 14).
    "bounces: sweep incident counts": {"task": "bounces.incidents.sweep_counts", "schedule": 3600.0},
    # Webhook deliveries that are due and not in flight (lost task, broker or worker restart).
    # Read from the process environment: this module loads before the settings.
    "api: sweep due webhook deliveries": {
        "task": "api.sweep_webhook_deliveries",
        "schedule": float(os.environ.get("WEBHOOK_SWEEP_SECONDS") or 30.0),
    },

    # Backstop for notices stored by the SMTP receiver, the accounting endpoint or a webhook
    # whose processing task was lost (a dead worker, a broker outage).
    "intake: process waiting notices": {"task": "bounces.intake.sweep_notices", "schedule": 60.0},
    # The dashboard's stored bounce counts: recounted so changes to older bounces show (issue 15).
    "console: rebuild dashboard counts": {"task": "console.rebuild_dashboard_counts", "schedule": 900.0},
}
