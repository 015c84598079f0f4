"""Every endpoint, as a read-only key, a read-write key and a staff session would call it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from bounces.models import Bounce, ProcessingRun
from bounces.rules.models import BounceRule
from campaigns.models import Campaign
from contacts.models import Contact, ContactEvent, Suppression
from tests.factories import (
    BounceFactory,
    CampaignFactory,
    ContactFactory,
    MailboxFactory,
    RawMessageFactory,
)

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _sample() -> bytes:
    return sorted((SAMPLES / "postfix").glob("*.eml"))[0].read_bytes()


# --------------------------------------------------------------------------- bounces
def test_bounce_list_filters_by_kind_reason_mailbox_campaign_recipient_and_date(read_client):
    mailbox, campaign = MailboxFactory(), CampaignFactory()
    now = timezone.now()
    hard = BounceFactory(kind="hard", reason="userunknown", mailbox=mailbox, campaign=campaign,
                         recipient="Gone@Example.org", bounced_at=now)
    soft = BounceFactory(kind="soft", reason="mailboxfull", bounced_at=now - dt.timedelta(days=3))
    def ids(query: str) -> set[int]:
        response = read_client.get(f"/api/v1/bounces/?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {hard.pk, soft.pk}
    assert ids("kind=soft") == {soft.pk}
    assert ids("reason=userunknown") == {hard.pk}
    assert ids(f"mailbox={mailbox.pk}") == {hard.pk}
    assert ids(f"campaign={campaign.pk}") == {hard.pk}
    assert ids("recipient=gone@example.org") == {hard.pk}
    since = (now - dt.timedelta(days=1)).date().isoformat()
    assert ids(f"since={since}") == {hard.pk}
    assert ids(f"until={(now - dt.timedelta(days=2)).date().isoformat()}") == {soft.pk}
    bad = read_client.get("/api/v1/bounces/?since=yesterday")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"


def test_bounce_list_pages_with_a_cursor(read_client):
    for _ in range(5):
        BounceFactory()
    first = read_client.get("/api/v1/bounces/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = read_client.get(first["next"]).json()
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})


def test_bounce_detail_has_the_parsed_report_and_the_raw_message_on_request(read_client):
    bounce = BounceFactory(raw_message=RawMessageFactory(raw=_sample()))
    data = read_client.get(f"/api/v1/bounces/{bounce.pk}/").json()
    assert data["report"]["recipients"] and data["report"]["mta"]
    assert data["parts"] and "raw" not in data
    assert data["raw_size"] == len(_sample())
    with_raw = read_client.get(f"/api/v1/bounces/{bounce.pk}/?raw=true").json()
    assert with_raw["raw"].startswith(_sample()[:20].decode()) and with_raw["raw_truncated"] is False
    missing = read_client.get("/api/v1/bounces/999999/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# --------------------------------------------------------------------------- contacts
def test_contacts_show_bounce_state_and_suppression(read_client):
    gone = ContactFactory(email="gone@example.org", has_bounced=True, hard_bounce_count=1)
    ContactFactory(email="fine@example.org")
    Suppression.objects.create(value="gone@example.org", reason=Suppression.Reason.HARD_BOUNCE)
    rows = {r["email"]: r for r in read_client.get("/api/v1/contacts/").json()["results"]}
    assert rows["gone@example.org"]["suppression"]["reason"] == "hard_bounce"
    assert rows["gone@example.org"]["deliverable"] is False
    assert rows["fine@example.org"]["deliverable"] is True
    one = read_client.get("/api/v1/contacts/?email=GONE@example.org").json()["results"]
    assert [c["id"] for c in one] == [gone.pk]
    assert read_client.get(f"/api/v1/contacts/{gone.pk}/").json()["hard_bounce_count"] == 1


# --------------------------------------------------------------------------- suppressions
def test_adding_a_suppression_twice_is_not_an_error(write_client):
    first = write_client.post("/api/v1/suppressions/", {"value": " Someone@Example.org ", "note": "asked"},
                              format="json")
    assert first.status_code == 201, first.content
    assert first.json()["value"] == "someone@example.org" and first.json()["reason"] == "manual"
    again = write_client.post("/api/v1/suppressions/", {"value": "someone@example.org"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    bad = write_client.post("/api/v1/suppressions/", {"value": "not an address"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


def test_a_domain_can_be_suppressed(write_client):
    response = write_client.post("/api/v1/suppressions/", {"value": "spam.example", "kind": "domain"}, format="json")
    assert response.status_code == 201
    assert write_client.get("/api/v1/check?email=x@sub.spam.example").json()["allowed"] is False


def test_releasing_a_suppression_keeps_history_and_writes_the_contacts_audit_row(write_client, operator):
    from contacts.models import LiftedSuppression

    contact = ContactFactory(email="back@example.org")
    entry = Suppression.objects.create(value="back@example.org", reason=Suppression.Reason.MANUAL)
    assert write_client.delete(f"/api/v1/suppressions/{entry.pk}/").status_code == 204
    assert not Suppression.objects.exists()
    assert LiftedSuppression.objects.get().lift_reason == "released"
    event = ContactEvent.objects.get(contact=contact)
    assert event.kind == "unsuppress" and event.actor == operator
    assert write_client.delete(f"/api/v1/suppressions/{entry.pk}/").status_code == 404


def test_lapsed_suppressions_are_not_listed_and_may_be_added_again(write_client):
    lapsed = Suppression.objects.create(value="soft@example.org", reason=Suppression.Reason.SOFT_BOUNCE,
                                        expires_at=timezone.now() - dt.timedelta(days=1))
    assert write_client.get("/api/v1/suppressions/").json()["count"] == 0
    assert write_client.get("/api/v1/check?email=soft@example.org").json()["allowed"] is True
    again = write_client.post("/api/v1/suppressions/", {"value": "soft@example.org"}, format="json")
    assert again.status_code == 201 and again.json()["id"] != lapsed.pk and again.json()["expires_at"] is None


def test_bulk_add_previews_then_adds_and_is_idempotent(write_client):
    Suppression.objects.create(value="old@example.org")
    body = {"action": "add", "values": ["a@example.org", "B@example.org", "b@example.org", "old@example.org",
                                        "nonsense"], "preview": True}
    preview = write_client.post("/api/v1/suppressions/bulk/", body, format="json").json()
    assert (preview["changed"], preview["unchanged"], preview["invalid"]) == (2, 1, ["nonsense"])
    assert Suppression.objects.count() == 1
    done = write_client.post("/api/v1/suppressions/bulk/", {**body, "preview": False}, format="json").json()
    assert (done["changed"], done["unchanged"], done["requested"]) == (2, 1, 5)
    again = write_client.post("/api/v1/suppressions/bulk/", {**body, "preview": False}, format="json").json()
    assert (again["changed"], again["unchanged"]) == (0, 3)
    assert set(Suppression.objects.values_list("value", flat=True)) == {"a@example.org", "b@example.org",
                                                                         "old@example.org"}


def test_bulk_release_is_idempotent_and_needs_the_delete_permission(write_client, db):
    from api.models import ApiKey

    from .conftest import key_client, make_user

    for v in ("a@example.org", "b@example.org"):
        Suppression.objects.create(value=v)
    body = {"action": "release", "values": ["a@example.org", "b@example.org", "c@example.org"]}
    adder = key_client(make_user("adder", ["contacts.add_suppression"]), ApiKey.Scope.WRITE)
    assert adder.post("/api/v1/suppressions/bulk/", body, format="json").status_code == 403
    done = write_client.post("/api/v1/suppressions/bulk/", body, format="json").json()
    assert (done["changed"], done["unchanged"]) == (2, 1)
    again = write_client.post("/api/v1/suppressions/bulk/", body, format="json").json()
    assert (again["changed"], again["unchanged"]) == (0, 3)
    assert not Suppression.objects.exists()


def test_bulk_refuses_more_than_ten_thousand_values(write_client):
    body = {"action": "add", "values": [f"u{i}@example.org" for i in range(10_001)]}
    response = write_client.post("/api/v1/suppressions/bulk/", body, format="json")
    assert response.status_code == 400 and "values" in response.json()["error"]["details"]


# --------------------------------------------------------------------------- campaigns
def test_campaign_detail_has_the_results_figures(read_client):
    campaign = CampaignFactory(status=Campaign.Status.SENT, sent_count=10)
    BounceFactory(campaign=campaign, kind="hard", recipient="x@example.org")
    listed = read_client.get("/api/v1/campaigns/").json()["results"]
    assert [c["id"] for c in listed] == [campaign.pk]
    results = read_client.get(f"/api/v1/campaigns/{campaign.pk}/").json()["results"]
    assert results["attempted"] == 10 and results["bounced_recipients"] == 1
    assert results["by_kind"]["hard"] == 1 and results["bounce_rate"] == pytest.approx(0.1)


# --------------------------------------------------------------------------- mailboxes, runs
def test_mailbox_runs_and_process_now(write_client, read_client, django_capture_on_commit_callbacks, monkeypatch):
    mailbox = MailboxFactory()
    ProcessingRun.objects.create(mailbox=mailbox, status=ProcessingRun.Status.SUCCEEDED)
    assert len(read_client.get(f"/api/v1/mailboxes/{mailbox.pk}/runs/").json()["results"]) == 1
    assert read_client.post(f"/api/v1/mailboxes/{mailbox.pk}/process/").status_code == 403
    sent = []
    from bounces import tasks

    monkeypatch.setattr(tasks.process_mailbox_task, "delay", lambda *a: sent.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        response = write_client.post(f"/api/v1/mailboxes/{mailbox.pk}/process/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert sent == [(mailbox.pk, response.json()["id"])]
    assert read_client.get(f"/api/v1/runs/{response.json()['id']}/").json()["trigger"] == "manual"
    assert write_client.post("/api/v1/mailboxes/999999/process/").status_code == 404


# --------------------------------------------------------------------------- rules
def test_rules_list_create_and_validation(write_client, read_client):
    created = write_client.post("/api/v1/rules/", {
        "name": "full mailbox", "pattern": "mailbox is full", "bounce_type": "soft",
    }, format="json")
    assert created.status_code == 201, created.content
    assert BounceRule.objects.get(pk=created.json()["id"]).name == "full mailbox"
    assert [r["name"] for r in read_client.get("/api/v1/rules/").json()["results"]] == ["full mailbox"]
    bad = write_client.post("/api/v1/rules/", {"name": "x", "pattern": "(a", "match_type": "regex"}, format="json")
    assert bad.status_code == 400 and "pattern" in bad.json()["error"]["details"]
    assert read_client.post("/api/v1/rules/", {"name": "y", "pattern": "z"}, format="json").status_code == 403


def test_a_rules_message_disposition_over_the_api(write_client, read_client):
    """The rule's message action and folder (issue 11) are read and written over the API;
    the older `delete_message` flag stays in step."""
    created = write_client.post("/api/v1/rules/", {
        "name": "traps", "pattern": "spamtrap", "bounce_type": "hard", "message_action": "move",
        "message_folder": "Traps"}, format="json")
    assert created.status_code == 201, created.content
    rule = BounceRule.objects.get(pk=created.json()["id"])
    assert rule.message_request == "move:Traps"
    got = read_client.get(f"/api/v1/rules/{rule.pk}/").json()
    assert (got["message_action"], got["message_folder"], got["delete_message"]) == ("move", "Traps", False)
    no_folder = write_client.post("/api/v1/rules/", {"name": "x", "pattern": "y", "message_action": "move"},
                                  format="json")
    assert no_folder.status_code == 400 and "message_folder" in no_folder.json()["error"]["details"]
    old_style = write_client.post("/api/v1/rules/", {"name": "old", "pattern": "z", "delete_message": True},
                                  format="json")
    assert old_style.status_code == 201, old_style.content
    assert old_style.json()["message_action"] == "delete"
    assert BounceRule.objects.get(pk=old_style.json()["id"]).message_request == "delete"


def test_a_draft_rule_is_tested_against_stored_bounces_without_saving(read_client):
    contact = ContactFactory(email="full@example.org")
    BounceFactory(kind="soft", diagnostic="552 mailbox quota exceeded for full@example.org", contact=contact,
                  recipient="full@example.org")
    BounceFactory(kind="soft", diagnostic="421 try later")
    response = read_client.post("/api/v1/rules/test/", {
        "pattern": "quota exceeded", "bounce_type": "hard", "actions_mode": "add", "actions": ["blacklist_contact"],
    }, format="json")
    assert response.status_code == 200, response.content
    report = response.json()
    assert (report["examined"], report["matched"], report["verdict_changes"]) == (2, 1, 1)
    assert report["transitions"] == [{"from": "soft", "to": "hard", "bounces": 1}]
    assert report["sample"][0]["recipient"] == "full@example.org"
    assert not BounceRule.objects.exists()
    assert Bounce.objects.filter(kind="soft").count() == 2


def test_pages_are_limited_and_paginated(read_client):
    for i in range(3):
        Suppression.objects.create(value=f"p{i}@example.org")
    page = read_client.get("/api/v1/suppressions/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert read_client.get("/api/v1/contacts/?page_size=100000").status_code == 200


def test_contact_states_over_the_api(read_client):
    ContactFactory(email="u@example.org", status=Contact.Status.UNSUBSCRIBED)
    assert read_client.get("/api/v1/contacts/?status=unsubscribed").json()["count"] == 1


def test_unknown_urls_and_faults_answer_in_the_error_shape(read_client, monkeypatch):
    response = read_client.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    from api import selectors

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "check_address", broken)
    read_client.raise_request_exception = False
    response = read_client.get("/api/v1/check?email=a@example.org")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "server_error", "message": "Internal error; it has been logged."}}
