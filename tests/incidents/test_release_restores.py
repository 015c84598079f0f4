"""Releasing an incident as our problem restores the contacts that bounces of its window
acted on before it opened (a provider outage's first batches of "user unknown"), unless
other evidence stands against them; resolving as real leaves those bounces counting.
Through the real pipeline (notices in a maildir, process_mailbox), the incident page and
the contacts admin's undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api.selectors import check_address
from bounces.models import Bounce, Incident, Mailbox
from bounces.pipeline.held import IncidentClosed, preview_release, resolve_incident
from campaigns.models import SentMessage
from contacts.models import (
    Contact,
    ContactEvent,
    MailingList,
    Subscription,
    Suppression,
    SuppressionRelease,
)
from contacts.services import record_status_change, suppress_address, undo_release
from tests.pipeline.conftest import arf

from .conftest import make_staff
from .helpers import USER_UNKNOWN, Maildir, make_campaign, notice, sent_to, spread

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # on SQLite and on PostgreSQL (scripts/test.sh)

MAILBOX_FULL = "452 4.2.2 <{rcpt}>: Mailbox full"


def _resend(contact: Contact, *, when=None) -> SentMessage:
    """A message of another campaign to an existing contact."""
    campaign = make_campaign()
    return SentMessage.objects.create(
        campaign=campaign, contact=contact, email=contact.email,
        message_id=f"again{contact.pk}.{timezone.now().timestamp()}@news.example.org",
        status=SentMessage.Status.SENT, sent_at=when or timezone.now() - timedelta(hours=1))


def _state(emails) -> list[tuple]:
    """What sending looks at for these contacts: status, flag, address, lists, suppression."""
    rows = []
    for email in sorted(emails):
        contact = Contact.objects.filter(email__iexact=email).first() or Contact.objects.get(
            bounced_address__iexact=email)
        subs = tuple(sorted(contact.subscriptions.values_list("mailing_list_id", "status")))
        rows.append((email, contact.status, contact.has_bounced, contact.email, subs,
                     Suppression.objects.filter(value=email.lower()).exists()))
    return rows


def _allowed(email: str, list_id: int) -> bool:
    return check_address(email=email, list_id=list_id).allowed


# --------------------------------------------------------------------------- the operator's scenario
def test_a_released_outage_restores_the_contacts_its_first_batches_punished_and_the_undo_puts_them_back(
    tmp_path, client, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    second = MailingList.objects.create(name="second list")
    maildir = Maildir(tmp_path)
    # three hours ago: one real dead mailbox at yahoo (the guard's history, and a real hard bounce)
    older = sent_to(campaign, "older@yahoo.com", when=timezone.now() - timedelta(hours=4))
    maildir.drop(notice(older, diagnostic=USER_UNKNOWN, status="5.1.1", at=timezone.now() - timedelta(hours=3)))
    maildir.run()
    assert not _allowed("older@yahoo.com", campaign.mailing_list_id)

    # the outage: 60 "user unknown" in 8 minutes, read 20 a batch; the first two batches act
    burst = [_resend(older.contact)] + [sent_to(campaign, f"good{i}@yahoo.com") for i in range(59)]
    for row in burst[1:]:
        Subscription.objects.create(contact=row.contact, mailing_list=second)
    for row, at in zip(burst, spread(60, minutes=8), strict=True):
        maildir.drop(notice(row, diagnostic=USER_UNKNOWN, status="5.1.1", at=at))
    Mailbox.objects.filter(pk=maildir.mailbox.pk).update(batch_size=20)
    with django_capture_on_commit_callbacks(execute=True):
        maildir.run()

    [incident] = Incident.objects.all()
    assert (incident.scope, incident.key, incident.trigger) == ("provider", "yahoo", "burst")
    acted = Bounce.objects.filter(kind="hard", state=Bounce.State.APPLIED, incident__isnull=True,
                                  bounced_at__gte=incident.window_start)
    assert acted.count() == 40 and incident.held_count == 20
    assert acted.filter(contact=older.contact).exists()  # its burst bounce was in the first batch
    punished = sorted(acted.exclude(contact=older.contact).values_list("recipient", flat=True))
    assert len(punished) == 39
    assert not any(_allowed(email, campaign.mailing_list_id) for email in punished)
    good = [f"good{i}@yahoo.com" for i in range(59)]

    # a view-only user reads the page but may neither preview nor release
    resolve = reverse("bounces:incident_resolve", args=[incident.pk])
    client.force_login(make_staff("viewer", "bounces.view_incident"))
    assert client.get(resolve + "?as=ours").status_code == 403
    assert client.post(resolve, {"as": "ours", "restore": "on"}).status_code == 403

    operator = make_staff("operator", "bounces.view_incident", "bounces.change_incident",
                          "contacts.release_suppression", "contacts.view_suppressionrelease")
    client.force_login(operator)
    page = client.get(reverse("bounces:incident_detail", args=[incident.pk])).content.decode()
    assert "40 bounces of its window were acted on before the threshold was reached" in page
    preview = client.get(resolve + "?as=ours").content.decode()
    assert ("40 bounces of the window were acted on before the incident opened:" in preview
            and "39 contacts will be restored" in preview)
    assert 'name="restore" value="on" checked' in preview
    assert "older@yahoo.com: a hard bounce on" in preview and "outside this incident" in preview
    assert not any(_allowed(email, campaign.mailing_list_id) for email in punished)  # a preview writes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resolve, {"as": "ours", "restore": "on", "note": "yahoo outage"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RELEASED and incident.resolved_by == operator

    # every good contact: subscribed again to both lists, not suppressed, may be mailed
    for email in good:
        contact = Contact.objects.get(email=email)
        assert not contact.has_bounced and contact.status == Contact.Status.ACTIVE, email
        assert set(contact.subscriptions.values_list("status", flat=True)) == {"subscribed"}, email
        assert not Suppression.objects.filter(value=email).exists(), email
        assert _allowed(email, campaign.mailing_list_id) and _allowed(email, second.pk), email
    # the contact with an older real hard bounce stays as it was
    assert not _allowed("older@yahoo.com", campaign.mailing_list_id)
    assert Contact.objects.get(email="older@yahoo.com").has_bounced
    assert Suppression.objects.filter(value="older@yahoo.com").exists()
    # the earlier bounces joined the incident: recorded, never counted, as the held ones
    mine = Bounce.objects.filter(incident=incident)
    assert mine.count() == 60 and set(mine.values_list("state", "counted")) == {("recorded", False)}
    assert Bounce.objects.filter(incident__isnull=True, counted=True).count() == 1  # the older one
    page = client.get(reverse("bounces:incident_detail", args=[incident.pk])).content.decode()
    assert "acted on before the threshold" not in page and "Suppression release #" in page

    # releasing twice changes nothing
    before = (_state(good + ["older@yahoo.com"]), ContactEvent.objects.count(), SuppressionRelease.objects.count())
    response = client.post(resolve, {"as": "ours", "restore": "on"})
    assert response.status_code == 302
    assert (_state(good + ["older@yahoo.com"]), ContactEvent.objects.count(),
            SuppressionRelease.objects.count()) == before

    # the contacts admin's undo of that release puts them back as they were
    [release] = SuppressionRelease.objects.all()
    assert release.reset_contacts and release.count == 39 and release.actor == operator
    response = client.post(reverse("admin:contacts_suppressionrelease_changelist"),
                           {"action": "undo_selected", "_selected_action": [release.pk]})
    assert response.status_code == 302
    for email in punished:
        contact = Contact.objects.get(email=email)
        assert contact.has_bounced and Suppression.objects.filter(value=email).exists(), email
        assert set(contact.subscriptions.values_list("status", flat=True)) == {"unsubscribed"}, email
        assert not _allowed(email, campaign.mailing_list_id), email


def test_restoring_needs_the_permission_to_release_suppressions_and_unticked_leaves_the_contacts(
    tmp_path, client, settings
):
    settings.INCIDENT_BURST_MIN = 10_000  # nothing opens while the earlier bounces are processed
    campaign = make_campaign()
    maildir = Maildir(tmp_path)
    for i, at in enumerate(spread(5, minutes=5)):
        maildir.drop(notice(sent_to(campaign, f"c{i}@corp.example"), diagnostic=USER_UNKNOWN, status="5.1.1", at=at))
    maildir.run()
    incident = _incident("corp.example")
    resolve = reverse("bounces:incident_resolve", args=[incident.pk])
    client.force_login(make_staff("resolver", "bounces.view_incident", "bounces.change_incident"))
    preview = client.get(resolve + "?as=ours").content.decode()
    assert "5 contacts will be restored" in preview and 'name="restore"' not in preview
    assert "needs the permission to release suppressions" in preview
    assert client.post(resolve, {"as": "ours", "restore": "on"}).status_code == 403
    incident.refresh_from_db()
    assert incident.is_open

    # released without restoring (the box unticked): the contacts and those bounces stay as they were
    assert client.post(resolve, {"as": "ours"}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RELEASED
    assert Suppression.objects.count() == 5 and Contact.objects.filter(has_bounced=True).count() == 5
    assert Bounce.objects.filter(state=Bounce.State.APPLIED, counted=True, incident__isnull=True).count() == 5


# --------------------------------------------------------------------------- the preview, unit by unit
def _incident(domain: str) -> Incident:
    now = timezone.now()
    return Incident.objects.create(scope=Incident.Scope.DOMAIN, key=domain, trigger=Incident.Trigger.BURST,
                                   cause="user unknown", opened_at=now, window_start=now - timedelta(minutes=10),
                                   window_count=60)


def _evidence_setup(tmp_path):
    """Contacts of corp.example that hard (or soft) bounced in the last minutes, before an
    incident of that domain opened: some good, some with other evidence against them."""
    campaign = make_campaign()
    second = MailingList.objects.create(name="second list")
    operator = make_staff("admin", "contacts.release_suppression")
    plain, moved, unconfirmed = Maildir(tmp_path), Maildir(tmp_path), Maildir(tmp_path)
    Mailbox.objects.filter(pk=moved.mailbox.pk).update(hard_action="remove_address")
    Mailbox.objects.filter(pk=unconfirmed.mailbox.pk).update(hard_action="unconfirm")
    sent = {name: sent_to(campaign, f"{name}@corp.example", when=timezone.now() - timedelta(days=3))
            for name in ("good0", "good1", "good2", "moved", "unconf", "soft", "manual", "complained", "black",
                         "older", "keptsoft")}
    for name in ("good0", "good1", "good2"):
        Subscription.objects.create(contact=sent[name].contact, mailing_list=second)
    # the other evidence, all before the window
    suppress_address(value="manual@corp.example", actor=operator, note="asked us by phone")
    suppress_address(value="keptsoft@corp.example", actor=operator)
    plain.drop(arf("complained@corp.example", token=sent["complained"].token))
    black = sent["black"].contact
    black.status = Contact.Status.BLACKLISTED
    black.save(update_fields=["status"])
    record_status_change(contact=black, old_status=Contact.Status.ACTIVE, actor=operator)
    plain.drop(notice(sent["older"], diagnostic=USER_UNKNOWN, status="5.1.1",
                      at=timezone.now() - timedelta(days=2)))
    plain.run()
    # the window's bounces, acted on (no incident opens: the thresholds are out of reach)
    times = iter(spread(11, minutes=6))
    for name in ("good0", "good1", "good2", "manual", "complained", "black"):
        plain.drop(notice(sent[name], diagnostic=USER_UNKNOWN, status="5.1.1", at=next(times)))
    plain.drop(notice(_resend(sent["older"].contact), diagnostic=USER_UNKNOWN, status="5.1.1",
                      at=next(times)))
    plain.drop(notice(sent["soft"], diagnostic=MAILBOX_FULL, status="4.2.2", at=next(times)))
    plain.drop(notice(sent["keptsoft"], diagnostic=MAILBOX_FULL, status="4.2.2", at=next(times)))
    moved.drop(notice(sent["moved"], diagnostic=USER_UNKNOWN, status="5.1.1", at=next(times)))
    unconfirmed.drop(notice(sent["unconf"], diagnostic=USER_UNKNOWN, status="5.1.1", at=next(times)))
    for box in (plain, moved, unconfirmed):
        box.run()
    # another domain's hard bounce in the same minutes is not the incident's
    outside = sent_to(campaign, "x@elsewhere.example")
    plain.drop(notice(outside, diagnostic=USER_UNKNOWN, status="5.1.1", at=timezone.now() - timedelta(minutes=3)))
    plain.run()
    return campaign, second, sent, _incident("corp.example")


def test_the_release_preview_counts_who_is_restored_and_who_is_kept_with_the_reason(tmp_path, settings):
    settings.INCIDENT_BURST_MIN = 10_000
    settings.INCIDENT_BLOCKED_THRESHOLD = 10_000
    campaign, second, sent, incident = _evidence_setup(tmp_path)
    assert Contact.objects.get(pk=sent["soft"].contact_id).consecutive_bounces == 1
    assert Contact.objects.get(pk=sent["keptsoft"].contact_id).consecutive_bounces == 1
    emails = [f"{name}@corp.example" for name in sent]
    before = (_state(emails), ContactEvent.objects.count())

    preview = preview_release(incident=incident)

    assert preview.acted == 11
    assert preview.restored == 6  # good0-2, moved, unconf, soft
    assert len(preview.suppression_ids) == 4  # good0-2 and moved (unconfirm and soft suppress nothing)
    assert preview.resubscribed == 6  # good0-2 from both lists
    assert (preview.flags, preview.addresses, preview.statuses, preview.deleted) == (5, 1, 1, 0)
    kept = {row.email: row.reason for row in preview.kept}
    assert set(kept) == {"manual@corp.example", "complained@corp.example", "black@corp.example",
                         "older@corp.example", "keptsoft@corp.example"}
    assert kept["manual@corp.example"] == "an operator suppressed the address"
    assert kept["complained@corp.example"].startswith("a complaint on ")
    assert kept["black@corp.example"].startswith("blacklisted by an operator")
    assert kept["older@corp.example"].startswith("a hard bounce on ") and "outside this incident" in kept[
        "older@corp.example"]
    assert (_state(emails), ContactEvent.objects.count()) == before  # nothing is written


def test_releasing_restores_the_good_contacts_keeps_the_others_and_recomputes_soft_counters(tmp_path, settings):
    settings.INCIDENT_BURST_MIN = 10_000
    settings.INCIDENT_BLOCKED_THRESHOLD = 10_000
    campaign, second, sent, incident = _evidence_setup(tmp_path)
    kept = ["manual", "complained", "black", "older", "keptsoft"]
    kept_before = _state([f"{name}@corp.example" for name in kept])
    keptsoft = Contact.objects.get(pk=sent["keptsoft"].contact_id)
    assert (keptsoft.consecutive_bounces, keptsoft.soft_bounce_count) == (1, 1)

    resolve_incident(incident_id=incident.pk, real=False, actor="ops")

    for name in ("good0", "good1", "good2", "moved", "unconf", "soft"):
        email = f"{name}@corp.example"
        assert _allowed(email, campaign.mailing_list_id), (email, check_address(email=email).reasons)
    for name in ("good0", "good1", "good2"):
        assert _allowed(f"{name}@corp.example", second.pk)
    moved = Contact.objects.get(pk=sent["moved"].contact_id)
    assert (moved.email, moved.bounced_address) == ("moved@corp.example", "")
    assert Contact.objects.get(pk=sent["unconf"].contact_id).status == Contact.Status.ACTIVE
    assert Contact.objects.get(pk=sent["soft"].contact_id).consecutive_bounces == 0
    assert _state([f"{name}@corp.example" for name in kept]) == kept_before
    # a kept contact stays suppressed, but the window's soft bounce no longer counts in its chain
    keptsoft.refresh_from_db()
    assert keptsoft.consecutive_bounces == 0
    assert Bounce.objects.filter(incident=incident, state="recorded", counted=False).count() == 11
    assert Bounce.objects.filter(recipient="x@elsewhere.example", counted=True, incident__isnull=True).exists()
    # one release, undoable as a whole (the unconfirmed contact had no suppression to lift)
    [release] = SuppressionRelease.objects.all()
    assert release.count == 4 and release.note.startswith(f"incident #{incident.pk} released ")
    with pytest.raises(IncidentClosed):
        resolve_incident(incident_id=incident.pk, real=False)

    undo_release(release=release, actor="ops")
    unconf = Contact.objects.get(pk=sent["unconf"].contact_id)
    assert unconf.status == Contact.Status.UNCONFIRMED and unconf.has_bounced
    moved.refresh_from_db()
    assert (moved.email, moved.bounced_address) == ("", "moved@corp.example")
    assert not _allowed("good0@corp.example", campaign.mailing_list_id)


def test_resolving_as_real_leaves_the_earlier_bounces_counting_and_their_contacts_as_they_are(tmp_path, settings):
    settings.INCIDENT_BURST_MIN = 10_000
    settings.INCIDENT_BLOCKED_THRESHOLD = 10_000
    campaign, second, sent, incident = _evidence_setup(tmp_path)
    emails = [f"{name}@corp.example" for name in sent]
    before = _state(emails)
    assert preview_release(incident=incident).restored == 6

    resolve_incident(incident_id=incident.pk, real=True)

    assert _state(emails) == before
    assert not SuppressionRelease.objects.exists()
    assert not Bounce.objects.filter(incident=incident).exists()
