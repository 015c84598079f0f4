"""Issue 12, item 3: one 18 MB report naming 100,000 recipients (4,143 bounce rows sharing one
stored message) must not make the triage pages unusable. Measured by what does not depend on
the machine's load: queries, bytes read from the database, parses, response size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce, RawMessage
from bounces.rules import ruleset
from bounces.rules.models import BounceRule
from tests.reliability.hostile import huge_dsn

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ROWS = 4143  # what the engine made of the message in the review


@pytest.fixture(scope="module")
def huge_raw() -> bytes:
    return huge_dsn()


@pytest.fixture
def huge_bounces(huge_raw):
    raw = RawMessage.objects.create(dedupe_key="huge", sha256="0" * 64, raw=huge_raw, size=len(huge_raw),
                                    state=RawMessage.State.PROCESSED)
    now = timezone.now()
    Bounce.objects.bulk_create([
        Bounce(raw_message=raw, recipient=f"user{i}@example.net", kind=Bounce.Kind.UNKNOWN,
               state=Bounce.State.UNMATCHED, diagnostic="550 5.1.1 no such user", bounced_at=now)
        for i in range(ROWS)
    ], batch_size=1000)
    return raw


def _blob_reads(queries) -> list[str]:
    """Queries that select the whole raw column (not a SUBSTR of it)."""
    return [q["sql"] for q in queries if '"raw"' in q["sql"] and "SUBSTR" not in q["sql"].upper()
            and q["sql"].lstrip().upper().startswith("SELECT")]


def test_the_unexplained_queue_never_loads_the_shared_message(admin_client, huge_bounces):
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(reverse("bounces:pipeline_unexplained"))
    assert response.status_code == 200
    assert _blob_reads(ctx.captured_queries) == []
    assert len(ctx.captured_queries) <= 15
    assert len(response.content) < 2_000_000
    assert b"user4142@example.net" in response.content


def test_the_rule_coverage_page_parses_the_shared_message_once(admin_client, huge_bounces, monkeypatch):
    BounceRule.objects.create(name="no such user (body)", pattern="no such user", section="body",
                              match_type="contains", bounce_type="hard", position=1)
    BounceRule.objects.create(name="quota (whole)", pattern="over quota", section="whole",
                              match_type="contains", bounce_type="soft", position=2)
    parses = []
    real_load = ruleset.load_mail
    monkeypatch.setattr(ruleset, "load_mail", lambda raw: parses.append(len(raw)) or real_load(raw))
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(reverse("bounces:rule_coverage"))
    assert response.status_code == 200
    assert len(parses) == 1 and parses[0] <= ruleset.MAX_RAW_BYTES
    assert _blob_reads(ctx.captured_queries) == []
    assert len(ctx.captured_queries) <= 40
    coverage = response.context["coverage"]
    assert coverage.examined == ROWS and not coverage.stopped
    assert [row.catches for row in coverage.rows] == [ROWS, 0]


def test_the_bounce_detail_page_lists_a_bounded_number_of_parts(admin_client, huge_bounces, huge_raw):
    bounce = Bounce.objects.filter(raw_message=huge_bounces).first()
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(reverse("bounces:detail", args=[bounce.pk]))
    assert response.status_code == 200
    assert _blob_reads(ctx.captured_queries) == []
    html = response.content
    assert len(html) < 1_500_000
    assert html.count(b"<tr><td>") <= 200 + 60  # parts listed, other recipients (50), fields
    assert b'id="parts-capped"' in html
    assert response.context["raw_size"] == len(huge_raw)
    # the download still has all of it
    raw = admin_client.get(reverse("bounces:detail_raw", args=[bounce.pk]))
    assert len(raw.content) == len(huge_raw)
