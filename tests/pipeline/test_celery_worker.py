"""The scheduled path for real: a Celery worker process takes process_mailbox_task from Redis,
reads the real Dovecot and writes to the real PostgreSQL the test reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from bounces.models import Bounce, ProcessingRun
from bounces.tasks import process_mailbox_task
from contacts.models import Contact
from tests.conftest import TEST_ENCRYPTION_KEY

from .conftest import dsn, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.redis,
              pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_process_runs_the_mailbox_task_from_redis(
    redis_server, pipeline_dovecot, mail_user, mailbox, campaign
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs the shared database (pytest --postgres)")
    sent = [send(campaign, f"gone{i}@example.net") for i in range(3)]
    for s in sent:
        pipeline_dovecot.inject(mail_user, dsn(s.email, token=s.token))
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_server.url,
        "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--pool=solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    # A client of its own, as the web process would be when configured with REDIS_URL.
    client = Celery("client", broker=redis_server.url, backend=redis_server.url)
    try:
        outcome = client.send_task(process_mailbox_task.name, args=[mailbox.pk]).get(timeout=90)
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")
    assert "Traceback" not in output, output
    run = ProcessingRun.objects.get(mailbox=mailbox)
    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert (run.fetched, run.hard) == (3, 3), outcome
    assert Bounce.objects.filter(kind="hard", campaign=campaign).count() == 3
    assert set(Contact.objects.filter(pk__in=[s.contact_id for s in sent]).values_list("has_bounced", flat=True)) \
        == {True}
    assert pipeline_dovecot.message_files(mail_user) == []
