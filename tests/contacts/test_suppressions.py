"""Reversible suppression (issue 11): why it was made, expiry, release with a preview, undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.selectors import suppressed_among
from contacts.models import (
    Contact,
    ContactEvent,
    LiftedSuppression,
    MailingList,
    Subscription,
    Suppression,
)
from contacts.services import (
    Action,
    Cause,
    ContactActionBatch,
    describe_actions,
    expire_suppressions,
    lift_on_delivery,
    preview_release,
    release_suppressions,
    undo_release,
)

pytestmark = pytest.mark.django_db


def _bounced(email: str, *, actions, kind="hard", reason="hard_bounce", expires_at=None):
    mlist, _ = MailingList.objects.get_or_create(name="news")
    other, _ = MailingList.objects.get_or_create(name="offers")
    contact = Contact.objects.create(email=email)
    Subscription.objects.create(contact=contact, mailing_list=mlist)
    Subscription.objects.create(contact=contact, mailing_list=other)
    batch = ContactActionBatch(actor_label="run #1")
    locked = batch.lock([contact.pk])[contact.pk]
    batch.apply(locked, actions, list_id=mlist.pk, reason=reason, expires_at=expires_at,
                cause=Cause(bounce_kind=kind, bounce_reason="userunknown", rule_id=7, bounce_id=42))
    batch.flush()
    contact.refresh_from_db()
    return contact


def test_a_suppression_records_the_bounce_kind_reason_rule_and_contact():
    contact = _bounced("gone@example.org", actions=[Action.MARK_HARD, Action.UNSUBSCRIBE_ALL, Action.SUPPRESS])
    row = Suppression.objects.get(value="gone@example.org")
    assert (row.bounce_id, row.bounce_kind, row.bounce_reason, row.rule_id, row.contact_id) == (
        42, "hard", "userunknown", 7, contact.pk)
    assert row.expires_at is None
    subs = Subscription.objects.filter(contact=contact)
    assert {s.status for s in subs} == {Subscription.Status.UNSUBSCRIBED}
    assert {s.unsubscribe_bounce_id for s in subs} == {42}
    event = ContactEvent.objects.get(contact=contact, kind=ContactEvent.Kind.HARD_BOUNCE)
    assert event.detail["bounce_id"] == 42 and event.detail["rule_id"] == 7


def test_unsubscribe_leaves_other_lists_and_unsubscribe_all_leaves_none():
    one = _bounced("one@example.org", actions=[Action.UNSUBSCRIBE])
    assert dict(Subscription.objects.filter(contact=one).values_list("mailing_list__name", "status")) == {
        "news": "unsubscribed", "offers": "subscribed"}


def test_a_soft_suppression_lapses_and_is_swept_into_the_history():
    now = timezone.now()
    _bounced("full@example.org", actions=[Action.SUPPRESS], kind="soft", reason="soft_bounce",
             expires_at=now + timedelta(days=30))
    assert "full@example.org" in suppressed_among(["full@example.org"])
    with time_machine.travel(now + timedelta(days=31)):
        assert suppressed_among(["full@example.org"]) == {}  # sending ignores it at once
        assert expire_suppressions() == 1
    assert not Suppression.objects.filter(value="full@example.org").exists()
    lifted = LiftedSuppression.objects.get(value="full@example.org")
    assert lifted.lift_reason == "expired" and lifted.bounce_kind == "soft"


def test_a_hard_suppression_never_lapses_and_a_later_soft_one_does_not_shorten_it():
    contact = _bounced("gone@example.org", actions=[Action.SUPPRESS])
    batch = ContactActionBatch()
    batch.apply(batch.lock([contact.pk])[contact.pk], [Action.SUPPRESS], reason="soft_bounce",
                expires_at=timezone.now() + timedelta(days=1))
    batch.flush()
    assert Suppression.objects.get(value="gone@example.org").expires_at is None


def test_a_delivery_lifts_a_soft_suppression_but_not_a_hard_one():
    _bounced("full@example.org", actions=[Action.SUPPRESS], kind="soft", reason="soft_bounce",
             expires_at=timezone.now() + timedelta(days=30))
    _bounced("gone@example.org", actions=[Action.SUPPRESS])
    assert lift_on_delivery(addresses=["full@example.org", "gone@example.org"]) == 1
    assert list(Suppression.objects.values_list("value", flat=True)) == ["gone@example.org"]
    assert LiftedSuppression.objects.get().lift_reason == "delivered"


def test_bulk_release_previews_then_lifts_and_undo_puts_everything_back(admin_user):
    contact = _bounced("gone@example.org", actions=[Action.MARK_HARD, Action.UNSUBSCRIBE_ALL, Action.SUPPRESS])
    row = Suppression.objects.get()

    preview = preview_release(suppression_ids=[row.pk], reset_contacts=True)
    assert preview[0].contact_id == contact.pk and "bounce #42" in preview[0].why
    assert any("re-subscribed to 2 list" in c for c in preview[0].changes)
    assert Suppression.objects.count() == 1  # a preview writes nothing

    release = release_suppressions(suppression_ids=[row.pk], actor=admin_user, note="fixed typo",
                                   reset_contacts=True)
    contact.refresh_from_db()
    assert not Suppression.objects.exists() and not contact.has_bounced
    assert set(Subscription.objects.filter(contact=contact).values_list("status", flat=True)) == {"subscribed"}
    assert LiftedSuppression.objects.get().release == release

    report = undo_release(release=release, actor=admin_user)
    contact.refresh_from_db()
    assert (report.restored, report.contacts) == (1, 1)
    assert Suppression.objects.get().bounce_id == 42 and contact.has_bounced
    assert set(Subscription.objects.filter(contact=contact).values_list("status", flat=True)) == {"unsubscribed"}
    assert undo_release(release=release, actor=admin_user).restored == 0  # once only


def test_actions_are_described_in_words_in_the_order_they_run():
    assert describe_actions([Action.SUPPRESS, Action.UNSUBSCRIBE_ALL, Action.MARK_HARD]) == (
        "mark the contact hard-bounced, suppress the address (never mailed again) and "
        "unsubscribe from all lists")
    assert describe_actions([]) == "nothing (recorded only)"


def test_an_operator_releases_from_the_suppression_list_after_a_preview_and_undoes_it(admin_client):
    from contacts.models import SuppressionRelease

    _bounced("gone@example.org", actions=[Action.MARK_HARD, Action.UNSUBSCRIBE_ALL, Action.SUPPRESS])
    row = Suppression.objects.get()
    url = "/admin/contacts/suppression/"
    page = admin_client.post(url, {"action": "release_selected", "_selected_action": [row.pk]})
    text = page.content.decode()
    assert page.status_code == 200 and "gone@example.org" in text and "bounce #42" in text
    assert Suppression.objects.exists()  # only a preview

    done = admin_client.post(url, {"action": "release_selected", "_selected_action": [row.pk],
                                   "confirm": "yes", "reset_contacts": "on", "note": "mailbox fixed"})
    assert done.status_code == 302 and not Suppression.objects.exists()
    release = SuppressionRelease.objects.get()
    assert release.note == "mailbox fixed" and release.reset_contacts

    admin_client.post("/admin/contacts/suppressionrelease/", {"action": "undo_selected",
                                                              "_selected_action": [release.pk]})
    assert Suppression.objects.get().value == "gone@example.org"
