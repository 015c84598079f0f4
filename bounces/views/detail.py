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
from django.db.models import BinaryField
from django.db.models.functions import Length, Substr
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from bounces.models import Bounce

RAW_SHOWN = 256 * 1024  # bytes of raw source shown on the page (the download has all)
TEXT_SHOWN = 64 * 1024  # characters shown per readable part
# One hostile message can be 13 MB with 100,000 parts (issue 12, item 3): the page reads only the
# first PARTS_READ bytes from the database, lists at most PARTS_SHOWN parts and shows the text of
# at most TEXTS_SHOWN of them; the engine re-parses the message only up to ENGINE_REPARSE_MAX.
PARTS_READ = 1024 * 1024
PARTS_SHOWN = 200
TEXTS_SHOWN = 20
ENGINE_REPARSE_MAX = 2 * 1024 * 1024
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


def describe_parts(raw: bytes, *, limit: int = PARTS_SHOWN) -> list[PartInfo]:
    """The first ``limit`` leaf parts of a message (of its first PARTS_READ bytes): type, name,
    decoded size, and readable text where safe (for the first TEXTS_SHOWN readable parts)."""
    try:
        message = email.message_from_bytes(raw[:PARTS_READ], policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - any message must display, however broken
        return []
    parts: list[PartInfo] = []
    texts = 0
    for index, part in enumerate(_leaves(message), start=1):
        if index > limit:
            break
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
        if ctype in READABLE_TYPES and not is_attachment and texts < TEXTS_SHOWN:
            texts += 1
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
    if not raw or len(raw) > ENGINE_REPARSE_MAX:
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
                                      "matched_rule", "run")
        .defer("raw_message__raw")
        .annotate(raw_head=Substr("raw_message__raw", 1, max(PARTS_READ, RAW_SHOWN), output_field=BinaryField()),
                  raw_length=Length("raw_message__raw")),
        pk=pk,
    )
    raw_size = (bounce.raw_length or 0) if bounce.raw_message_id else 0
    head = bytes(bounce.raw_head or b"") if bounce.raw_message_id else b""
    parts = describe_parts(head, limit=PARTS_SHOWN + 1) if head else []
    if raw_size and raw_size <= ENGINE_REPARSE_MAX and len(head) < raw_size:
        head = bytes(bounce.raw_message.raw)  # small enough to read whole for the engine
    context = {
        "bounce": bounce,
        "raw_text": head[:RAW_SHOWN].decode("utf-8", "replace") if head else "",
        "raw_truncated": raw_size > RAW_SHOWN,
        "raw_size": raw_size,
        "parts": parts[:PARTS_SHOWN],
        # the note under the parts table: only the first ones are listed (download for the rest)
        "parts_capped": len(parts) > PARTS_SHOWN or raw_size > PARTS_READ,
        "engine": _engine_verdict(bounce, head if raw_size <= ENGINE_REPARSE_MAX else None),
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
