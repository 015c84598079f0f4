"""Admin list pages of the bounces app: what they load."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bounces.models import RawMessage

pytestmark = pytest.mark.django_db


def test_the_raw_message_list_does_not_load_the_message_bytes(admin_client):
    for i in range(3):
        RawMessage.objects.create(dedupe_key=f"k{i}", sha256="0" * 64, raw=b"x" * 100_000, size=100_000)
    column = f'{connection.ops.quote_name(RawMessage._meta.db_table)}.{connection.ops.quote_name("raw")}'

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/bounces/rawmessage/")

    assert response.status_code == 200 and "k2" in response.content.decode()
    assert not [q["sql"] for q in queries if column in q["sql"]]


def test_the_raw_message_page_still_shows_the_message(admin_client):
    raw = RawMessage.objects.create(dedupe_key="k", sha256="0" * 64, raw=b"Subject: <b>hi</b>\r\n\r\nbody",
                                    size=10)

    page = admin_client.get(f"/admin/bounces/rawmessage/{raw.pk}/change/").content.decode()

    assert "Subject: &lt;b&gt;hi&lt;/b&gt;" in page


def test_bounces_are_read_only_in_the_admin(admin_client):
    from django.utils import timezone

    from bounces.models import Bounce

    bounce = Bounce.objects.create(recipient="r@example.net", kind="soft", counted=True, bounced_at=timezone.now())

    admin_client.post(f"/admin/bounces/bounce/{bounce.pk}/change/", {
        "recipient": "r@example.net", "kind": "hard", "state": "applied", "match_method": "none",
        "bounced_at_0": "2026-01-01", "bounced_at_1": "00:00:00", "actions_taken": "[]",
    })

    bounce.refresh_from_db()
    assert (bounce.kind, bounce.counted) == ("soft", True)  # counters follow services, not edits
    assert admin_client.get("/admin/bounces/bounce/add/").status_code == 403
    assert "r@example.net" in admin_client.get(f"/admin/bounces/bounce/{bounce.pk}/change/").content.decode()
