"""GET /api/v1/check?email=: may this address be mailed, and why not — for every contact state,
and in agreement with what the campaign sender really skips."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.services import send_campaign
from contacts.models import Contact, Subscription, Suppression
from tests.campaigns.conftest import make_campaign, make_list, smtp_server, subscribe  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # raw SQL on both backends


def check(client, email: str, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/api/v1/check?email={email}&{query}")
    assert response.status_code == 200, response.content
    return response.json()


def codes(result: dict) -> list[str]:
    return [r["code"] for r in result["reasons"]]


def test_a_hard_bounced_contact_may_not_be_mailed(read_client):
    Contact.objects.create(email="hb@example.org", has_bounced=True)
    assert codes(check(read_client, "hb@example.org")) == ["contact_hard_bounced"]


@pytest.mark.parametrize(("status", "code"), [
    (Contact.Status.ACTIVE, None),
    (Contact.Status.UNCONFIRMED, "contact_unconfirmed"),
    (Contact.Status.UNSUBSCRIBED, "contact_unsubscribed"),
    (Contact.Status.BLACKLISTED, "contact_blacklisted"),
])
def test_each_contact_status(read_client, status, code):
    contact = Contact.objects.create(email="Person@Example.org", status=status)
    result = check(read_client, "person@EXAMPLE.org")
    assert result["allowed"] is (code is None)
    assert codes(result) == ([code] if code else [])
    assert result["contact"]["id"] == contact.pk and result["contact"]["status"] == status


def test_an_unknown_address_is_judged_by_the_suppression_list_alone(read_client):
    assert check(read_client, "nobody@example.org") == {
        "email": "nobody@example.org", "allowed": True, "reasons": [], "contact": None, "suppression": None,
    }


def test_a_suppressed_address_and_a_suppressed_parent_domain(read_client):
    Contact.objects.create(email="gone@example.org", has_bounced=True, hard_bounce_count=1)
    Suppression.objects.create(value="gone@example.org", reason=Suppression.Reason.HARD_BOUNCE)
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.example", reason="complaint")
    gone = check(read_client, "gone@example.org")
    assert gone["allowed"] is False and codes(gone) == ["suppressed_address", "contact_hard_bounced"]
    assert gone["suppression"]["reason"] == "hard_bounce" and gone["contact"]["has_bounced"] is True
    sub = check(read_client, "a@mail.blocked.example")
    assert codes(sub) == ["suppressed_domain"] and sub["suppression"]["value"] == "blocked.example"


def test_a_suppressed_and_unsubscribed_contact_gets_both_reasons(read_client):
    Contact.objects.create(email="both@example.org", status=Contact.Status.UNSUBSCRIBED)
    Suppression.objects.create(value="both@example.org", reason=Suppression.Reason.UNSUBSCRIBE)
    assert codes(check(read_client, "both@example.org")) == ["suppressed_address", "contact_unsubscribed"]


def test_list_membership_is_checked_when_a_list_is_given(read_client):
    mailing_list = make_list()
    subscribe(mailing_list, "in@example.org")
    subscribe(mailing_list, "left@example.org", status=Subscription.Status.UNSUBSCRIBED)
    assert check(read_client, "in@example.org", list=mailing_list.pk)["allowed"] is True
    assert codes(check(read_client, "left@example.org", list=mailing_list.pk)) == ["not_subscribed"]
    assert codes(check(read_client, "stranger@example.org", list=mailing_list.pk)) == ["not_subscribed"]


def test_invalid_and_missing_addresses(read_client):
    assert codes(check(read_client, "not-an-address")) == ["invalid_address"]
    response = read_client.get("/api/v1/check")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parameter"


def test_check_needs_permission_to_view_contacts_and_suppressions(db):
    from api.models import ApiKey

    from .conftest import key_client, make_user

    client = key_client(make_user("nobody", ["contacts.view_contact"]), ApiKey.Scope.READ)
    assert client.get("/api/v1/check?email=a@example.org").status_code == 403


def test_check_agrees_with_what_the_campaign_sender_skips(read_client, smtp_server):  # noqa: F811
    """Every state at once on one list: the addresses check allows are exactly those mailed."""
    mailing_list = make_list()
    subscribe(mailing_list, "ok@example.org", "ok2@sub.example.org", "supp@example.org", "dom@blocked.example",
              "deep@a.blocked.example")
    subscribe(mailing_list, "unconf@example.org", contact_status=Contact.Status.UNCONFIRMED)
    subscribe(mailing_list, "unsub@example.org", contact_status=Contact.Status.UNSUBSCRIBED)
    subscribe(mailing_list, "black@example.org", contact_status=Contact.Status.BLACKLISTED)
    subscribe(mailing_list, "left@example.org", status=Subscription.Status.UNSUBSCRIBED)
    [bounced] = subscribe(mailing_list, "bounced@example.org")
    Contact.objects.filter(pk=bounced.pk).update(has_bounced=True)
    [by_bounce] = subscribe(mailing_list, "gone@example.org", status=Subscription.Status.UNSUBSCRIBED)
    Subscription.objects.filter(contact=by_bounce).update(unsubscribe_reason="hard_bounce")
    subscribe(mailing_list, "lapsed@example.org")
    Suppression.objects.create(value="lapsed@example.org", reason=Suppression.Reason.SOFT_BOUNCE,
                               expires_at=timezone.now() - dt.timedelta(hours=1))
    Suppression.objects.create(value="supp@example.org", reason=Suppression.Reason.HARD_BOUNCE)
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.example")
    addresses = list(Contact.objects.values_list("email", flat=True))
    allowed = {a for a in addresses if check(read_client, a, list=mailing_list.pk)["allowed"]}

    send_campaign(campaign_id=make_campaign(mailing_list).pk)
    mailed = {rcpt for envelope in smtp_server.received for rcpt in envelope.rcpt_tos}
    assert mailed == allowed == {"ok@example.org", "ok2@sub.example.org", "lapsed@example.org"}
    assert codes(check(read_client, "bounced@example.org", list=mailing_list.pk)) == ["contact_hard_bounced"]
    assert codes(check(read_client, "gone@example.org", list=mailing_list.pk)) == ["unsubscribed_by_bounce"]


def test_the_address_entry_decides_over_domain_entries_and_the_nearest_domain_over_its_parents(read_client):
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="example.org", reason="manual")
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="mx.example.org", reason="complaint")
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="org", reason="manual")
    assert check(read_client, "a@mx.example.org")["suppression"]["value"] == "mx.example.org"
    assert check(read_client, "a@example.org")["suppression"]["value"] == "example.org"
    Suppression.objects.create(value="a@mx.example.org", reason=Suppression.Reason.HARD_BOUNCE)
    hit = check(read_client, "a@mx.example.org")["suppression"]
    assert (hit["kind"], hit["value"]) == ("address", "a@mx.example.org")
    expired = timezone.now() - dt.timedelta(days=1)
    Suppression.objects.filter(value__in=["a@mx.example.org", "mx.example.org"]).update(expires_at=expired)
    assert check(read_client, "a@mx.example.org")["suppression"]["value"] == "example.org"


def test_a_check_with_a_verified_key_is_one_query(read_client, django_assert_num_queries):
    Contact.objects.create(email="known@example.org")
    check(read_client, "known@example.org")  # verifies the key and loads its owner's permissions
    with django_assert_num_queries(1):  # the contact beside the suppression that decides
        result = check(read_client, "known@example.org")
    assert result["contact"]["status"] == "active" and result["suppression"] is None
