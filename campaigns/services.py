"""Writes of the campaigns app: queueing and sending campaigns, recounting.

Sending invariants (docs/campaigns.md):
- every message is recorded in a SentMessage (token, Message-ID) before it leaves;
- a contact gets a campaign at most once: rows are unique on (campaign, contact), and a
  row is claimed with a conditional UPDATE queued -> sending right before its SMTP
  transaction. A row left in "sending" by a crash is never retried (at most once);
- sending is resumable: rows are created a batch at a time under a lock on the campaign
  row, and a new run first sends the rows a crashed run left queued;
- no network I/O inside a transaction: claim (commit), talk SMTP, then record the
  outcome together with the campaign's counters (one transaction);
- a message deferred at send time (4xx for the recipient) is tried again after each delay
  of CAMPAIGN_DEFER_RETRY_DELAYS by retry_deferred, claimed the same way
  (deferred -> sending, only once due); after the last delay it is given up and only
  then recorded as a bounce (record_send_refusal), so a deferral counts at most once.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bouncemgr.queue import send_task_on_commit

from . import guardrails, selectors
from .models import Campaign, CampaignStats, SentMessage, new_token, validate_header_value

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100
# Waits before each new attempt of a deferred message (seconds): 15 min, 1 h, 4 h, i.e.
# up to 4 attempts over ~5 h 15 min. An empty sequence: never retried (given up at once).
DEFAULT_DEFER_RETRY_DELAYS: tuple[int, ...] = (15 * 60, 60 * 60, 4 * 60 * 60)


class CampaignError(Exception):
    """A campaign cannot be queued or sent as asked (bad state, no list...)."""


class SendInterrupted(Exception):
    """Sending stopped on a transient fault (connection lost, 4xx for the sender): retry later."""


class SendFailed(Exception):
    """Sending stopped on a permanent fault of ours (sender refused 5xx, bad settings)."""


@dataclass
class SendReport:
    """What one run of send_campaign did."""

    campaign_id: int
    sent: int = 0
    refused: int = 0
    deferred: int = 0
    skipped: int = 0
    batches: int = 0
    stopped: str = ""  # why it stopped before the end ("paused", "cancelled", ...)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RetryReport(SendReport):
    """What one run of retry_deferred did (sent/refused/deferred: outcomes of the retries)."""

    retried: int = 0  # deferred messages claimed and tried again
    gave_up: int = 0  # deferred after their last attempt: recorded as a soft failure
    dropped: int = 0  # not retried: contact unsubscribed, suppressed or removed meanwhile
    next_due: str = ""  # ISO time of the earliest retry still pending in the scope, if any


def verp_address(token: str) -> str:
    """The envelope sender of one message: <local>+<token>@<return domain>."""
    return f"{settings.BOUNCE_LOCAL_PART}+{token}@{settings.BOUNCE_RETURN_DOMAIN}"


def message_id_for(token: str) -> str:
    """The Message-ID (without brackets) of the message carrying `token`."""
    return f"{token}@{settings.BOUNCE_RETURN_DOMAIN}"


def _batch_size() -> int:
    return int(getattr(settings, "CAMPAIGN_SEND_BATCH_SIZE", DEFAULT_BATCH_SIZE))


def defer_retry_delays() -> tuple[dt.timedelta, ...]:
    """CAMPAIGN_DEFER_RETRY_DELAYS as timedeltas (the setting holds seconds or timedeltas)."""
    raw = getattr(settings, "CAMPAIGN_DEFER_RETRY_DELAYS", DEFAULT_DEFER_RETRY_DELAYS)
    return tuple(d if isinstance(d, dt.timedelta) else dt.timedelta(seconds=float(d)) for d in raw or ())


# ---------------------------------------------------------------------------------------
# Queueing


def header_problem(campaign: Campaign) -> str:
    """Why the campaign's Subject or From cannot go into a header ("" when they can)."""
    for label, value in (("Subject", campaign.subject), ("From", campaign.from_email)):
        try:
            validate_header_value(value)
        except ValidationError:
            return f"The {label} contains a line break (CR/LF): edit the campaign, then send it again."
    from .merge import merge_problem

    return merge_problem(subject=campaign.subject, body_text=campaign.body_text, body_html=campaign.body_html)


def queue_campaign(*, campaign: Campaign, actor=None) -> Campaign:
    """Mark a campaign queued and start its sending task after commit.

    Draft and paused campaigns start or resume; a queued or sending one gets another task
    (for a worker lost mid-send: claims keep two runs from mailing anyone twice). Raises
    CampaignError when the campaign has no list or was already sent or cancelled.
    """
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.mailing_list_id is None:
            raise CampaignError("The campaign has no mailing list.")
        if locked.status in (Campaign.Status.SENT, Campaign.Status.CANCELLED):
            raise CampaignError(f"A campaign that is {locked.get_status_display().lower()} cannot be queued.")
        if problem := header_problem(locked):
            raise CampaignError(problem)
        if locked.status == Campaign.Status.PAUSED:
            guardrails.note_resumed(campaign=locked, actor=actor)  # the rates count from here
        if locked.status != Campaign.Status.SENDING:
            locked.status = Campaign.Status.QUEUED
        locked.last_error = ""
        locked.save(update_fields=["status", "last_error", "updated_at"])
        send_task_on_commit("campaigns.send_campaign", locked.pk)
    logger.info("campaign %s queued by %s", locked.pk, getattr(actor, "pk", None) or "system")
    return locked


def pause_campaign(*, campaign: Campaign) -> Campaign:
    """Ask a queued or sending campaign to stop after its current batch; queue it again to resume."""
    with transaction.atomic():
        updated = Campaign.objects.filter(
            pk=campaign.pk, status__in=[Campaign.Status.QUEUED, Campaign.Status.SENDING]
        ).update(status=Campaign.Status.PAUSED, updated_at=timezone.now())
        if not updated:
            raise CampaignError("Only a queued or sending campaign can be paused.")
        _emit_paused(campaign.pk, campaign.name, "operator", "")
    campaign.refresh_from_db()
    return campaign


def _emit_paused(campaign_id: int, name: str, cause: str, error: str) -> None:
    """The `campaign.paused` webhook event (api.events), in the caller's transaction."""
    from api.events import emit_event

    emit_event("campaign.paused", {"campaign_id": campaign_id, "name": name, "cause": cause, "error": error[:500]})


# ---------------------------------------------------------------------------------------
# Sending


def send_campaign(*, campaign_id: int, batch_size: int | None = None) -> SendReport:
    """Send a queued campaign to its list, in batches, one SMTP connection per batch.

    Safe to run twice, concurrently or after a crash: see the module docstring.
    Raises SendInterrupted (retry) or SendFailed (the campaign is paused with last_error).
    """
    batch_size = batch_size or _batch_size()
    report = SendReport(campaign_id=campaign_id)
    now = timezone.now()
    started = Campaign.objects.filter(
        pk=campaign_id, status__in=[Campaign.Status.QUEUED, Campaign.Status.SENDING]
    ).update(status=Campaign.Status.SENDING, updated_at=now)
    if not started:
        report.stopped = "not queued"
        return report
    Campaign.objects.filter(pk=campaign_id, sent_at__isnull=True).update(sent_at=now)
    campaign = Campaign.objects.select_related("mailing_list").get(pk=campaign_id)
    if campaign.mailing_list_id is None:
        _stop_with_error(campaign, "The campaign has no mailing list.")
        raise SendFailed("The campaign has no mailing list.")
    if problem := header_problem(campaign):
        # Caught before any row is claimed: nothing is left in "sending" (issue 12).
        _stop_with_error(campaign, problem)
        raise SendFailed(problem)

    # Contacts are scanned in primary-key order; the cursor keeps each run linear (it starts
    # again from the beginning in a new run, so contacts subscribed meanwhile are not missed).
    cursor = [0]
    while True:
        status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
        if status != Campaign.Status.SENDING:
            report.stopped = status or "deleted"
            return report
        rows, more = _next_batch(campaign=campaign, batch_size=batch_size, report=report, cursor=cursor)
        if not rows:
            if more:
                continue  # a batch of suppressed contacts only: go on scanning
            break
        report.batches += 1
        _send_batch(campaign=campaign, rows=rows, report=report)
        guardrails.check_campaign(campaign=campaign, domains={guardrails.domain_of(r.email) for r in rows})

    Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.SENT, finished_at=timezone.now(), updated_at=timezone.now()
    )
    logger.info("campaign %s sent: %s", campaign_id, report.as_dict())
    return report


def _next_batch(*, campaign: Campaign, batch_size: int, report: SendReport, cursor: list[int]
                ) -> tuple[list[SentMessage], bool]:
    """(the next rows to send, whether more may follow): rows left queued (by a crashed run)
    first, else new ones.

    New rows are created under a lock on the campaign row, so two runs of the same
    campaign never create rows for the same contacts. Suppressed contacts get a row in
    state "skipped", so nothing is silently dropped and the scan moves on.
    """
    left = list(
        SentMessage.objects.filter(campaign_id=campaign.pk, status=SentMessage.Status.QUEUED)
        .order_by("pk")[:batch_size]
    )
    if left:
        return left, True
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk").get()
        # Every contact of the list is considered: the eligible get a queued row, the rest a
        # skipped row with the reason (issue 11: never mailed, and the page says why).
        contacts = list(
            selectors.recipients_to_consider(campaign=campaign)
            .filter(pk__gt=cursor[0])
            .only("pk", "email", "name", "bounced_address", "status", "has_bounced")[:batch_size]
        )
        if not contacts:
            return [], False
        cursor[0] = contacts[-1].pk
        suppressed = selectors.suppressed_among(c.email or c.bounced_address for c in contacts)
        rows = []
        skipped = 0
        for contact in contacts:
            token = new_token()
            address = contact.email or contact.bounced_address
            reason = selectors.skip_reason(contact, list_status=contact.list_status,
                                           suppressed=address.strip().lower() in suppressed)
            skipped += bool(reason)
            rows.append(
                SentMessage(
                    campaign=campaign,
                    contact=contact,
                    email=address,
                    token=token,
                    message_id=message_id_for(token),
                    status=SentMessage.Status.SKIPPED if reason else SentMessage.Status.QUEUED,
                    skip_reason=reason,
                )
            )
        created = SentMessage.objects.bulk_create(rows)
        if skipped:
            Campaign.objects.filter(pk=campaign.pk).update(skipped_count=F("skipped_count") + skipped)
            report.skipped += skipped
    return [row for row in created if row.status == SentMessage.Status.QUEUED], True


def _skip_no_longer_eligible(*, campaign: Campaign, rows: list[SentMessage], report: SendReport
                             ) -> list[SentMessage]:
    """Rows queued a while ago (a crashed run) are checked again before they leave."""
    ids = {row.contact_id for row in rows if row.contact_id}
    still = selectors.still_subscribed_ids(campaign=campaign, contact_ids=ids)
    suppressed = selectors.suppressed_among(row.email for row in rows)
    keep, drop = [], []
    for row in rows:
        ok = row.contact_id in still and row.email.strip().lower() not in suppressed
        (keep if ok else drop).append(row)
    if drop:
        reasons = _skip_reasons(campaign=campaign, rows=drop, suppressed=suppressed)
        with transaction.atomic():
            n = 0
            for reason, ids in reasons.items():
                n += SentMessage.objects.filter(pk__in=ids, status=SentMessage.Status.QUEUED).update(
                    status=SentMessage.Status.SKIPPED, skip_reason=reason)
            Campaign.objects.filter(pk=campaign.pk).update(skipped_count=F("skipped_count") + n)
        report.skipped += n
    return keep


def _skip_reasons(*, campaign: Campaign, rows: list[SentMessage], suppressed: dict) -> dict[str, list[int]]:
    """Row ids by the reason their contact may no longer be mailed."""
    from contacts.models import Contact, Subscription

    contacts = Contact.objects.in_bulk([r.contact_id for r in rows if r.contact_id])
    statuses = dict(Subscription.objects.filter(
        mailing_list_id=campaign.mailing_list_id, contact_id__in=list(contacts)).values_list("contact_id", "status"))
    by_reason: dict[str, list[int]] = {}
    for row in rows:
        contact = contacts.get(row.contact_id)
        if contact is None:
            reason = SentMessage.SkipReason.UNSUBSCRIBED
        else:
            reason = selectors.skip_reason(contact, list_status=statuses.get(contact.pk),
                                           suppressed=row.email.strip().lower() in suppressed)
        by_reason.setdefault(reason or SentMessage.SkipReason.UNSUBSCRIBED, []).append(row.pk)
    return by_reason


def build_message(*, campaign: Campaign, row: SentMessage, connection=None) -> EmailMultiAlternatives:
    """The email for one SentMessage: visible From in the headers, VERP address as envelope sender.

    Django's SMTP backend uses `from_email` as the SMTP MAIL FROM and the "From" header
    when one is given in `headers`, which is how the two differ here.
    """
    headers = {
        "From": campaign.from_email,
        "Message-ID": f"<{row.message_id}>",
        settings.BOUNCE_TRACKING_HEADER: row.token,
    }
    unsubscribe = getattr(settings, "CAMPAIGN_LIST_UNSUBSCRIBE", "")
    unsubscribe_url = ""
    if unsubscribe:
        # e.g. "mailto:unsubscribe@example.com?subject=unsubscribe-{token}" or an https URL
        # (this app's own endpoint: https://HOST/unsubscribe/{token}/)
        target = unsubscribe.format(token=row.token)
        headers["List-Unsubscribe"] = f"<{target}>"
        if target.startswith("https://"):
            # RFC 8058 one-click: the mailbox provider POSTs to the URL
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if target.startswith(("https://", "http://")):
            unsubscribe_url = target
    from .merge import render_message

    uses_name = "name" in campaign.subject or "name" in campaign.body_text or "name" in campaign.body_html
    contact = row.contact if row.contact_id and uses_name else None
    subject, body_text, body_html = render_message(
        subject=campaign.subject, body_text=campaign.body_text, body_html=campaign.body_html,
        name=getattr(contact, "name", "") or "", email=row.email, unsubscribe_url=unsubscribe_url,
    )
    message = EmailMultiAlternatives(
        subject=subject,
        body=body_text,
        from_email=verp_address(row.token),
        to=[row.email],
        headers=headers,
        connection=connection,
    )
    if body_html:
        message.attach_alternative(body_html, "text/html")
    return message


def _claim(row: SentMessage, *, retry: bool = False) -> bool:
    """queued -> sending (or, for a retry, deferred and due -> sending), for this row only if
    nobody else took it: one conditional UPDATE, committed before any SMTP traffic.

    The attempt is counted here; a retry's next_attempt_at is cleared, so a second sweep
    cannot pick the row even if it saw it due.
    """
    now = timezone.now()
    if retry:
        rows = SentMessage.objects.filter(
            pk=row.pk, status=SentMessage.Status.DEFERRED, next_attempt_at__lte=now
        )
    else:
        rows = SentMessage.objects.filter(pk=row.pk, status=SentMessage.Status.QUEUED)
    claimed = bool(rows.update(status=SentMessage.Status.SENDING, attempts=F("attempts") + 1,
                               last_attempt_at=now, next_attempt_at=None))
    if claimed:
        row.status, row.attempts, row.last_attempt_at, row.next_attempt_at = (
            SentMessage.Status.SENDING, row.attempts + 1, now, None)
    return claimed


def _unclaim(row: SentMessage, *, retry: bool = False) -> None:
    """The SMTP transaction failed before the server took the message: hand it back as it
    was (queued, or deferred and due at once), and do not count the attempt."""
    back = (
        {"status": SentMessage.Status.DEFERRED, "next_attempt_at": timezone.now()}
        if retry else {"status": SentMessage.Status.QUEUED}
    )
    SentMessage.objects.filter(pk=row.pk, status=SentMessage.Status.SENDING).update(
        attempts=F("attempts") - 1, **back
    )


_COUNTERS = {
    SentMessage.Status.SENT: "sent_count",
    SentMessage.Status.REFUSED: "refused_count",
    SentMessage.Status.DEFERRED: "deferred_count",
}


def _record_outcome(*, campaign: Campaign, row: SentMessage, status: str, retry: bool = False,
                    **fields) -> bool:
    """Set the row's outcome (and `fields`) and keep the campaign's counters right, in one
    transaction.

    A first attempt bumps the outcome's counter. A retry was counted as deferred: its
    outcome moves it from deferred_count to sent_count / refused_count (deferred again:
    no change), so Sent = sent + refused + deferred stays one per message.
    """
    with transaction.atomic():
        n = SentMessage.objects.filter(pk=row.pk, status=SentMessage.Status.SENDING).update(
            status=status, sent_at=timezone.now(), **fields
        )
        if n:
            counter = _COUNTERS[status]
            if not retry:
                Campaign.objects.filter(pk=campaign.pk).update(**{counter: F(counter) + 1})
            elif status != SentMessage.Status.DEFERRED:
                Campaign.objects.filter(pk=campaign.pk).update(
                    **{counter: F(counter) + 1, "deferred_count": F("deferred_count") - 1}
                )
            if row.attempts <= 1:  # its first attempt (rate guardrails; an incident-held row is first tried as a retry)
                guardrails.count_sent(campaign=campaign, email=row.email)
    row.status = status
    for name, value in fields.items():
        setattr(row, name, value)
    return bool(n)


def _send_batch(*, campaign: Campaign, rows: list[SentMessage], report: SendReport, retry: bool = False
                ) -> None:
    """Send `rows` over one SMTP connection: claim, send, record, one row at a time.

    retry=True: the rows are deferred ones due for another attempt (retry_deferred), already
    checked for eligibility.
    """
    if not retry:
        rows = _skip_no_longer_eligible(campaign=campaign, rows=rows, report=report)
    rows = _pause_for_incidents(campaign=campaign, rows=rows, report=report, retry=retry)
    if not rows:
        return
    error_before, sent_before = _last_error(campaign), report.sent
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as exc:
        _note_error(campaign, f"Cannot connect to the SMTP server: {exc}")
        raise SendInterrupted(str(exc)) from exc
    try:
        for row in rows:
            if not _claim(row, retry=retry):
                continue  # another run took it
            if retry:
                report.retried += 1
            message = build_message(campaign=campaign, row=row, connection=connection)
            try:
                connection.send_messages([message])
            except smtplib.SMTPRecipientsRefused as exc:
                # One recipient per message: the only entry is ours.
                code, text = next(iter(exc.recipients.values()))
                _refused(campaign=campaign, row=row, code=code, text=text, report=report, retry=retry)
                if guardrails.is_guardrail_paused(campaign):
                    return  # the refusal crossed a threshold: the rest of the batch stays queued
            except smtplib.SMTPDataError as exc:
                # Refused after DATA (content, policy): still this recipient's answer.
                _refused(campaign=campaign, row=row, code=exc.smtp_code, text=exc.smtp_error,
                         report=report, retry=retry)
            except BadHeaderError as exc:
                # A header Django refuses to write (edited under a running campaign): the
                # message never left; hand it back and stop the campaign with the reason.
                _unclaim(row, retry=retry)
                reason = f"A message header is invalid: {exc}. Edit the campaign, then send it again."
                _stop_with_error(campaign, reason)
                raise SendFailed(reason) from exc
            except smtplib.SMTPSenderRefused as exc:
                _unclaim(row, retry=retry)
                reason = f"The SMTP server refused the sender {exc.sender}: {exc.smtp_code} {_text(exc.smtp_error)}"
                if 400 <= exc.smtp_code < 500:
                    _note_error(campaign, reason)
                    raise SendInterrupted(reason) from exc
                _stop_with_error(campaign, reason)
                raise SendFailed(reason) from exc
            except (smtplib.SMTPException, OSError) as exc:
                # Connection lost mid-transaction: without the final reply to DATA the
                # server did not take the message (RFC 5321 4.1.1.4), so it is queued again.
                _unclaim(row, retry=retry)
                _note_error(campaign, f"SMTP connection lost: {exc}")
                raise SendInterrupted(str(exc)) from exc
            else:
                if _record_outcome(campaign=campaign, row=row, status=SentMessage.Status.SENT, retry=retry):
                    report.sent += 1
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide the cause
            logger.debug("closing the SMTP connection failed", exc_info=True)
        if error_before and report.sent > sent_before:
            _clear_error(campaign, error_before)


def _pause_for_incidents(*, campaign: Campaign, rows: list[SentMessage], report, retry: bool = False
                         ) -> list[SentMessage]:
    """Rows to a receiving domain / provider group (or from a sending domain) with an open
    incident do not leave: they become deferred with no due time, marked with the incident,
    and resolving it makes them due (bounces.incidents.sending). Never attempted: no attempt counted."""
    from bounces.incidents.selectors import incidents_for_addresses
    from bounces.incidents.sending import pause_mark

    paused = incidents_for_addresses(emails=[r.email for r in rows], from_email=campaign.from_email)
    if not paused:
        return rows
    keep: list[SentMessage] = []
    by_incident: dict[int, list[int]] = {}
    for row in rows:
        incident_id = paused.get(row.email.strip().lower())
        if incident_id is None:
            keep.append(row)
        else:
            by_incident.setdefault(incident_id, []).append(row.pk)
    with transaction.atomic():
        n = 0
        for incident_id, ids in by_incident.items():
            was = (SentMessage.objects.filter(pk__in=ids, status=SentMessage.Status.DEFERRED) if retry else
                   SentMessage.objects.filter(pk__in=ids, status=SentMessage.Status.QUEUED))
            n += was.update(status=SentMessage.Status.DEFERRED, next_attempt_at=None,
                            last_reply=pause_mark(incident_id))
        if n and not retry:  # a first attempt's row joins the deferred; a retry's already was
            Campaign.objects.filter(pk=campaign.pk).update(deferred_count=F("deferred_count") + n)
    report.deferred += n
    return keep


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _refused(*, campaign: Campaign, row: SentMessage, code: int, text: bytes | str,
             report: SendReport, retry: bool = False) -> None:
    """A recipient refused at send time: record the attempt and, when final, a Bounce.

    5xx: refused, recorded as a Bounce at once. 4xx: deferred, tried again after the next
    delay of CAMPAIGN_DEFER_RETRY_DELAYS; after the last attempt it is given up and only
    then recorded as a Bounce (with the last reply), so one deferred message is never
    counted twice (record_send_refusal dedupes on token + reply code only, and a retry may
    get a different code).
    """
    text = _text(text)
    status = SentMessage.Status.DEFERRED if 400 <= code < 500 else SentMessage.Status.REFUSED
    fields: dict = {"last_reply": f"{code} {text}"[:1000]}
    give_up = status == SentMessage.Status.REFUSED
    if status == SentMessage.Status.DEFERRED:
        delays = defer_retry_delays()
        if row.attempts <= len(delays):
            fields["next_attempt_at"] = timezone.now() + delays[max(row.attempts, 1) - 1]
        else:
            give_up = True
    if not _record_outcome(campaign=campaign, row=row, status=status, retry=retry, **fields):
        return
    if status == SentMessage.Status.REFUSED:
        report.refused += 1
    else:
        report.deferred += 1
        if give_up:
            if isinstance(report, RetryReport):
                report.gave_up += 1
            logger.info("message %s deferred %s times, given up: %s", row.pk, row.attempts, fields["last_reply"])
    if give_up:
        _record_refusal(campaign=campaign, row=row, code=code, text=text)


def _record_refusal(*, campaign: Campaign, row: SentMessage, code: int, text: str) -> None:
    """Record a final refusal as a Bounce through the pipeline (same classification, rules,
    contact actions as a bounce read from a mailbox)."""
    enhanced = text.partition(" ")[0]
    enhanced_status = enhanced if _looks_enhanced(enhanced) else None
    from bounces.intake.refusals import (
        record_send_refusal,  # bounces imports campaigns: import here
    )

    try:
        record_send_refusal(
            sent_message=row, reply_code=int(code), enhanced_status=enhanced_status, text=text,
            remote_mta=settings.EMAIL_HOST if hasattr(settings, "EMAIL_HOST") else "",
        )
    except Exception:  # noqa: BLE001 - one bad record must not stop the campaign
        logger.exception("recording the send-time refusal of message %s failed", row.pk)
        _note_error(campaign, f"Recording the refusal of message {row.pk} failed; see the logs.")


def _looks_enhanced(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 3 and parts[0] in {"2", "4", "5"} and all(p.isdigit() for p in parts)


def _last_error(campaign: Campaign) -> str:
    return Campaign.objects.filter(pk=campaign.pk).values_list("last_error", flat=True).first() or ""


def _clear_error(campaign: Campaign, error: str) -> None:
    """A message was accepted after `error` was noted: the error is over (the list and the
    campaign page stop showing it). An error noted since is kept."""
    Campaign.objects.filter(pk=campaign.pk, last_error=error).update(last_error="", updated_at=timezone.now())


def _note_error(campaign: Campaign, message: str) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(last_error=message[:2000], updated_at=timezone.now())


def _stop_with_error(campaign: Campaign, message: str) -> None:
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.PAUSED, last_error=message[:2000], updated_at=timezone.now()
        )
        _emit_paused(campaign.pk, campaign.name, "error", message)


# ---------------------------------------------------------------------------------------
# Retrying deferred messages

RETRYABLE_CAMPAIGN_STATUSES = (Campaign.Status.SENDING, Campaign.Status.SENT)


def _due_retries(*, campaign_id: int | None, now: dt.datetime):
    """Deferred rows whose next attempt time has passed, of campaigns still sending or sent
    (a paused or cancelled campaign holds its retries)."""
    rows = SentMessage.objects.filter(
        status=SentMessage.Status.DEFERRED, next_attempt_at__isnull=False, next_attempt_at__lte=now,
        campaign__status__in=RETRYABLE_CAMPAIGN_STATUSES,
    )
    return rows.filter(campaign_id=campaign_id) if campaign_id is not None else rows


def next_retry_at(*, campaign_id: int | None = None) -> dt.datetime | None:
    """When the earliest pending retry of deferred messages is due (one campaign or all)."""
    rows = SentMessage.objects.filter(
        status=SentMessage.Status.DEFERRED, next_attempt_at__isnull=False,
        campaign__status__in=RETRYABLE_CAMPAIGN_STATUSES,
    )
    if campaign_id is not None:
        rows = rows.filter(campaign_id=campaign_id)
    return rows.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()


def retry_deferred(*, campaign_id: int | None = None, batch_size: int | None = None) -> RetryReport:
    """Try again the deferred messages whose next attempt is due (one campaign, or all).

    Each row is claimed with the conditional UPDATE deferred (and due) -> sending before its
    SMTP transaction, exactly like a first attempt, so two sweeps never send it twice and a
    row left in "sending" by a crash is never sent again. Outcomes: accepted (sent),
    refused 5xx (recorded as a Bounce), deferred again (next delay of
    CAMPAIGN_DEFER_RETRY_DELAYS), or given up after the last attempt (recorded as a Bounce
    with the last reply: a soft failure). A contact that unsubscribed or was suppressed
    meanwhile is not retried (next_attempt_at cleared, no Bounce recorded).
    Raises SendInterrupted (connection lost: the row is due again) or SendFailed.
    """
    batch_size = batch_size or _batch_size()
    report = RetryReport(campaign_id=campaign_id or 0)
    seen: set[int] = set()
    while True:
        rows = [
            row for row in _due_retries(campaign_id=campaign_id, now=timezone.now())
            .order_by("next_attempt_at", "pk")[:batch_size]
            if row.pk not in seen
        ]
        if not rows:
            break
        seen.update(row.pk for row in rows)
        by_campaign: dict[int, list[SentMessage]] = {}
        for row in rows:
            by_campaign.setdefault(row.campaign_id, []).append(row)
        for cid, group in by_campaign.items():
            campaign = Campaign.objects.get(pk=cid)
            if problem := header_problem(campaign):
                _stop_with_error(campaign, problem)  # paused: its retries wait for the fix
                continue
            group = _drop_no_longer_eligible(campaign=campaign, rows=group, report=report)
            if group:
                report.batches += 1
                _send_batch(campaign=campaign, rows=group, report=report, retry=True)
    due = next_retry_at(campaign_id=campaign_id)
    report.next_due = due.isoformat() if due else ""
    if report.retried or report.dropped:
        logger.info("deferred retries: %s", report.as_dict())
    return report


def retry_deferred_now(*, campaign: Campaign) -> int:
    """An operator asks for the campaign's pending retries at once (admin action): their
    next attempt is moved to now and the retry task is queued after the commit. The
    number of attempts left is unchanged. Returns how many messages were made due."""
    with transaction.atomic():
        made_due = SentMessage.objects.filter(
            campaign_id=campaign.pk, status=SentMessage.Status.DEFERRED, next_attempt_at__gt=timezone.now()
        ).update(next_attempt_at=timezone.now())
        send_task_on_commit("campaigns.retry_deferred", campaign.pk)
    return made_due


def _drop_no_longer_eligible(*, campaign: Campaign, rows: list[SentMessage], report: RetryReport
                             ) -> list[SentMessage]:
    """Deferred rows whose contact left the list or was suppressed since are not retried."""
    ids = {row.contact_id for row in rows if row.contact_id}
    still = selectors.still_subscribed_ids(campaign=campaign, contact_ids=ids)
    suppressed = selectors.suppressed_among(row.email for row in rows)
    keep, drop = [], []
    for row in rows:
        ok = row.contact_id in still and row.email.strip().lower() not in suppressed
        (keep if ok else drop).append(row)
    if drop:
        report.dropped += SentMessage.objects.filter(
            pk__in=[r.pk for r in drop], status=SentMessage.Status.DEFERRED
        ).update(next_attempt_at=None)
    return keep


# ---------------------------------------------------------------------------------------
# Maintenance


def recount_campaign(*, campaign: Campaign) -> Campaign:
    """Rebuild the campaign's send counters from its SentMessage rows.

    Rows whose status the pipeline later moved on (bounced, soft_bounced, complained)
    were accepted at send time unless a send-time refusal Bounce exists for them.
    """
    from bounces.models import Bounce, RawMessage

    counts = selectors.progress_counts(campaign_id=campaign.pk)
    # Refused rows whose status the pipeline moved on, told apart by their SMTP Bounce.
    moved = (
        Bounce.objects.filter(campaign_id=campaign.pk, raw_message__source=RawMessage.Source.SMTP)
        .exclude(sent_message__status__in=[SentMessage.Status.REFUSED, SentMessage.Status.DEFERRED])
        .exclude(sent_message__isnull=True)
        .values_list("sent_message_id", "reply_code")
        .distinct()
    )
    moved_by_row: dict[int, str] = dict(moved)
    refused_moved = sum(1 for code in moved_by_row.values() if not code.startswith("4"))
    deferred_moved = len(moved_by_row) - refused_moved
    accepted_then_changed = sum(
        counts.get(s, 0)
        for s in (SentMessage.Status.BOUNCED, SentMessage.Status.SOFT_BOUNCED, SentMessage.Status.COMPLAINED)
    )
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(
            sent_count=counts.get(SentMessage.Status.SENT, 0) + accepted_then_changed - len(moved_by_row),
            refused_count=counts.get(SentMessage.Status.REFUSED, 0) + refused_moved,
            deferred_count=counts.get(SentMessage.Status.DEFERRED, 0) + deferred_moved,
            skipped_count=counts.get(SentMessage.Status.SKIPPED, 0),
        )
    campaign.refresh_from_db()
    return campaign


# ---------------------------------------------------------------------------------------
# Results aggregates

DEFAULT_STATS_MAX_AGE = 300  # seconds: bounce edits (kind reassigned...) show within this
DEFAULT_STATS_SYNC_LIMIT = 20_000  # bounce rows: up to this many, recompute inside the request


def refresh_campaign_stats(*, campaign: Campaign) -> CampaignStats:
    """Recompute and store the campaign's bounce aggregates (CampaignStats).

    Reads the fingerprint first, so a bounce arriving meanwhile makes the next view recompute.
    """
    started = time.perf_counter()
    fingerprint = selectors.bounce_fingerprint(campaign_id=campaign.pk)
    data = selectors.compute_bounce_aggregates(campaign_id=campaign.pk)
    data["fingerprint"] = fingerprint
    latest = max((f for f in fingerprint if f), default=None)
    stats, _ = CampaignStats.objects.update_or_create(
        campaign_id=campaign.pk,
        defaults={
            "computed_at": timezone.now(),
            "bounce_rows": sum(data["by_kind"].values()),
            "last_bounced_at": dt.datetime.fromisoformat(latest) if latest else None,
            "data": data,
            "duration_ms": int((time.perf_counter() - started) * 1000),
            "refresh_requested_at": None,
        },
    )
    return stats


def campaign_stats(*, campaign: Campaign) -> tuple[CampaignStats, bool]:
    """The campaign's stored aggregates, refreshed when they no longer match; (stats, stale).

    Current (same latest bounce time per kind, younger than CAMPAIGN_STATS_MAX_AGE):
    returned as they are. Otherwise small campaigns (at most CAMPAIGN_STATS_SYNC_LIMIT
    bounces when last computed) are recomputed now; large ones are recomputed by
    refresh_campaign_stats_task (at most one request a minute) and the previous figures are
    returned with stale=True. The very first computation is always done now.
    """
    max_age = dt.timedelta(seconds=getattr(settings, "CAMPAIGN_STATS_MAX_AGE", DEFAULT_STATS_MAX_AGE))
    sync_limit = getattr(settings, "CAMPAIGN_STATS_SYNC_LIMIT", DEFAULT_STATS_SYNC_LIMIT)
    now = timezone.now()
    fingerprint = selectors.bounce_fingerprint(campaign_id=campaign.pk)
    stats = CampaignStats.objects.filter(campaign_id=campaign.pk).first()
    if stats is not None and stats.data.get("fingerprint") == fingerprint \
            and now - stats.computed_at <= max_age:
        return stats, False
    if stats is None or stats.bounce_rows <= sync_limit:
        return refresh_campaign_stats(campaign=campaign), False
    asked = CampaignStats.objects.filter(campaign_id=campaign.pk).filter(
        _not_recently_requested(now)
    ).update(refresh_requested_at=now)
    if asked:
        send_task_on_commit("campaigns.refresh_campaign_stats", campaign.pk)
    return stats, True


def _not_recently_requested(now: dt.datetime):
    """Rows whose refresh was not asked for in the last minute (one task at a time)."""
    from django.db.models import Q

    return Q(refresh_requested_at__isnull=True) | Q(refresh_requested_at__lt=now - dt.timedelta(minutes=1))


__all__ = [
    "CampaignError",
    "SendFailed",
    "SendInterrupted",
    "RetryReport",
    "SendReport",
    "build_message",
    "defer_retry_delays",
    "next_retry_at",
    "retry_deferred",
    "retry_deferred_now",
    "campaign_stats",
    "refresh_campaign_stats",
    "message_id_for",
    "pause_campaign",
    "queue_campaign",
    "recount_campaign",
    "send_campaign",
    "verp_address",
]
