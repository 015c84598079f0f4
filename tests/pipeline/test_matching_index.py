"""Address lookups can use the case-insensitive unique index (checked on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bounces.parsing import Category, Kind, ParseResult, RecipientResult
from bounces.pipeline.matching import BatchMatcher
from contacts.models import Contact

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

INDEX = "contact_email_ci_unique"


def _uses_index(sql: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # take the index whenever it applies
        cursor.execute("EXPLAIN " + sql)
        return INDEX in "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("index use is checked on PostgreSQL (pytest --postgres)")


def test_matching_bounced_addresses_uses_the_email_index(on_postgres):
    Contact.objects.create(email="Known@Example.net")
    recipient = RecipientResult(
        recipient="known@example.net", action="failed", status="5.1.1", replycode="550", diagnostic="",
        remote_mta=None, reason="userunknown", hard=True, permanent=True, category=Category.HARD,
    )
    result = ParseResult(kind=Kind.FAILURE, recipients=(recipient,), message_id=None, token=None,
                         subject=None, from_address=None, mta="test")

    with CaptureQueriesContext(connection) as captured:
        BatchMatcher().prepare([result])

    lookups = [q["sql"] for q in captured if 'FROM "contacts_contact"' in q["sql"]]
    assert lookups and all(_uses_index(sql) for sql in lookups)


def test_looking_a_contact_up_by_email_uses_the_email_index(on_postgres):
    with CaptureQueriesContext(connection) as captured:
        list(Contact.objects.by_email("known@example.net"))

    assert _uses_index(captured[-1]["sql"])
