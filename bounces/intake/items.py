"""Stored rows as pipeline items: mail through the engine, structured notices (webhook events,
accounting records, send-time refusals) through the engine's classifier. Imports the pipeline,
the engine and models."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings

from bounces.models import Bounce
from bounces.pipeline.matching import Match
from bounces.pipeline.processing import Item, Processor
from campaigns.models import SentMessage

from .structured import StructuredNotice, is_structured, to_parse_result

log = logging.getLogger(__name__)


def notice_items(processor: Processor, rows: Iterable[tuple[int, bytes]]) -> list[Item]:
    """Pipeline items of stored rows: mail through the engine, structured notices through
    the engine's classifier; a send-time refusal knows its SentMessage (forced match)."""
    items: list[Item] = []
    refusals: dict[int, int] = {}
    for raw_id, raw in rows:
        raw = bytes(raw)
        if not is_structured(raw):
            items.append(processor.parse(raw_id, raw))
            continue
        try:
            notice = StructuredNotice.from_payload(raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("stored notice %s is unreadable: %s", raw_id, exc)
            items.append(processor.parse(raw_id, raw))  # recorded as unknown, kept for the operator
            continue
        result = to_parse_result(notice, tracking_header=settings.BOUNCE_TRACKING_HEADER)
        items.append(Item(raw_id=raw_id, raw=raw, result=result))
        sent_id = notice.original.get("sent_message_id") if isinstance(notice.original, dict) else None
        if notice.source == "refusal" and isinstance(sent_id, int):
            refusals[len(items) - 1] = sent_id
    if refusals:
        sent = {
            row["id"]: row for row in SentMessage.objects.filter(id__in=set(refusals.values())).values(
                "id", "contact_id", "campaign_id", "campaign__mailing_list_id", "sent_at", "email")
        }
        for index, sent_id in refusals.items():
            row = sent.get(sent_id)
            if row is not None:
                items[index].forced_match = Match(
                    method=Bounce.MatchMethod.TOKEN, sent_message_id=row["id"], contact_id=row["contact_id"],
                    campaign_id=row["campaign_id"], list_id=row["campaign__mailing_list_id"],
                    sent_at=row["sent_at"], email=(row["email"] or "").lower())
    return items


