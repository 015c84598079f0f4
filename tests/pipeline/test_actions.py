"""Actions and policies, driven through the pipeline from stored raw messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from bounces import selectors
from bounces.intake.refusals import record_send_refusal
from bounces.intake.stored import process_stored_messages
from bounces.models import Bounce, BounceSettings, Mailbox, RawMessage
from bounces.pipeline.actions import assign_bounce, mark_not_a_bounce, recompute_bounce_state
from bounces.pipeline.decisions import decide
from bounces.rules.models import BounceRule
from campaigns.models import SentMessage
from contacts.models import Contact, ContactEvent, Subscription, Suppression
from contacts.services import apply_contact_action, preview_action, reset_bounce_state

from .conftest import dsn, send

pytestmark = pytest.mark.django_db

SOFT = {"status": "4.2.2", "diagnostic": "452 4.2.2 Mailbox full"}
BLOCKED = {"status": "5.7.1", "diagnostic": "550 5.7.1 Client host [192.0.2.1] blocked using Spamhaus"}
DELAY = {"status": "4.4.1", "diagnostic": "Connection timed out", "action": "delayed"}


def deliver(*messages: bytes, mailbox: Mailbox | None = None):
    """Store raw messages as if fetched, then process them."""
    for raw in messages:
        RawMessage.objects.create(mailbox=mailbox, dedupe_key=f"t:{RawMessage.objects.count()}:{hash(raw)}",
                                  sha256="0" * 64, raw=raw, size=len(raw))
    return process_stored_messages(mailbox=mailbox)


COMPLAINT_PRESETS = {
    "unsubscribe_suppress": ["unsubscribe_all", "suppress"],
    "blacklist_contact": ["unsubscribe_all", "suppress", "blacklist_contact"],
    "nothing": [],
}


def settings(**values) -> BounceSettings:
    """Change the global settings; `hard_action` / `complaint_action` name the presets the
    settings offered before action sets (issue 11) and set the same sets."""
    from bounces.pipeline.policies import HARD_ACTIONS

    if "hard_action" in values:
        values["hard_actions"] = list(HARD_ACTIONS[values.pop("hard_action")])
    if "complaint_action" in values:
        values["complaint_actions"] = COMPLAINT_PRESETS[values.pop("complaint_action")]
    row = BounceSettings.load()
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    return row


def soft_bounces(campaign, email: str, n: int, *, start=None, step=timedelta(days=1), **kw):
    """n messages sent to `email`, each soft-bounced, in send order."""
    start = start or timezone.now() - timedelta(days=n + 1)
    contact = None
    for i in range(n):
        sent = send(campaign, email, when=start + i * step, contact=contact)
        contact = sent.contact
        deliver(dsn(email, token=sent.token, **{**SOFT, **kw}))
    return Contact.objects.get(pk=contact.pk)


@pytest.mark.parametrize(
    ("hard_action", "check"),
    [
        ("unconfirm", lambda c: c.status == "unconfirmed"),
        ("blacklist_contact", lambda c: c.status == "blacklisted"),
        ("blacklist_address", lambda c: Suppression.objects.get(value="h@example.net").reason == "blacklist"),
        ("remove_address", lambda c: (c.email, c.bounced_address) == ("", "h@example.net")),
        ("nothing", lambda c: c.status == "active" and not Suppression.objects.exists()),
    ],
)
def test_each_hard_bounce_action_can_be_chosen(campaign, hard_action, check):
    settings(hard_action=hard_action)
    sent = send(campaign, "h@example.net")

    deliver(dsn("h@example.net", token=sent.token))

    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.has_bounced and contact.hard_bounce_count == 1
    assert check(contact)


def test_the_delete_contact_action_deletes_it_and_keeps_the_bounce_with_its_address(campaign):
    settings(hard_action="delete_contact")
    sent = send(campaign, "del@example.net")

    deliver(dsn("del@example.net", token=sent.token))

    assert not Contact.objects.filter(pk=sent.contact_id).exists()
    bounce = Bounce.objects.get()
    assert (bounce.recipient, bounce.contact_id) == ("del@example.net", None)
    assert "delete_contact" in bounce.actions_taken


def test_a_deleted_contact_keeps_its_audit_trail_with_the_address(campaign):
    from contacts.models import ContactEvent

    settings(hard_action="delete_contact")
    sent = send(campaign, "gone@example.net")

    deliver(dsn("gone@example.net", token=sent.token))

    events = ContactEvent.objects.filter(email="gone@example.net")
    assert {e.kind for e in events} >= {"hard_bounce", "deleted"}
    assert {e.contact_id for e in events} == {None}


def test_a_mailbox_override_beats_the_global_setting(campaign):
    mailbox = Mailbox.objects.create(name="override", host="x", hard_action="unconfirm")
    sent = send(campaign, "o@example.net")

    deliver(dsn("o@example.net", token=sent.token), mailbox=mailbox)

    assert Contact.objects.get(pk=sent.contact_id).status == "unconfirmed"
    assert not Suppression.objects.exists()


def test_five_consecutive_soft_bounces_count_as_a_hard_bounce(campaign):
    contact = soft_bounces(campaign, "s@example.net", 4)
    assert (contact.consecutive_bounces, contact.has_bounced) == (4, False)
    assert contact.soft_bounce_count == 4

    contact = soft_bounces(campaign, "s@example.net", 1, start=timezone.now() - timedelta(minutes=30))

    assert contact.consecutive_bounces == 5 and contact.has_bounced
    assert Suppression.objects.get(value="s@example.net").reason == "soft_bounce"
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"
    assert "soft_threshold" in Bounce.objects.order_by("-id")[0].actions_taken


def test_a_message_that_did_not_bounce_resets_the_consecutive_count(campaign):
    base = timezone.now() - timedelta(days=10)
    contact = soft_bounces(campaign, "r@example.net", 3, start=base)
    send(campaign, "r@example.net", when=base + timedelta(days=4), contact=contact)  # no bounce
    later = send(campaign, "r@example.net", when=base + timedelta(days=5), contact=contact)

    deliver(dsn("r@example.net", token=later.token, **SOFT))

    assert Contact.objects.get(pk=contact.pk).consecutive_bounces == 1


def test_soft_bounces_of_one_batch_arriving_out_of_order_stay_consecutive(campaign):
    base = timezone.now() - timedelta(days=10)
    contact = soft_bounces(campaign, "o@example.net", 1, start=base)
    first = send(campaign, "o@example.net", when=base + timedelta(days=2), contact=contact)
    second = send(campaign, "o@example.net", when=base + timedelta(days=3), contact=contact)

    # one batch, the later message's bounce first: the earlier message bounced too, so it
    # does not break the chain even though its status is not updated yet
    deliver(dsn("o@example.net", token=second.token, **SOFT), dsn("o@example.net", token=first.token, **SOFT))

    assert Contact.objects.get(pk=contact.pk).consecutive_bounces == 3
    assert recompute_bounce_state() == 0  # replaying the history agrees


def _soft_batch_queries(campaign, n: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    base = timezone.now() - timedelta(days=10)
    raws = []
    for i in range(n):
        contact = soft_bounces(campaign, f"q{n}-{i}@example.net", 1, start=base)
        later = send(campaign, contact.email, when=base + timedelta(days=2), contact=contact)
        raws.append(dsn(contact.email, token=later.token, **SOFT))
    for i, raw in enumerate(raws):
        RawMessage.objects.create(dedupe_key=f"q{n}:{i}", sha256="0" * 64, raw=raw, size=len(raw))
    # the webhook subscriptions are cached for 5 seconds: forgotten here, each run reads them once
    # (on a loaded machine the second run could otherwise start after the cache expired)
    from api.events import forget_endpoints

    forget_endpoints()
    with CaptureQueriesContext(connection) as queries:
        process_stored_messages()
    return len(queries)


def test_soft_counting_takes_a_fixed_number_of_queries_per_batch(campaign):
    assert _soft_batch_queries(campaign, 2) == _soft_batch_queries(campaign, 6)


def test_the_window_policy_counts_soft_bounces_within_the_window(campaign):
    settings(soft_policy="window", soft_threshold=3, soft_window_days=10)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        sent = [send(campaign, "w@example.net")]
        contact = sent[0].contact
        deliver(dsn("w@example.net", token=sent[0].token, **SOFT))
        traveller.shift(timedelta(days=20))
        for _ in range(2):
            s = send(campaign, "w@example.net", contact=contact, when=timezone.now())
            deliver(dsn("w@example.net", token=s.token, **SOFT))
        assert not Contact.objects.get(pk=contact.pk).has_bounced  # the first one fell out
        traveller.shift(timedelta(days=2))
        s = send(campaign, "w@example.net", contact=contact, when=timezone.now())
        deliver(dsn("w@example.net", token=s.token, **SOFT))
    assert Contact.objects.get(pk=contact.pk).has_bounced


def test_the_soft_threshold_acts_once_even_when_the_window_is_crossed_again(campaign):
    settings(soft_policy="window", soft_threshold=2, soft_window_days=10, hard_action="nothing")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        contact = None
        for day in (0, 1, 20, 21):  # crosses the threshold on day 1 and again on day 21
            traveller.move_to(start + timedelta(days=day))
            s = send(campaign, "again@example.net", contact=contact, when=timezone.now())
            contact = s.contact
            deliver(dsn("again@example.net", token=s.token, **SOFT))

    contact.refresh_from_db()
    assert contact.has_bounced and contact.hard_bounce_count == 1
    assert ContactEvent.objects.filter(contact=contact, kind="hard_bounce").count() == 1


def test_the_score_policy_scores_at_most_once_a_day_and_forgets_stale_scores(campaign):
    settings(soft_policy="score", soft_threshold=3, score_stale_days=7)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        contact = soft_bounces(campaign, "sc@example.net", 3, start=start - timedelta(days=3))
        assert contact.bounce_score == 1.0  # three bounces, one day
        traveller.shift(timedelta(days=1))
        contact = soft_bounces(campaign, "sc@example.net", 1, start=timezone.now() - timedelta(hours=1))
        assert contact.bounce_score == 2.0
        traveller.shift(timedelta(days=30))
        contact = soft_bounces(campaign, "sc@example.net", 1, start=timezone.now() - timedelta(hours=1))
        assert contact.bounce_score == 1.0 and not contact.has_bounced


def test_a_second_higher_threshold_blacklists_the_address(campaign):
    settings(soft_threshold=2, soft_blacklist_threshold=3)
    contact = soft_bounces(campaign, "bl@example.net", 2)
    assert contact.has_bounced
    assert Suppression.objects.get(value="bl@example.net").reason == "soft_bounce"

    contact = soft_bounces(campaign, "bl@example.net", 1, start=timezone.now() - timedelta(minutes=5))

    assert Suppression.objects.get(value="bl@example.net").reason == "blacklist"


def test_changing_the_policy_recomputes_state_from_history(campaign, admin_client):
    contact = soft_bounces(campaign, "p@example.net", 3)
    assert not contact.has_bounced
    row = BounceSettings.load()

    response = admin_client.post(f"/admin/bounces/bouncesettings/{row.pk}/change/", {
        "hard_actions": row.hard_actions, "soft_policy": "consecutive", "soft_threshold": "3",
        "soft_window_days": "30", "score_stale_days": "7", "soft_blacklist_threshold": "",
        "complaint_actions": row.complaint_actions, "soft_suppression_days": "90", "blocked_suppression_days": "30",
        "hard_suppression_days": "",
    })

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.has_bounced and contact.consecutive_bounces == 3
    assert ContactEvent.objects.filter(contact=contact, kind="recompute").exists()
    assert Suppression.objects.filter(value="p@example.net").exists()


def test_recomputing_an_unchanged_history_changes_and_logs_nothing(campaign):
    settings(soft_blacklist_threshold=5)
    contact = soft_bounces(campaign, "same@example.net", 5)
    assert contact.has_bounced
    assert Suppression.objects.get(value="same@example.net").reason == "blacklist"
    events = ContactEvent.objects.count()

    assert recompute_bounce_state() == 0

    assert ContactEvent.objects.count() == events


def test_recompute_under_the_score_policy_replays_days(campaign):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(4):
            contact = soft_bounces(campaign, "rs@example.net", 1, start=timezone.now() - timedelta(hours=1))
            traveller.shift(timedelta(days=1))
    settings(soft_policy="score", soft_threshold=10)

    assert recompute_bounce_state() == 1

    contact.refresh_from_db()
    assert contact.bounce_score == 4.0


def test_auto_replies_blocks_and_delays_are_recorded_and_never_counted(campaign):
    a, b = send(campaign, "b1@example.net"), send(campaign, "b2@example.net")

    run = deliver(dsn("b1@example.net", token=a.token, **BLOCKED), dsn("b2@example.net", token=b.token, **DELAY))

    assert (run.blocked, run.delay, run.hard, run.soft) == (1, 1, 0, 0)
    for contact in Contact.objects.all():
        assert (contact.hard_bounce_count, contact.soft_bounce_count, contact.has_bounced) == (0, 0, False)
    assert set(Bounce.objects.values_list("state", flat=True)) == {"recorded"}
    assert selectors.blocked_by_campaign() == [{"campaign_id": campaign.pk, "campaign__name": campaign.name, "n": 1}]
    assert selectors.blocked_by_domain() == [{"domain": "example.net", "n": 1}]


def test_a_rule_overrides_the_engine_kind_and_adds_an_action_explicitly(campaign):
    BounceRule.objects.create(name="full means gone", pattern="mailbox full", bounce_type="hard",
                              actions_mode="add", actions=["blacklist_contact"])
    sent = send(campaign, "ru@example.net")

    deliver(dsn("ru@example.net", token=sent.token, **SOFT))

    bounce = Bounce.objects.get()
    assert bounce.kind == "hard" and bounce.matched_rule is not None
    assert Contact.objects.get(pk=sent.contact_id).status == "blacklisted"
    assert Suppression.objects.filter(value="ru@example.net").exists()  # and the hard policy still applies
    assert BounceRule.objects.get().hit_count == 1


def test_an_ignore_rule_makes_it_not_a_bounce(campaign):
    BounceRule.objects.create(name="ignore", pattern="user unknown", bounce_type="ignore")
    sent = send(campaign, "ig@example.net")

    deliver(dsn("ig@example.net", token=sent.token))

    assert Bounce.objects.get().state == "ignored"
    assert RawMessage.objects.get().outcome == "ignored"
    assert not Contact.objects.get(pk=sent.contact_id).has_bounced


@pytest.mark.postgres  # PostgreSQL sorts NULL send times first in a descending order
def test_an_address_match_links_the_latest_message_actually_sent(campaign):
    from campaigns.models import Campaign

    sent = send(campaign, "addr@example.net")
    never = Campaign.objects.create(name="Later", subject="S", from_email="news@example.org",
                                    mailing_list=campaign.mailing_list)
    SentMessage.objects.create(campaign=never, contact=sent.contact, email=sent.email, token="skipped0000000000",
                               message_id="skipped@news.example.org", status=SentMessage.Status.SKIPPED)

    deliver(dsn("addr@example.net"))  # no token, no Message-ID: matched by address

    bounce = Bounce.objects.get()
    assert (bounce.match_method, bounce.contact_id, bounce.campaign_id) == ("address", sent.contact_id, campaign.pk)


@pytest.mark.postgres
def test_an_address_match_prefers_the_latest_campaign_of_the_mailbox_lists(campaign):
    from campaigns.models import Campaign
    from contacts.models import MailingList

    mailbox = Mailbox.objects.create(name="served", protocol="maildir", path="/nonexistent")
    served = send(campaign, "pref@example.net", when=timezone.now() - timedelta(days=3))
    mailbox.lists.add(campaign.mailing_list)
    other = Campaign.objects.create(name="Other list", subject="S", from_email="news@example.org",
                                    mailing_list=MailingList.objects.create(name="other"))
    send(other, "pref@example.net", contact=served.contact)  # later, but not a list this mailbox serves

    deliver(dsn("pref@example.net"), mailbox=mailbox)

    assert Bounce.objects.get().campaign_id == campaign.pk


def test_an_address_match_reads_one_sent_message_per_contact(campaign, monkeypatch):
    from bounces.pipeline import matching

    contact = send(campaign, "many@example.net").contact
    for _ in range(5):
        send(campaign, "many@example.net", contact=contact)
    read = []
    real = matching._sent
    monkeypatch.setattr(matching, "_sent", lambda row: read.append(row["id"]) or real(row))

    deliver(dsn("many@example.net"))

    # the latest few (matching.SENDS_KEPT, to find the one sent before the bounce), not every message
    assert len(read) == matching.SENDS_KEPT
    assert Bounce.objects.get().campaign_id == SentMessage.objects.filter(contact=contact).latest("sent_at").campaign_id


def test_decide_is_pure_and_says_what_a_rule_changes():
    assert decide(category="soft").count_soft
    assert decide(category="hard").actions == ("mark_hard", "suppress", "unsubscribe_all")
    assert decide(category="blocked").actions == ()

    class Rule:
        rule_id, bounce_type, actions_mode, actions, delete_message, reason = 1, "hard", "kind", (), True, ""

    decision = decide(category="soft", rule=Rule())
    assert (decision.kind, decision.actions, decision.delete_message) == (
        "hard", ("mark_hard", "suppress", "unsubscribe_all"), True)


def test_unexplained_bounces_can_be_assigned_or_marked_not_a_bounce(campaign, admin_user):
    contact = send(campaign, "late@example.net").contact
    deliver(dsn("unknown@elsewhere.example"), b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n")
    unmatched, ordinary = Bounce.objects.order_by("id")
    assert {b.pk for b in selectors.unexplained_bounces()} == {ordinary.pk, unmatched.pk}

    assign_bounce(bounce=unmatched, contact=contact, actor=admin_user)
    mark_not_a_bounce(bounce=ordinary, actor=admin_user)

    unmatched.refresh_from_db()
    assert (unmatched.state, unmatched.match_method, unmatched.contact_id) == ("resolved", "manual", contact.pk)
    assert Contact.objects.get(pk=contact.pk).has_bounced
    assert not selectors.unexplained_bounces().exists()


def test_assigning_a_bounce_twice_counts_it_once(campaign, admin_user):
    # a double-submitted form, or two operators working the queue at once
    contact = send(campaign, "twice@example.net").contact
    deliver(dsn("unknown@elsewhere.example"))
    unmatched = Bounce.objects.get()

    assign_bounce(bounce=unmatched, contact=contact, actor=admin_user)
    again = assign_bounce(bounce=unmatched, contact=contact, actor=admin_user)

    contact.refresh_from_db()
    assert contact.hard_bounce_count == 1
    assert ContactEvent.objects.filter(contact=contact, kind="hard_bounce").count() == 1
    assert again.actions_taken == ["mark_hard", "suppress", "unsubscribe_all"]


def test_an_assigned_soft_bounce_counts_under_the_soft_policy(campaign, admin_user):
    contact = soft_bounces(campaign, "fifth@example.net", 4)
    deliver(dsn("unknown@elsewhere.example", **SOFT))
    unmatched = Bounce.objects.get(state=Bounce.State.UNMATCHED)

    assign_bounce(bounce=unmatched, contact=contact, actor=admin_user)

    contact.refresh_from_db()
    assert (contact.soft_bounce_count, contact.consecutive_bounces) == (5, 5)
    assert contact.has_bounced  # the fifth in a row reaches the threshold, as processing does
    assert "soft_threshold" in Bounce.objects.get(pk=unmatched.pk).actions_taken


def test_only_queued_bounces_can_be_marked_not_a_bounce(campaign, admin_user):
    sent = send(campaign, "applied@example.net")
    deliver(dsn("applied@example.net", token=sent.token))
    applied = Bounce.objects.get()

    mark_not_a_bounce(bounce=applied, actor=admin_user)

    assert Bounce.objects.get().state == Bounce.State.APPLIED


def test_resetting_the_bounce_state_keeps_a_contact_blacklisted_for_a_complaint(campaign, admin_user):
    from .conftest import arf

    settings(complaint_action="blacklist_contact")
    sent = send(campaign, "angry@example.net")
    deliver(arf("angry@example.net", token=sent.token))
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.status == Contact.Status.BLACKLISTED

    reset_bounce_state(contact=contact, actor=admin_user)

    assert contact.status == Contact.Status.BLACKLISTED  # a complaint is no bounce to reset
    assert Suppression.objects.get(value="angry@example.net").reason == "complaint"


def test_an_assigned_complaint_is_recorded_as_one_for_the_reset(campaign, admin_user):
    from .conftest import arf

    settings(complaint_action="blacklist_contact")
    contact = send(campaign, "assigned@example.net").contact
    deliver(arf("someone@elsewhere.example"))
    assign_bounce(bounce=Bounce.objects.get(), contact=contact, actor=admin_user)
    contact.refresh_from_db()
    assert contact.status == Contact.Status.BLACKLISTED

    reset_bounce_state(contact=contact, actor=admin_user)

    assert contact.status == Contact.Status.BLACKLISTED


def test_reset_bounce_state_un_bounces_a_contact_and_logs_it(campaign, admin_user):
    settings(hard_action="remove_address")
    sent = send(campaign, "un@example.net")
    deliver(dsn("un@example.net", token=sent.token))
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.email == ""

    reset_bounce_state(contact=contact, actor=admin_user)

    assert (contact.email, contact.has_bounced, contact.bounced_address) == ("un@example.net", False, "")
    assert not Suppression.objects.filter(value="un@example.net").exists()
    event = ContactEvent.objects.get(contact=contact, kind="bounce_reset")
    assert event.actor == admin_user


def test_apply_contact_action_writes_an_audit_row_and_preview_writes_nothing(campaign):
    contact = send(campaign, "ac@example.net").contact

    assert preview_action(contact, "blacklist_contact") == ["blacklist_contact"]
    assert Contact.objects.get(pk=contact.pk).status == "active"
    assert apply_contact_action(contact=contact, action="unconfirm", actor_label="test") == ["unconfirm"]

    assert contact.status == "unconfirmed"
    assert ContactEvent.objects.get(contact=contact).old_status == "active"


def test_a_send_time_refusal_is_recorded_once_with_the_same_actions(campaign):
    sent = send(campaign, "refused@example.net")

    bounce = record_send_refusal(sent_message=sent, reply_code=550, enhanced_status="5.1.1",
                                 text="5.1.1 <refused@example.net>: user unknown", remote_mta="mx.example.net")
    again = record_send_refusal(sent_message=sent, reply_code=550, enhanced_status="5.1.1", text="again")

    assert again.pk == bounce.pk
    assert (bounce.kind, bounce.match_method, bounce.raw_message.source) == ("hard", "token", "smtp")
    assert Contact.objects.get(pk=sent.contact_id).has_bounced
    assert SentMessage.objects.get(pk=sent.pk).status == "bounced"


def test_a_complaint_that_hides_the_recipient_is_recorded_with_the_address_we_sent_to(campaign):
    from .conftest import arf

    sent = send(campaign, "hidden@example.net")
    raw = arf("hidden@example.net", token=sent.token).replace(b"Original-Rcpt-To: hidden@example.net\r\n", b"")
    raw = raw.replace(b"To: hidden@example.net", b"To: undisclosed-recipients:;")

    run = deliver(raw)

    bounce = Bounce.objects.get()
    assert run.complaint == 1
    assert (bounce.recipient, bounce.contact_id, bounce.kind) == ("hidden@example.net", sent.contact_id, "complaint")


def test_a_status_change_in_the_contact_admin_is_audited_and_bounce_state_is_read_only(admin_client, admin_user):
    contact = Contact.objects.create(email="edit@example.net", has_bounced=True, hard_bounce_count=2)

    response = admin_client.post(f"/admin/contacts/contact/{contact.pk}/change/", {
        "email": "edit@example.net", "name": "Ed", "status": "blacklisted", "has_bounced": "",
        "hard_bounce_count": "0", "consecutive_bounces": "0", "soft_bounce_count": "0", "bounce_score": "0",
        "subscriptions-TOTAL_FORMS": "0", "subscriptions-INITIAL_FORMS": "0",
    })

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.name, contact.status) == ("Ed", "blacklisted")
    assert (contact.has_bounced, contact.hard_bounce_count) == (True, 2)  # reset is its own service
    event = ContactEvent.objects.get(contact=contact)
    assert (event.old_status, event.new_status, event.actor) == ("active", "blacklisted", admin_user)
