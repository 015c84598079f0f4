"""Staff page of one bounce: parsed fields, verdict origin, and the raw message shown safely.
An interface: imports models, the engine and the pipeline's parse options.

The raw message is only ever shown as escaped text (the template autoescapes it) and
offered as a download with a non-renderable type; HTML parts are never rendered and
attachments are listed (name, type, size), never opened.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db.models import BinaryField
from django.db.models.functions import Length, Substr
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from bounces.models import Bounce

from .message import PartInfo, describe_message

__all__ = ["PartInfo", "bounce_detail", "bounce_raw", "describe_parts"]

RAW_SHOWN = 256 * 1024  # bytes of raw source shown on the page (the download has all)
# One hostile message can be 13 MB with 100,000 parts (issue 12, item 3): the page reads only the
# first PARTS_READ bytes from the database, describes them with bounces/views/message.py (at most
# its MAX_PARTS parts, bounded text) and the engine re-parses the message only up to
# ENGINE_REPARSE_MAX. The raw source is shown only on demand (?raw=1), escaped, RAW_SHOWN bytes.
PARTS_READ = 1024 * 1024
PARTS_SHOWN = 200
ENGINE_REPARSE_MAX = 2 * 1024 * 1024


def describe_parts(raw: bytes, *, limit: int = PARTS_SHOWN) -> list[PartInfo]:
    """The first leaf parts of a message (at most ``limit``, of its first PARTS_READ bytes):
    type, name, decoded size, and readable text where safe."""
    return describe_message(raw[:PARTS_READ]).parts[:limit]


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
    message = describe_message(head[:PARTS_READ]) if head else None
    parts = message.parts[:PARTS_SHOWN] if message else []
    if raw_size and raw_size <= ENGINE_REPARSE_MAX and len(head) < raw_size:
        head = bytes(bounce.raw_message.raw)  # small enough to read whole for the engine
    show_raw = request.GET.get("raw") == "1"
    context = {
        "bounce": bounce,
        "message": message,
        "raw_text": head[:RAW_SHOWN].decode("utf-8", "replace") if head and show_raw else "",
        "raw_truncated": raw_size > RAW_SHOWN,
        "raw_shown": RAW_SHOWN,
        "raw_size": raw_size,
        "parts": parts,
        # the note under the parts table: only the first ones are listed (download for the rest)
        "parts_capped": bool(message) and (message.parts_capped or raw_size > PARTS_READ),
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
