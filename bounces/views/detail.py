"""Staff page of one bounce: parsed fields, verdict origin, and the raw message shown safely.
An interface: imports models, the engine and the pipeline's parse options.

The raw message is only ever shown as escaped text (the template autoescapes it) and
offered as a download with a non-renderable type; HTML parts are never rendered and
attachments are listed (name, type, size), never opened.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from bounces.models import Bounce

RAW_SHOWN = 256 * 1024  # bytes of raw source shown on the page (the download has all)
TEXT_SHOWN = 64 * 1024  # characters shown per readable part
READABLE_TYPES = {
    "text/plain", "message/delivery-status", "message/feedback-report", "text/rfc822-headers",
    "message/global-delivery-status", "message/global-headers",
}


@dataclass(frozen=True)
class PartInfo:
    """One leaf MIME part, described without opening it."""

    index: int
    content_type: str
    filename: str
    size: int
    disposition: str
    is_attachment: bool
    text: str  # decoded text for readable types (escaped by the template), else ""
    truncated: bool


def describe_parts(raw: bytes) -> list[PartInfo]:
    """The leaf parts of a message: type, name, decoded size, and readable text where safe."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - any message must display, however broken
        return []
    parts: list[PartInfo] = []
    for index, part in enumerate(_leaves(message), start=1):
        ctype = part.get_content_type()
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001
            payload = b""
        filename = part.get_filename() or ""
        disposition = (part.get_content_disposition() or "")
        is_attachment = disposition == "attachment" or bool(filename) or not (
            ctype.startswith("text/") or ctype.startswith("message/")
        )
        text, truncated = "", False
        if ctype in READABLE_TYPES and not is_attachment:
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
            truncated = len(text) > TEXT_SHOWN
            text = text[:TEXT_SHOWN]
        parts.append(PartInfo(index, ctype, filename, len(payload), disposition, is_attachment, text, truncated))
    return parts


def _leaves(message: Message):
    for part in message.walk():
        if part.is_multipart():
            continue
        yield part


def _engine_verdict(bounce: Bounce, raw: bytes | None):
    """What the engine alone says about this recipient (re-parsed now), for comparison."""
    if not raw:
        return None
    from bounces.parsing import parse_bounce
    from bounces.pipeline.processing import parse_options

    result = parse_bounce(raw, parse_options())
    wanted = (bounce.recipient or "").lower()
    for recipient in result.recipients:
        if (recipient.recipient or "").lower() == wanted:
            return {"result": result, "recipient": recipient}
    return {"result": result, "recipient": result.recipients[0] if result.recipients else None}


@staff_member_required
@permission_required("bounces.view_bounce", raise_exception=True)
def bounce_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Parsed fields, which rule or engine verdict applied, the raw message and its parts."""
    bounce = get_object_or_404(
        Bounce.objects.select_related("raw_message", "mailbox", "contact", "campaign", "sent_message",
                                      "matched_rule", "run"),
        pk=pk,
    )
    raw_bytes = bytes(bounce.raw_message.raw) if bounce.raw_message_id else None
    context = {
        "bounce": bounce,
        "raw_text": raw_bytes[:RAW_SHOWN].decode("utf-8", "replace") if raw_bytes else "",
        "raw_truncated": bool(raw_bytes) and len(raw_bytes) > RAW_SHOWN,
        "raw_size": len(raw_bytes) if raw_bytes else 0,
        "parts": describe_parts(raw_bytes) if raw_bytes else [],
        "engine": _engine_verdict(bounce, raw_bytes),
        "other_recipients": (
            Bounce.objects.filter(raw_message_id=bounce.raw_message_id).exclude(pk=bounce.pk)
            .only("pk", "recipient", "kind")[:50] if bounce.raw_message_id else []
        ),
    }
    return render(request, "bounces/detail/bounce.html", context)


@staff_member_required
@permission_required("bounces.view_bounce", raise_exception=True)
def bounce_raw(request: HttpRequest, pk: int) -> HttpResponse:
    """The raw message as a download that no browser renders (octet-stream, attachment, nosniff)."""
    bounce = get_object_or_404(Bounce.objects.select_related("raw_message"), pk=pk)
    if not bounce.raw_message_id:
        return HttpResponse("This bounce has no stored message.", status=404, content_type="text/plain")
    response = HttpResponse(bytes(bounce.raw_message.raw), content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="bounce-{bounce.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
