"""Send-time refusals: an SMTP 5xx while sending becomes a stored notice and a Bounce with the
same actions as a bounce from the mailbox. Imports the pipeline, rules, engine and models."""

from __future__ import annotations

from email.utils import formatdate
from hashlib import sha256

from django.conf import settings as django_settings

from bounces.models import Bounce, RawMessage
from bounces.parsing import Kind, ParseResult, RecipientResult
from bounces.parsing.classify import classify
from bounces.pipeline import policies
from bounces.pipeline.matching import Match
from bounces.pipeline.processing import Item
from campaigns.models import SentMessage

from .stored import new_processor


def record_send_refusal(*, sent_message: SentMessage, reply_code: int, enhanced_status: str | None,
                        text: str, remote_mta: str = "") -> Bounce:
    """Record an SMTP refusal at send time as a Bounce and apply the same actions.

    Idempotent on "smtp:<token>:<reply_code>": calling it twice returns the first Bounce.
    """
    key = f"smtp:{sent_message.token}:{reply_code}"
    existing = Bounce.objects.filter(raw_message__mailbox__isnull=True, raw_message__dedupe_key=key).first()
    if existing is not None:
        return existing
    verdict = classify(status=enhanced_status, replycode=str(reply_code), diagnostic=text or "")
    record = (
        f"From: bouncemgr <{django_settings.DEFAULT_FROM_EMAIL}>\r\n"
        f"Subject: SMTP refusal at send time\r\nDate: {formatdate(usegmt=True)}\r\n"
        f"{django_settings.BOUNCE_TRACKING_HEADER}: {sent_message.token}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Recipient: {sent_message.email}\r\nRemote MTA: {remote_mta}\r\n"
        f"Reply: {reply_code} {enhanced_status or ''} {text}\r\n"
    ).encode("utf-8", "replace")
    raw, _ = RawMessage.objects.get_or_create(
        mailbox=None, dedupe_key=key,
        defaults={"source": RawMessage.Source.SMTP, "raw": record, "size": len(record),
                  "sha256": sha256(record).hexdigest()},
    )
    recipient = RecipientResult(
        recipient=sent_message.email.lower(), action="failed", status=verdict.status,
        replycode=str(reply_code), diagnostic=text or "", remote_mta=remote_mta or None,
        reason=verdict.reason, hard=verdict.hard, permanent=verdict.permanent, category=verdict.category,
    )
    result = ParseResult(kind=Kind.FAILURE, recipients=(recipient,), message_id=None,
                         token=sent_message.token, subject=None, from_address=None, mta="smtp")
    campaign_list = SentMessage.objects.filter(pk=sent_message.pk).values_list(
        "campaign__mailing_list_id", flat=True).first()
    match = Match(method=Bounce.MatchMethod.TOKEN, sent_message_id=sent_message.pk,
                  contact_id=sent_message.contact_id, campaign_id=sent_message.campaign_id,
                  list_id=campaign_list, sent_at=sent_message.sent_at)
    processor = new_processor(run=None, mailbox=None, policy=policies.global_policy(),
                              actor_label="send-time refusal")
    processor.process([Item(raw_id=raw.pk, raw=record, result=result, forced_match=match)])
    bounce = Bounce.objects.filter(raw_message=raw).order_by("id").first()
    if bounce is None:  # pragma: no cover - processed by a concurrent call
        raise RuntimeError(f"send refusal {key} was not recorded")
    return bounce
