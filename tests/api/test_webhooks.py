"""Outgoing webhooks delivered to a real HTTP server on loopback, verified with the
standardwebhooks library, retried, given up, disabled, redelivered."""

from __future__ import annotations

import json
import time

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from api import events, services
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from bouncemgr.celery import app
from contacts.models import Contact, ContactEvent, Subscription, Suppression
from contacts.services import Action, ContactActionBatch, add_suppressions, release_addresses
from tests.campaigns.conftest import make_campaign, make_list, subscribe

from .conftest import Behaviour, Receiver, make_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _eager(settings):
    """Tasks run in the test process; retries come quickly."""
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_SWEEP_SECONDS = 0
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def drain(timeout: float = 10.0) -> None:
    """Run the sweep until no delivery is pending and due (what beat does every few seconds)."""
    deadline = time.monotonic() + timeout
    while WebhookDelivery.objects.filter(status="pending").exists():
        assert time.monotonic() < deadline, list(WebhookDelivery.objects.values())
        services.sweep_due_deliveries()
        time.sleep(0.02)


def test_an_event_reaches_the_receiver_signed_per_standard_webhooks(receiver):
    endpoint = make_endpoint(receiver.url, ["bounce.recorded"])
    with transaction.atomic():
        event = events.emit_event("bounce.recorded", {"bounce_id": 7, "recipient": "gone@example.org"})
        assert receiver.count == 0  # nothing leaves before the commit
    assert receiver.count == 1
    request = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "bounce.recorded" and payload["data"] == {"bounce_id": 7, "recipient": "gone@example.org"}
    assert request.headers["webhook-id"] == event.event_id
    assert request.headers["content-type"] == "application/json"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)
    with pytest.raises(Exception):  # noqa: B017 - another secret does not verify
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)


def test_a_receiver_failing_three_times_gets_the_event_once_with_the_same_id():
    with Receiver(Behaviour(fail_first=3)) as receiver:
        make_endpoint(receiver.url, ["contact.suppressed"])
        add_suppressions(values=["x@example.org"])
        drain()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 4 and len(set(ids)) == 1
    assert receiver.delivered_ids() == ids[:1]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 4, "")
    assert WebhookEndpoint.objects.get().failure_count == 0


def test_no_event_and_no_request_when_the_transaction_rolls_back(receiver):
    make_endpoint(receiver.url, ["bounce.recorded"])
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit_event("bounce.recorded", {"bounce_id": 1})
        raise RuntimeError("rollback")
    assert not WebhookEvent.objects.exists() and receiver.count == 0


def test_emitting_with_no_subscriber_costs_one_cached_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert events.emit_event("bounce.recorded", {"bounce_id": 1}) is None
    with django_assert_num_queries(0):
        assert events.emit_events("bounce.recorded", [{"bounce_id": 2}] * 500) == []
    make_endpoint("https://hooks.example.org/x", ["run.failed"])
    with django_assert_num_queries(1):  # the cache was dropped; bounce.recorded still has no subscriber
        assert events.emit_event("bounce.recorded", {"bounce_id": 3}) is None


def test_a_batch_is_bulk_inserts_and_goes_only_to_subscribed_enabled_endpoints(
    receiver, django_assert_max_num_queries
):
    wanted = make_endpoint(receiver.url, ["bounce.recorded"])
    make_endpoint(receiver.url + "?other", ["run.failed"])
    make_endpoint(receiver.url + "?off", ["bounce.recorded"], enabled=False)
    app.conf.task_always_eager = False
    sent = []
    from api import tasks

    original = tasks.deliver_webhooks_task.delay
    tasks.deliver_webhooks_task.delay = lambda ids: sent.append(ids)
    try:
        events.subscribed("bounce.recorded")  # warm the cache
        with transaction.atomic():
            # endpoints, savepoint, bulk INSERTs (several on SQLite: its parameter limit), release
            with django_assert_max_num_queries(10):
                events.emit_events("bounce.recorded", [{"bounce_id": i} for i in range(250)])
    finally:
        tasks.deliver_webhooks_task.delay = original
    assert WebhookDelivery.objects.filter(endpoint=wanted).count() == 250 == WebhookDelivery.objects.count()
    assert [len(chunk) for chunk in sent] == [100, 100, 50]


def test_a_failing_endpoint_is_retried_then_given_up_after_the_window(receiver, settings, time_machine):
    receiver.behaviour.status = 503
    settings.WEBHOOK_RETRY_HOURS = 1 / 3600  # a one-second window, on a clock only the test moves
    time_machine.move_to(timezone.now(), tick=False)
    make_endpoint(receiver.url, ["run.failed"])
    events.emit_event("run.failed", {"run_id": 1})  # the first attempt
    for _ in range(100):  # retries come after 0.05 s, 0.1 s, 0.2 s ... (±10 %): gives up within ~1.6 s
        if not WebhookDelivery.objects.filter(status="pending").exists():
            break
        time_machine.shift(0.1)
        services.sweep_due_deliveries()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts >= 2 and delivery.last_error == "HTTP 503"


def test_an_endpoint_failing_repeatedly_is_disabled_and_the_admins_are_told(receiver, settings, mailoutbox):
    receiver.behaviour.status = 500
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.ADMINS = [("Ops", "ops@example.org")]
    endpoint = make_endpoint(receiver.url, ["run.failed"])
    events.emit_events("run.failed", [{"run_id": i} for i in range(5)])
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "3 consecutive" in endpoint.disabled_reason
    assert len(mailoutbox) == 1 and endpoint.url in mailoutbox[0].body
    assert WebhookDelivery.objects.filter(status="pending").count() == 5
    assert events.emit_event("run.failed", {"run_id": 9}) is None  # no longer subscribed
    receiver.behaviour.status = 200
    services.enable_endpoint(endpoint=endpoint)
    drain()
    assert WebhookDelivery.objects.filter(status="delivered").count() == 5


def test_private_addresses_are_refused_unless_allowed(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    make_endpoint(receiver.url, ["run.failed"])
    events.emit_event("run.failed", {"run_id": 1})
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error == "blocked: private or local address" and receiver.count == 0


def test_the_admin_redelivers_a_delivered_event_with_the_same_id(receiver, admin_client):
    make_endpoint(receiver.url, ["run.failed"])
    event = events.emit_event("run.failed", {"run_id": 1})
    delivery = WebhookDelivery.objects.get()
    response = admin_client.post("/admin/api/webhookdelivery/", {"action": "redeliver",
                                                                  "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.event_id] * 2
    page = admin_client.get(f"/admin/api/webhookdelivery/?endpoint__id__exact={delivery.endpoint_id}")
    assert page.status_code == 200 and event.event_id.encode() in page.content


# --------------------------------------------------------------------------- the hooks
def test_contact_services_emit_suppressed_released_and_unsubscribed(receiver):
    make_endpoint(receiver.url, ["contact.suppressed", "contact.released", "contact.unsubscribed"])
    mailing_list = make_list()
    [contact] = subscribe(mailing_list, "gone@example.org")
    with transaction.atomic():
        batch = ContactActionBatch(actor_label="test")
        locked = batch.lock([contact.pk])[contact.pk]
        batch.apply(locked, [Action.MARK_HARD, Action.SUPPRESS, Action.UNSUBSCRIBE], list_id=mailing_list.pk)
        batch.flush()
    with transaction.atomic():  # the same actions again: nothing new to announce
        batch = ContactActionBatch(actor_label="test")
        locked = batch.lock([contact.pk])[contact.pk]
        batch.apply(locked, [Action.SUPPRESS, Action.UNSUBSCRIBE], list_id=mailing_list.pk)
        batch.flush()
    release_addresses(values=["gone@example.org"])
    release_addresses(values=["gone@example.org"])
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["contact.suppressed", "contact.unsubscribed", "contact.released"]
    assert bodies[0]["data"]["contact_id"] == contact.pk and bodies[0]["data"]["reason"] == "hard_bounce"
    assert bodies[2]["data"]["lift_reason"] == "released"
    assert bodies[1]["data"] == {"contact_id": contact.pk, "email": "gone@example.org",
                                 "list_id": mailing_list.pk, "reason": "hard_bounce"}
    assert Subscription.objects.get().status == "unsubscribed"
    assert not Suppression.objects.exists()


def test_resetting_a_contacts_bounce_state_announces_the_release(receiver):
    from contacts.services import reset_bounce_state

    make_endpoint(receiver.url, ["contact.released"])
    contact = Contact.objects.create(email="back@example.org", has_bounced=True)
    Suppression.objects.create(value="back@example.org", reason=Suppression.Reason.HARD_BOUNCE)
    reset_bounce_state(contact=contact, actor="ops")
    [request] = receiver.requests
    assert json.loads(request.body)["data"]["lift_reason"] == "reset"
    assert ContactEvent.objects.filter(kind="bounce_reset").exists()


def test_pausing_a_campaign_announces_it(receiver):
    from campaigns.services import pause_campaign

    make_endpoint(receiver.url, ["campaign.paused"])
    campaign = make_campaign(make_list())
    pause_campaign(campaign=campaign)
    [request] = receiver.requests
    assert json.loads(request.body)["data"] == {"campaign_id": campaign.pk, "name": campaign.name,
                                                "cause": "operator", "error": ""}


def test_an_unreadable_secret_fails_the_attempt_without_sending(receiver):
    endpoint = make_endpoint(receiver.url, ["run.failed"])
    from django.db import connection

    with connection.cursor() as cursor:  # as if stored under a key since lost
        cursor.execute("UPDATE api_webhookendpoint SET secret = %s WHERE id = %s", ["gAAAA-lost-key", endpoint.pk])
    events.emit_event("run.failed", {"run_id": 1})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_error, receiver.count) == ("pending", "signing secret unreadable", 0)
