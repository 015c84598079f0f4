"""Send-time refusals: an SMTP 5xx while sending becomes a structured notice through the one
intake (stored, then processed at once) and a Bounce with the same actions as a bounce from
the mailbox. Imports the intake's notices and models."""

from __future__ import annotations

from bounces.models import Bounce, RawMessage
from campaigns.models import SentMessage

from .notices import Notice, process_notices, receive_notices
from .structured import StructuredNotice


def record_send_refusal(*, sent_message: SentMessage, reply_code: int, enhanced_status: str | None,
                        text: str, remote_mta: str = "") -> Bounce:
    """Record an SMTP refusal at send time: a notice through the one intake, processed now.

    Idempotent on "smtp:<token>:<reply_code>": calling it twice returns the first Bounce.
    The notice knows its SentMessage, so the bounce is matched to it (method "token").
    """
    key = f"smtp:{sent_message.token}:{reply_code}"
    notice = StructuredNotice(
        source="refusal", event="failure", recipient=sent_message.email, status=enhanced_status or None,
        reply_code=str(reply_code), diagnostic=text or "", remote_mta=remote_mta or None,
        token=sent_message.token, original={"sent_message_id": sent_message.pk},
    )
    stored = receive_notices(notices=[Notice.structured(source=RawMessage.Source.SMTP, key=key, notice=notice)],
                             process="now", actor_label="send-time refusal")
    raw_id = stored.ids[key]
    bounce = Bounce.objects.filter(raw_message_id=raw_id).order_by("id").first()
    if bounce is None:  # stored earlier but not processed yet (e.g. a crash): process it now
        process_notices(ids=[raw_id], actor_label="send-time refusal")
        bounce = Bounce.objects.filter(raw_message_id=raw_id).order_by("id").first()
    if bounce is None:  # pragma: no cover - claimed by a concurrent processor still running
        raise RuntimeError(f"send refusal {key} was not recorded")
    return bounce
