"""The pipeline announces what it does: bounce.recorded (one bulk insert per batch), the
contact.suppressed / contact.unsubscribed its actions cause, and run.failed. Stored bounces
go through the real pipeline; the events reach a real receiver on loopback."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import WebhookDelivery, WebhookEvent
from bouncemgr.celery import app
from bounces.intake.mailbox import process_mailbox
from bounces.models import Bounce, Mailbox, ProcessingRun
from tests.pipeline.conftest import campaign, dsn, send  # noqa: F401
from tests.pipeline.test_actions import deliver

from .conftest import make_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def bodies(receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.requests]


def test_a_run_announces_each_bounce_and_what_it_did_to_the_contact(receiver, campaign):  # noqa: F811
    make_endpoint(receiver.url, ["bounce.recorded", "contact.suppressed", "contact.unsubscribed"])
    sent = [send(campaign, f"gone{i}@example.net") for i in range(3)]
    deliver(*(dsn(s.email, token=s.token) for s in sent))
    events = bodies(receiver)
    recorded = [e["data"] for e in events if e["type"] == "bounce.recorded"]
    assert sorted(r["recipient"] for r in recorded) == [s.email for s in sent]
    bounce_ids = set(Bounce.objects.values_list("id", flat=True))
    assert {r["bounce_id"] for r in recorded} == bounce_ids
    first = next(r for r in recorded if r["recipient"] == sent[0].email)
    assert (first["kind"], first["contact_id"], first["campaign_id"]) == ("hard", sent[0].contact_id, campaign.pk)
    assert first["status_code"] == "5.1.1" and "suppress" in first["actions"]
    suppressed = sorted(e["data"]["email"] for e in events if e["type"] == "contact.suppressed")
    assert suppressed == [s.email for s in sent]
    unsubscribed = [e["data"] for e in events if e["type"] == "contact.unsubscribed"]
    assert {u["list_id"] for u in unsubscribed} == {campaign.mailing_list_id} and len(unsubscribed) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == len(events)


def test_a_batch_of_bounces_costs_the_same_few_queries_whatever_its_size(receiver, campaign):  # noqa: F811
    make_endpoint(receiver.url, ["bounce.recorded"])
    app.conf.task_always_eager = False
    from api import events

    queued = []
    original = events.queue_deliveries
    events.queue_deliveries = lambda ids, countdown=None: queued.extend(ids)
    try:
        counts = []
        for n in (2, 40):
            sent = [send(campaign, f"batch{n}-{i}@example.net") for i in range(n)]
            events.subscribed("bounce.recorded")  # the subscription cache is warm in a running worker
            with CaptureQueriesContext(connection) as ctx:
                deliver(*(dsn(s.email, token=s.token) for s in sent))
            counts.append(sum('"api_webhook' in q["sql"] for q in ctx.captured_queries))
    finally:
        events.queue_deliveries = original
    assert WebhookEvent.objects.filter(type="bounce.recorded").count() == 42 == len(queued)
    assert counts[0] == counts[1] <= 3, counts  # endpoints, events, deliveries: not a row each


def test_no_event_work_when_nobody_subscribes(campaign):  # noqa: F811
    sent = send(campaign, "quiet@example.net")
    deliver(dsn(sent.email, token=sent.token))
    assert Bounce.objects.count() == 1 and not WebhookEvent.objects.exists()


def test_a_failed_run_is_announced(receiver, db):
    make_endpoint(receiver.url, ["run.failed"])
    mailbox = Mailbox.objects.create(name="broken", protocol=Mailbox.Protocol.MAILDIR, path="/nonexistent/maildir")
    run = process_mailbox(mailbox_id=mailbox.pk)
    assert run.status == ProcessingRun.Status.FAILED
    [event] = bodies(receiver)
    assert event["type"] == "run.failed"
    assert event["data"]["run_id"] == run.pk and event["data"]["mailbox"] == "broken" and event["data"]["error"]
    assert WebhookDelivery.objects.get().status == "delivered"
