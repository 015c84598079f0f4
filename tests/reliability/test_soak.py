"""The one-minute soak (bench/soak.py runs it for 30 minutes): bounces arriving continuously in
Dovecot, real Celery beat and worker processes on Redis and PostgreSQL running each mailbox
every 10 seconds; afterwards every message stored and counted once, no lock, no duplicate, the
worker's memory bounded."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.reliability.soak import soak

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.redis,
              pytest.mark.postgres]


def test_a_minute_of_bounces_under_beat_and_worker_ends_with_every_message_once(
    redis_server, pipeline_dovecot
):
    if connection.vendor != "postgresql":
        pytest.skip("beat and the worker need the shared database (pytest --postgres)")
    work = Path(tempfile.mkdtemp(prefix="bm-soak-"))
    result = soak(db=settings.DATABASES["default"], dovecot=pipeline_dovecot, redis_url=redis_server.url,
                  work=work, duration=60, mailboxes=2, rate=3.0, interval_seconds=10, sample_every=2.0,
                  log=lambda line: None)

    assert not result.problems, (result.problems, result.worker_output[-3000:])
    assert result.injected >= 100
    assert result.runs.get("succeeded", 0) >= 6  # two mailboxes, every 10 s, for a minute
    early, late = result.rss_growth()
    assert late < early * 1.3 + 30 * 1024, result.rss  # no steady growth (KiB)
