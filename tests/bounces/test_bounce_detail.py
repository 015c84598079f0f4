"""What the bounce detail page reads from a stored message: bounded whatever the message."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bounces.views.message import MAX_PARTS, describe_message
from tests.pipeline.conftest import dsn


def test_a_dsn_gives_one_row_per_recipient_the_server_text_and_the_returned_headers():
    view = describe_message(dsn("gone@example.net"))
    assert [r["Final_Recipient"] for r in view.recipients] == ["rfc822; gone@example.net"]
    assert view.recipients[0]["Status"] == "5.1.1"
    assert view.recipients[0]["Action"] == "failed"
    assert ("Reporting-MTA", "dns; mx.example.net") in view.reporting
    assert "could not\r\nbe delivered" in view.human_readable
    assert ("To", "gone@example.net") in view.returned_headers
    assert [p.content_type for p in view.parts] == ["text/plain", "message/delivery-status", "text/rfc822-headers"]


def test_a_13_mb_message_with_100000_parts_lists_a_bounded_number_of_parts():
    body = "".join("--B1\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(100_000))
    raw = ("From: a@b\r\nContent-Type: multipart/mixed; boundary=B1\r\n\r\n" + body + "--B1--\r\n").encode()
    raw += b"x" * (13 * 1024 * 1024 - len(raw))
    view = describe_message(raw)
    assert len(view.parts) == MAX_PARTS
    assert view.parts_capped
    assert view.size == len(raw) and view.parsed_bytes < len(raw)


def test_a_single_13_mb_text_part_shows_a_bounded_excerpt():
    view = describe_message(b"Subject: x\r\n\r\n" + b"a" * 13 * 1024 * 1024)
    assert len(view.parts) == 1
    assert len(view.human_readable) <= 64 * 1024 and view.human_truncated


def test_a_message_that_is_not_mime_at_all_still_describes():
    raw = b"\x00\xff garbage without headers"
    view = describe_message(raw)
    assert view.recipients == [] and view.size == len(raw)


# --- the page ---------------------------------------------------------------------------

def _stored_bounce(raw: bytes):
    from bounces.models import Bounce
    from tests.factories import BounceFactory

    return BounceFactory(raw_message__raw=raw, raw_message__size=len(raw), recipient="gone@example.net",
                         state=Bounce.State.UNMATCHED)


@pytest.mark.django_db
def test_the_detail_page_shows_the_delivery_status_table_the_server_text_and_the_returned_headers(admin_client):
    bounce = _stored_bounce(dsn("gone@example.net"))
    response = admin_client.get(reverse("bounces:detail", args=[bounce.pk]))
    body = response.content.decode()
    table = body[body.index('id="delivery-status"'):]
    assert "rfc822; gone@example.net" in table and "5.1.1" in table and "failed" in table
    assert 'id="human-readable"' in body and "could not" in body
    assert 'id="returned-headers"' in body
    assert 'id="raw"' not in body and 'id="show-raw"' in body


@pytest.mark.django_db
def test_the_raw_message_is_shown_escaped_only_on_demand(admin_client):
    bounce = _stored_bounce(b"Subject: <script>alert(1)</script>\r\n\r\n<img src=x onerror=alert(2)>\r\n")
    url = reverse("bounces:detail", args=[bounce.pk])
    assert 'id="raw"' not in admin_client.get(url).content.decode()
    body = admin_client.get(url, {"raw": "1"}).content.decode()
    assert 'id="raw"' in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body and "<img src=x" not in body
    assert "<script>alert(1)" not in body


@pytest.mark.django_db
def test_a_13_mb_bounce_with_100000_parts_opens_with_a_bounded_page(admin_client):
    body = "".join("--B1\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(100_000))
    raw = ("From: a@b\r\nContent-Type: multipart/mixed; boundary=B1\r\n\r\n" + body + "--B1--\r\n").encode()
    raw += b"x" * (13 * 1024 * 1024 - len(raw))
    bounce = _stored_bounce(raw)
    response = admin_client.get(reverse("bounces:detail", args=[bounce.pk]), {"raw": "1"})
    assert response.status_code == 200
    assert len(response.context["parts"]) == MAX_PARTS
    assert 'id="parts-capped"' in response.content.decode()
    assert len(response.content) < 3 * 1024 * 1024
