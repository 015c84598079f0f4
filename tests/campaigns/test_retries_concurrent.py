"""Two retry sweeps at the same time on PostgreSQL: every deferred message is delivered once.

Each sweep runs in its own thread with its own database connection (committed
transactions, as two Celery workers would); the claims are the only coordination.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone

from campaigns import services
from campaigns.models import SentMessage

from .conftest import make_campaign, make_list, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_two_concurrent_sweeps_deliver_each_deferred_message_exactly_once(smtp_server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers: run with --postgres")
    settings.CAMPAIGN_DEFER_RETRY_DELAYS = [60]
    addresses = [f"r{i}@example.com" for i in range(40)]
    mailing_list = make_list()
    subscribe(mailing_list, *addresses)
    for address in addresses:
        smtp_server.refuse(address, "451 4.7.1 Greylisted, try again later")
    campaign = make_campaign(mailing_list)
    assert services.send_campaign(campaign_id=campaign.pk).deferred == 40
    for address in addresses:
        smtp_server.refuse(address, "")

    reports: list[services.RetryReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def sweep() -> None:
        try:
            start.wait()
            reports.append(services.retry_deferred(batch_size=5))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=2), tick=True):
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert not errors, errors
    delivered = sorted(rcpt for env in smtp_server.received for rcpt in env.rcpt_tos)
    assert delivered == sorted(addresses)  # each exactly once
    assert sum(r.retried for r in reports) == 40 and sum(r.sent for r in reports) == 40
    assert set(SentMessage.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"sent"}
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.deferred_count) == (40, 0)
