"""The fast write paths (executemany, COPY on PostgreSQL) write what the ORM would."""

from __future__ import annotations

import pytest

from bounces.intake.stored import process_stored_messages
from bounces.models import Bounce, RawMessage
from contacts.models import ContactEvent
from contacts.services import bulk_insert

from .conftest import dsn, send

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_large_batches_write_bounces_and_events_with_json_intact(campaign):
    sent = [send(campaign, f"bulk{i}@example.net") for i in range(120)]
    for s in sent:
        raw = dsn(s.email, token=s.token)
        RawMessage.objects.create(dedupe_key=f"bulk:{s.pk}", sha256="0" * 64, raw=raw, size=len(raw))

    run = process_stored_messages(batch_size=60)

    assert run.hard == 120
    bounce = Bounce.objects.get(recipient="bulk7@example.net")
    assert bounce.actions_taken == ["mark_hard", "suppress", "unsubscribe_all"]
    assert bounce.bounced_at is not None and bounce.created_at is not None
    event = ContactEvent.objects.get(contact_id=sent[7].contact_id)
    assert event.detail["actions"] == ["mark_hard", "suppress", "unsubscribe_all"]


def test_a_conflicting_row_in_a_large_insert_is_skipped_and_the_rest_written():
    RawMessage.objects.create(dedupe_key="dup:5", source="upload", sha256="0" * 64, raw=b"old", size=3)
    rows = [RawMessage(dedupe_key=f"dup:{i}", source="upload", sha256="1" * 64, raw=b"x" * i, size=i)
            for i in range(80)]

    bulk_insert(RawMessage, rows, ignore_conflicts=True)

    assert RawMessage.objects.count() == 80
    assert bytes(RawMessage.objects.get(dedupe_key="dup:5").raw) == b"old"
    assert bytes(RawMessage.objects.get(dedupe_key="dup:79").raw) == b"x" * 79
