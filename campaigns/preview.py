"""Before a campaign is sent: preview with a real recipient, test send, the send summary.

Services of the campaign page (campaigns/views.py). Nothing here creates a SentMessage or
touches the campaign's counters: a preview or a test message is not a campaign send.
A test message carries no recipient's token (no VERP return path, no tracking header, an
unsubscribe link that unsubscribes nobody), so a bounce of it can never act on a contact.
"""

from __future__ import annotations

import logging
import smtplib
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.conf import settings
from django.core.mail import get_connection
from django.db.models import Q

from bounces.incidents.selectors import incidents_for_addresses
from contacts.models import Contact, Subscription

from . import selectors
from .models import Campaign, SentMessage, new_token

logger = logging.getLogger(__name__)

# A token that can never be a recipient's: "-" is not in models.TOKEN_ALPHABET, so the
# unsubscribe link of a preview or a test message answers "unknown link".
PREVIEW_TOKEN_PREFIX = "preview-"
TEST_SUBJECT_PREFIX = "[Test] "
SUMMARY_CHUNK = 2000
SUMMARY_EXAMPLES = 200


class TestSendError(Exception):
    """The test message could not be sent; the text says why, for the operator."""


@dataclass(frozen=True)
class Preview:
    """One message as it would leave for `contact` (headers, subject, bodies)."""

    contact: Contact | None
    to: str
    subject: str
    body_text: str
    body_html: str
    headers: list[tuple[str, str]]


def _preview_row(*, campaign: Campaign, contact: Contact | None, to: str) -> SentMessage:
    """An unsaved SentMessage standing in for the real one: same merge values, a token no
    recipient has."""
    token = PREVIEW_TOKEN_PREFIX + new_token()
    row = SentMessage(campaign=campaign, email=to, token=token,
                      message_id=f"{token}@{settings.BOUNCE_RETURN_DOMAIN}")
    if contact is not None:
        row.contact = contact
    return row


def preview_recipients(*, campaign: Campaign, search: str = "", limit: int = 50) -> list[Contact]:
    """Contacts of the campaign's list to preview with: subscribed and mailable, by address."""
    if campaign.mailing_list_id is None:
        return []
    contacts = (
        Contact.objects.deliverable()
        .filter(subscriptions__mailing_list_id=campaign.mailing_list_id,
                subscriptions__status=Subscription.Status.SUBSCRIBED)
        .only("pk", "email", "name")
    )
    if search.strip():
        term = search.strip()
        contacts = contacts.filter(Q(email__icontains=term) | Q(name__icontains=term))
    return list(contacts.order_by("pk")[:limit])


def preview_contact(*, campaign: Campaign, contact_id: int | str | None) -> Contact | None:
    """The chosen contact if it is on the campaign's list, else the list's first recipient."""
    if campaign.mailing_list_id is None:
        return None
    on_list = Contact.objects.filter(subscriptions__mailing_list_id=campaign.mailing_list_id)
    if contact_id and str(contact_id).isdigit():
        chosen = on_list.filter(pk=int(contact_id)).first()
        if chosen is not None:
            return chosen
    first = preview_recipients(campaign=campaign, limit=1)
    return first[0] if first else None


def render_preview(*, campaign: Campaign, contact: Contact | None) -> Preview:
    """The message `contact` would get, built by the sender's own build_message.

    Raises merge.MergeError when a text does not compile (the page says which).
    """
    from .services import build_message

    to = contact.email if contact is not None else "recipient@example.com"
    message = build_message(campaign=campaign, row=_preview_row(campaign=campaign, contact=contact, to=to))
    html = next((content for content, mimetype in getattr(message, "alternatives", [])
                 if mimetype == "text/html"), "")
    shown = ("From", "List-Unsubscribe", "List-Unsubscribe-Post")
    headers = [(name, message.extra_headers[name]) for name in shown if name in message.extra_headers]
    headers.insert(1, ("To", to))
    return Preview(contact=contact, to=to, subject=message.subject, body_text=message.body,
                   body_html=html, headers=headers)


def send_test_message(*, campaign: Campaign, to: str, contact: Contact | None, actor=None) -> str:
    """Send the campaign as `contact` would get it, to the address `to`, through the real
    SMTP backend (EMAIL_URL). Returns the Message-ID.

    Not a campaign send: no SentMessage, no counter, no VERP return path and no tracking
    header (the envelope sender is the plain bounce address), and the unsubscribe link
    carries a token no recipient has. The subject starts with "[Test] ".
    Raises TestSendError with the reason (refused, cannot connect...).
    """
    from .services import build_message, header_problem

    if problem := header_problem(campaign):
        raise TestSendError(problem)
    shown_as = contact.email if contact is not None else to
    row = _preview_row(campaign=campaign, contact=contact, to=shown_as)
    message = build_message(campaign=campaign, row=row)
    message.to = [to]
    message.subject = TEST_SUBJECT_PREFIX + message.subject
    message.from_email = f"{settings.BOUNCE_LOCAL_PART}@{settings.BOUNCE_RETURN_DOMAIN}"
    message.extra_headers.pop(settings.BOUNCE_TRACKING_HEADER, None)
    message.extra_headers["X-Bouncemgr-Test"] = "yes"
    try:
        connection = get_connection(fail_silently=False)
        message.connection = connection
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise TestSendError(f"The SMTP server refused {to}: {code} {_text(text)[:300]}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise TestSendError(f"The SMTP server refused the sender: {exc.smtp_code} {_text(exc.smtp_error)[:300]}"
                            ) from None
    except smtplib.SMTPResponseException as exc:
        raise TestSendError(f"The SMTP server refused the message: {exc.smtp_code} "
                            f"{_text(exc.smtp_error)[:300]}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TestSendError(f"Cannot send through the SMTP server ({type(exc).__name__}): "
                            "check EMAIL_URL and that the server is reachable.") from None
    logger.info("test message of campaign %s sent by %s", campaign.pk, getattr(actor, "pk", None))
    return row.message_id


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class SendSummary:
    """What "Send" would do now: how many get the message, who is skipped and why."""

    recipients: int = 0  # new messages to send
    held: int = 0  # of those, to an address an open incident pauses: deferred until it is resolved
    pending: int = 0  # messages created by an earlier run, still queued (a resumed campaign)
    already: int = 0  # contacts this campaign has a message for already (sent, refused, skipped...)
    skipped: int = 0
    by_reason: list[tuple[str, int]] = field(default_factory=list)
    examples: list[tuple[str, str, int]] = field(default_factory=list)  # (address, reason label, contact id)

    @property
    def total(self) -> int:
        return self.recipients + self.pending


def send_summary(*, campaign: Campaign) -> SendSummary:
    """Count the campaign's recipients as the sender will see them, with the skips and reasons.

    The same decision as the sending loop (selectors.recipients_to_consider and
    selectors.skip_reason with the suppression list; recipients an open incident pauses are
    counted as held), read in chunks of SUMMARY_CHUNK
    contacts: memory stays bounded whatever the list's size. Contacts the campaign has a
    message for already are counted apart (a resumed campaign never mails them again).
    """
    summary = SendSummary()
    if campaign.mailing_list_id is None:
        return summary
    labels = dict(SentMessage.SkipReason.choices)
    reasons: Counter[str] = Counter()
    after = 0
    fields = ("pk", "email", "bounced_address", "status", "has_bounced", "list_status")
    base = selectors.recipients_to_consider(campaign=campaign).values_list(*fields)
    while True:
        # Plain rows, not model instances: a third of the time on a large list.
        contacts = [SimpleNamespace(**dict(zip(fields, row, strict=True)))
                    for row in base.filter(pk__gt=after)[:SUMMARY_CHUNK]]
        if not contacts:
            break
        after = contacts[-1].pk
        suppressed = selectors.suppressed_among(c.email or c.bounced_address for c in contacts)
        eligible = []
        for contact in contacts:
            address = contact.email or contact.bounced_address
            reason = selectors.skip_reason(contact, list_status=contact.list_status,
                                           suppressed=address.strip().lower() in suppressed)
            if not reason:
                eligible.append(address)
                continue
            reasons[reason] += 1
            if len(summary.examples) < SUMMARY_EXAMPLES:
                summary.examples.append((address, labels.get(reason, reason), contact.pk))
        summary.recipients += len(eligible)
        # The sending loop's incident pause (campaigns.services._pause_for_incidents): these
        # are mailed once the incident is resolved, so they count as recipients, held.
        summary.held += len(incidents_for_addresses(emails=eligible, from_email=campaign.from_email))
    summary.skipped = sum(reasons.values())
    summary.by_reason = [(labels.get(reason, reason), n) for reason, n in reasons.most_common()]
    rows = selectors.progress_counts(campaign_id=campaign.pk)
    summary.pending = rows.get(SentMessage.Status.QUEUED, 0)
    summary.already = sum(rows.values()) - summary.pending
    return summary


@dataclass(frozen=True)
class Progress:
    """Send progress of a campaign, from its counters (no count of its messages)."""

    status: str
    status_label: str
    sent: int
    failed: int
    deferred: int
    skipped: int
    pending: int
    in_flight: int
    last_error: str

    @property
    def active(self) -> bool:
        return self.status in (Campaign.Status.QUEUED, Campaign.Status.SENDING)

    def as_dict(self) -> dict:
        return {
            "status": self.status, "status_label": self.status_label, "sent": self.sent,
            "failed": self.failed, "deferred": self.deferred, "skipped": self.skipped,
            "pending": self.pending, "in_flight": self.in_flight, "last_error": self.last_error,
            "active": self.active,
        }


def send_progress(*, campaign: Campaign) -> Progress:
    """Sent / failed / deferred / skipped from the campaign's counters; pending = messages
    queued plus contacts of the list without a message yet (an estimate while the list
    changes). A handful of indexed queries, cheap enough to poll."""
    done = campaign.sent_count + campaign.refused_count + campaign.deferred_count + campaign.skipped_count
    queued = SentMessage.objects.filter(campaign_id=campaign.pk, status=SentMessage.Status.QUEUED).count()
    in_flight = SentMessage.objects.filter(campaign_id=campaign.pk, status=SentMessage.Status.SENDING).count()
    pending = queued
    if campaign.status not in (Campaign.Status.SENT, Campaign.Status.CANCELLED) and campaign.mailing_list_id:
        considered = Subscription.objects.filter(
            Q(status=Subscription.Status.SUBSCRIBED)
            | Q(status=Subscription.Status.UNSUBSCRIBED,
                unsubscribe_reason__in=selectors.BOUNCE_UNSUBSCRIBE_REASONS),
            mailing_list_id=campaign.mailing_list_id,
        ).count()
        pending = max(queued, considered - done - in_flight)
    return Progress(
        status=campaign.status, status_label=campaign.get_status_display(), sent=campaign.sent_count,
        failed=campaign.refused_count, deferred=campaign.deferred_count, skipped=campaign.skipped_count,
        pending=pending, in_flight=in_flight, last_error=campaign.last_error,
    )
