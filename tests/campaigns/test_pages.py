"""Staff pages: campaign results (each count), contact page, bounce detail, CSV exports, import."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce, RawMessage
from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, ContactEvent, MailingList, Subscription, Suppression

from .conftest import make_campaign, make_list, subscribe

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def sent_campaign(n: int = 10, **counters) -> tuple[Campaign, list[SentMessage]]:
    mailing_list = make_list()
    contacts = subscribe(mailing_list, *[f"r{i}@d{i % 3}.example" for i in range(n)])
    fields = {"sent_count": n, **counters}
    campaign = make_campaign(mailing_list, status=Campaign.Status.SENT, sent_at=T0,
                             finished_at=T0 + dt.timedelta(minutes=5), **fields)
    rows = [
        SentMessage.objects.create(campaign=campaign, contact=c, email=c.email, message_id=f"{c.pk}@x",
                                   status=SentMessage.Status.SENT, sent_at=T0)
        for c in contacts
    ]
    return campaign, rows


def bounce(row: SentMessage, kind: str, *, hours: float = 1, reason: str = "", state: str = "applied",
           recipient: str | None = None, **kw) -> Bounce:
    return Bounce.objects.create(
        sent_message=row, campaign_id=row.campaign_id, contact_id=row.contact_id,
        recipient=recipient or row.email, kind=kind, reason=reason or kind, state=state,
        bounced_at=T0 + dt.timedelta(hours=hours), **kw,
    )


def test_the_results_page_shows_each_count(admin_client):
    campaign, rows = sent_campaign(10, refused_count=1, deferred_count=1, skipped_count=2)
    bounce(rows[0], "hard", reason="userunknown")
    bounce(rows[1], "hard", reason="userunknown")
    bounce(rows[2], "soft", reason="mailboxfull")
    bounce(rows[2], "soft", reason="mailboxfull", hours=5)  # same recipient again: one recipient
    bounce(rows[3], "blocked", reason="blocked")
    bounce(rows[4], "complaint", reason="feedback")
    bounce(rows[5], "autoreply", reason="vacation")
    bounce(rows[6], "unknown", reason="undefined")
    bounce(rows[7], "delay", reason="expired")
    bounce(rows[8], "hard", state="ignored")  # judged not a bounce: not counted

    response = admin_client.get(reverse("campaigns:results", args=[campaign.pk]))

    assert response.status_code == 200
    r = response.context["results"]
    assert r.attempted == 12  # 10 accepted + 1 refused + 1 deferred
    assert (r.hard, r.soft, r.blocked, r.complaints, r.autoreplies, r.unknown, r.delays) == (2, 1, 1, 1, 1, 1, 1)
    assert r.by_kind["soft"] == 2  # two bounces, one recipient
    assert r.bounced_recipients == 4  # hard x2, soft, blocked
    assert r.delivered == 8
    assert r.bounce_rate == pytest.approx(4 / 12)
    assert r.bounce_rate_percent == "33.3%"
    assert r.skipped == 2
    html = response.content.decode()
    assert 'data-count="hard">2<' in html and 'data-count="delivered">8<' in html
    assert "<svg" in html


def test_an_address_that_bounced_several_times_without_a_token_counts_as_one_recipient(admin_client):
    campaign, rows = sent_campaign(4)
    for hours in (1, 2, 3):  # matched by address only: no sent message linked
        Bounce.objects.create(campaign=campaign, contact_id=rows[0].contact_id, recipient=rows[0].email.upper(),
                              kind="hard", reason="userunknown", bounced_at=T0 + dt.timedelta(hours=hours))

    r = admin_client.get(reverse("campaigns:results", args=[campaign.pk])).context["results"]

    assert (r.hard, r.by_kind["hard"], r.bounced_recipients, r.delivered) == (1, 3, 1, 3)


def test_messages_awaiting_a_retry_are_neither_delivered_nor_bounced(admin_client):
    campaign, rows = sent_campaign(4, deferred_count=1)
    SentMessage.objects.filter(pk=rows[0].pk).update(
        status=SentMessage.Status.DEFERRED, next_attempt_at=T0 + dt.timedelta(hours=1)
    )
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=3)

    response = admin_client.get(reverse("campaigns:results", args=[campaign.pk]))

    r = response.context["results"]
    assert (r.attempted, r.awaiting_retry, r.delivered, r.bounced_recipients) == (4, 1, 3, 0)
    assert "1 awaiting a retry" in response.content.decode()


def test_breakdowns_by_reason_and_domain_are_aggregated_in_the_database(admin_client):
    campaign, rows = sent_campaign(6)
    bounce(rows[0], "hard", reason="userunknown")  # d0
    bounce(rows[3], "hard", reason="userunknown", recipient="R3@D0.Example")  # d0, other case
    bounce(rows[1], "soft", reason="mailboxfull")  # d1

    r = admin_client.get(reverse("campaigns:results", args=[campaign.pk])).context["results"]

    assert r.by_reason[0] == {"kind": "hard", "reason": "userunknown", "n": 2}
    domains = {row["domain"]: row for row in r.by_domain}
    assert domains["d0.example"]["n"] == 2 and domains["d0.example"]["hard"] == 2
    assert domains["d1.example"]["soft"] == 1


def test_the_chart_has_one_bar_per_hour_since_sending(admin_client):
    campaign, rows = sent_campaign(3)
    Campaign.objects.filter(pk=campaign.pk).update(sent_at=timezone.now() - dt.timedelta(hours=5))
    campaign.refresh_from_db()
    Bounce.objects.create(sent_message=rows[0], campaign=campaign, recipient=rows[0].email, kind="hard",
                          bounced_at=timezone.now() - dt.timedelta(hours=4))
    Bounce.objects.create(sent_message=rows[1], campaign=campaign, recipient=rows[1].email, kind="soft",
                          bounced_at=timezone.now() - dt.timedelta(hours=4))

    response = admin_client.get(reverse("campaigns:results", args=[campaign.pk]))

    chart = response.context["chart"]
    html = response.content.decode()
    svg = html[html.index("<svg"):html.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg)
    coloured = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill") != "transparent"]
    assert len(coloured) == 2  # one segment per kind in the bar of that hour
    assert chart.unit == "hour"
    assert 5 <= len(chart.bars) <= 7
    assert chart.total == 2
    assert sum(len(bar.segments) for bar in chart.bars) == 2


def test_bounced_recipients_are_listed_newest_first_filterable_and_paginated(admin_client):
    campaign, rows = sent_campaign(60)
    for i, row in enumerate(rows):
        bounce(row, "hard" if i % 2 else "soft", hours=i)
    url = reverse("campaigns:results", args=[campaign.pk])

    first = admin_client.get(url).context["page"]
    assert first.paginator.count == 60 and first.paginator.num_pages == 2
    assert first.object_list[0].recipient == rows[59].email
    hard = admin_client.get(url, {"kind": "hard"}).context["page"]
    assert hard.paginator.count == 30
    assert {b.kind for b in hard.object_list} == {"hard"}
    second = admin_client.get(url, {"page": 2}).context["page"]
    assert len(second.object_list) == 10
    page = admin_client.get(url).content.decode()
    assert reverse("bounces:detail", args=[first.object_list[0].pk]) in page
    assert reverse("contacts:detail", args=[rows[59].contact_id]) in page


def test_results_pages_are_for_staff_only(client, django_user_model):
    campaign, _ = sent_campaign(1)
    url = reverse("campaigns:results", args=[campaign.pk])
    assert client.get(url).status_code == 302
    user = django_user_model.objects.create_user("user", password="pw")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302 and "login" in response["Location"]
    for name, args in (("campaigns:bounces_csv", [campaign.pk]), ("contacts:suppressions_csv", []),
                       ("contacts:import", []), ("contacts:detail", [campaign.sent_messages.first().contact_id])):
        assert client.get(reverse(name, args=args)).status_code == 302


def read_csv(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_bounced_recipients_export_streams_every_bounce_as_csv(admin_client):
    campaign, rows = sent_campaign(3)
    bounce(rows[0], "hard", diagnostic="=HYPERLINK(\"http://evil\")")
    bounce(rows[1], "soft")

    response = admin_client.get(reverse("campaigns:bounces_csv", args=[campaign.pk]))

    assert response["Content-Type"].startswith("text/csv")
    table = read_csv(response)
    assert table[0][:3] == ["bounced_at", "recipient", "kind"]
    assert sorted(r[1] for r in table[1:]) == [rows[0].email, rows[1].email]
    hard = next(r for r in table[1:] if r[2] == "hard")
    assert hard[6].startswith("'=")  # a formula is neutralised for spreadsheets
    assert hard[11] == rows[0].token
    only_soft = read_csv(admin_client.get(reverse("campaigns:bounces_csv", args=[campaign.pk]), {"kind": "soft"}))
    assert [r[2] for r in only_soft[1:]] == ["soft"]


def test_the_suppression_list_export_streams_every_entry(admin_client):
    Suppression.objects.create(kind="address", value="a@example.com", reason="hard_bounce", source="bounce 1")
    Suppression.objects.create(kind="domain", value="example.org", reason="manual")

    table = read_csv(admin_client.get(reverse("contacts:suppressions_csv")))

    assert table[0] == ["kind", "value", "reason", "source", "note", "created_at"]
    assert [r[:3] for r in table[1:]] == [["address", "a@example.com", "hard_bounce"],
                                          ["domain", "example.org", "manual"]]


def test_the_contact_page_shows_bounce_history_with_the_address_at_the_time(admin_client):
    campaign, rows = sent_campaign(1)
    contact = Contact.objects.get(pk=rows[0].contact_id)
    bounce(rows[0], "hard", recipient="old.address@d0.example")
    Contact.objects.filter(pk=contact.pk).update(email="new@d0.example", hard_bounce_count=1, has_bounced=True)

    response = admin_client.get(reverse("contacts:detail", args=[contact.pk]))

    html = response.content.decode()
    assert "old.address@d0.example" in html and "new@d0.example" in html
    assert "has bounced" in html
    assert reverse("campaigns:results", args=[campaign.pk]) in html
    assert 'action="' + reverse("contacts:reset_bounce", args=[contact.pk]) in html


def test_resetting_the_bounce_state_is_a_post_with_csrf_and_is_logged(admin_user):
    contact = Contact.objects.create(email="a@example.com", has_bounced=True, consecutive_bounces=3,
                                     status=Contact.Status.BLACKLISTED)
    url = reverse("contacts:reset_bounce", args=[contact.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    page = client.get(reverse("contacts:detail", args=[contact.pk]))
    token = page.cookies["csrftoken"].value
    response = client.post(url, {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    contact.refresh_from_db()
    assert not contact.has_bounced and contact.consecutive_bounces == 0
    assert contact.status == Contact.Status.ACTIVE
    event = ContactEvent.objects.get(contact=contact, kind=ContactEvent.Kind.BOUNCE_RESET)
    assert event.actor == admin_user


HOSTILE = b"""From: MAILER-DAEMON@mx.example
To: bounces+abc@return.example.net
Subject: Undelivered Mail <script>alert(1)</script>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

This is the mail system. <b>bold</b> <script>alert(2)</script>
--b1
Content-Type: text/html; charset=utf-8

<html><body onload="alert(3)"><img src="http://tracker.example/x.gif"></body></html>
--b1
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcTl8uXr
--b1--
"""


def test_the_bounce_detail_shows_the_raw_message_escaped_and_lists_attachments(admin_client):
    campaign, rows = sent_campaign(1)
    raw = RawMessage.objects.create(source="mailbox", dedupe_key="1:1", sha256="0" * 64, raw=HOSTILE,
                                    size=len(HOSTILE))
    b = bounce(rows[0], "hard", raw_message=raw, status_code="5.1.1", reply_code="550",
               diagnostic="550 5.1.1 <x> <i>user</i> unknown")

    response = admin_client.get(reverse("bounces:detail", args=[b.pk]), {"raw": "1"})  # raw on demand

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onload=" not in html.replace("onload=&quot;", "")  # only escaped
    assert '<img src="http://tracker.example' not in html
    assert "&lt;i&gt;user&lt;/i&gt;" in html
    parts = response.context["parts"]
    pdf = next(p for p in parts if p.content_type == "application/pdf")
    assert pdf.is_attachment and pdf.filename == "invoice.pdf" and pdf.size == 15 and pdf.text == ""
    html_part = next(p for p in parts if p.content_type == "text/html")
    assert html_part.text == ""  # never rendered, not even as text
    assert "invoice.pdf" in html and "attachment, not opened" in html
    assert "the engine&#x27;s verdict applied" in html or "the engine's verdict applied" in html


def test_the_bounce_detail_names_the_rule_that_applied(admin_client):
    from bounces.models import BounceRule

    campaign, rows = sent_campaign(1)
    rule = BounceRule.objects.create(name="Over quota is soft", pattern="over quota")
    b = bounce(rows[0], "soft", matched_rule=rule)

    html = admin_client.get(reverse("bounces:detail", args=[b.pk])).content.decode()

    assert "Rule" in html and "Over quota is soft" in html
    assert reverse("bounces:rule_edit", args=[rule.pk]) in html


def test_the_raw_download_is_never_rendered_by_a_browser(admin_client):
    campaign, rows = sent_campaign(1)
    raw = RawMessage.objects.create(source="mailbox", dedupe_key="1:2", sha256="1" * 64, raw=HOSTILE,
                                    size=len(HOSTILE))
    b = bounce(rows[0], "hard", raw_message=raw)

    response = admin_client.get(reverse("bounces:detail_raw", args=[b.pk]))

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == HOSTILE


def test_the_import_page_imports_an_upload_and_reports_rejected_rows(admin_client):
    mailing_list = MailingList.objects.create(name="news")
    upload = io.BytesIO(b"email,name\nann@example.com,Ann\nnope,\n")
    upload.name = "contacts.csv"

    response = admin_client.post(reverse("contacts:import"), {"file": upload, "mailing_list": mailing_list.pk,
                                                              "update_names": "on"}, follow=True)

    assert response.status_code == 200
    job = response.context["job"]
    assert job.counts["created"] == 1 and job.rejected == 1
    assert "rejected: invalid address" in response.content.decode()
    assert Subscription.objects.filter(mailing_list=mailing_list, contact__email="ann@example.com").exists()


def test_the_campaign_admin_links_to_the_results_page(admin_client):
    campaign, _ = sent_campaign(1)
    html = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert reverse("campaigns:results", args=[campaign.pk]) in html
    html = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert reverse("campaigns:results", args=[campaign.pk]) in html


def test_the_admin_send_action_queues_a_draft(admin_client, django_capture_on_commit_callbacks):
    campaign = make_campaign(make_list(), status=Campaign.Status.DRAFT)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(reverse("admin:campaigns_campaign_changelist"),
                          {"action": "send_campaigns", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED and len(callbacks) == 1


def test_the_admin_lists_link_to_import_and_suppression_export(admin_client):
    assert reverse("contacts:import") in admin_client.get(
        reverse("admin:contacts_mailinglist_changelist")).content.decode()
    assert reverse("contacts:suppressions_csv") in admin_client.get(
        reverse("admin:contacts_suppression_changelist")).content.decode()


def test_recounting_rebuilds_the_send_counters(db):
    from campaigns.services import recount_campaign

    campaign, rows = sent_campaign(4)
    SentMessage.objects.filter(pk=rows[0].pk).update(status=SentMessage.Status.REFUSED)
    SentMessage.objects.filter(pk=rows[1].pk).update(status=SentMessage.Status.BOUNCED)
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=99)

    campaign = recount_campaign(campaign=campaign)

    assert (campaign.sent_count, campaign.refused_count) == (3, 1)



def test_a_new_bounce_shows_at_once_on_a_small_campaign(admin_client):
    campaign, rows = sent_campaign(3)
    url = reverse("campaigns:results", args=[campaign.pk])
    assert admin_client.get(url).context["results"].hard == 0

    bounce(rows[0], "hard")

    results = admin_client.get(url).context["results"]
    assert results.hard == 1 and not results.stale


def test_a_large_campaign_shows_the_stored_figures_while_a_task_recomputes_them(
        admin_client, settings, django_capture_on_commit_callbacks):
    from campaigns.models import CampaignStats
    from campaigns.tasks import refresh_campaign_stats_task

    settings.CAMPAIGN_STATS_SYNC_LIMIT = 0
    campaign, rows = sent_campaign(3)
    bounce(rows[0], "hard")
    url = reverse("campaigns:results", args=[campaign.pk])
    assert admin_client.get(url).context["results"].hard == 1  # first time: computed at once
    bounce(rows[1], "hard")
    bounce(rows[2], "soft")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.get(url)
    results = response.context["results"]
    assert results.stale and results.hard == 1
    assert "being counted" in response.content.decode()
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as again:
        admin_client.get(url)
    assert again == []  # one refresh request a minute, not one per view

    refresh_campaign_stats_task.apply(args=[campaign.pk])

    results = admin_client.get(url).context["results"]
    assert not results.stale and (results.hard, results.soft) == (2, 1)
    assert CampaignStats.objects.get(campaign=campaign).refresh_requested_at is None


def test_an_edited_bounce_kind_shows_at_once(admin_client):
    campaign, rows = sent_campaign(2)
    b = bounce(rows[0], "unknown")
    url = reverse("campaigns:results", args=[campaign.pk])
    assert admin_client.get(url).context["results"].unknown == 1

    Bounce.objects.filter(pk=b.pk).update(kind="hard")

    results = admin_client.get(url).context["results"]
    assert (results.hard, results.unknown) == (1, 0)


def test_a_bounce_dated_before_the_newest_of_its_kind_shows_once_the_figures_are_too_old(
        admin_client, settings):
    campaign, rows = sent_campaign(2)
    bounce(rows[0], "hard", hours=5)
    url = reverse("campaigns:results", args=[campaign.pk])
    assert admin_client.get(url).context["results"].hard == 1
    bounce(rows[1], "hard", hours=1)  # the fingerprint (newest per kind) does not move

    assert admin_client.get(url).context["results"].hard == 1
    settings.CAMPAIGN_STATS_MAX_AGE = 0
    assert admin_client.get(url).context["results"].hard == 2


@pytest.mark.parametrize("merge_max_offset", [0, 500])
@pytest.mark.parametrize("kind", [None, "hard"])
def test_pages_of_bounces_match_one_sorted_query(kind, merge_max_offset, monkeypatch):
    from campaigns import selectors
    from campaigns.selectors import bounced_page, bounced_recipients

    monkeypatch.setattr(selectors, "MERGE_MAX_OFFSET", merge_max_offset)

    campaign, rows = sent_campaign(40)
    kinds = ["hard", "soft", "blocked", "unknown"]
    for i, row in enumerate(rows):
        # equal times across kinds on purpose: ties are broken by id
        bounce(row, kinds[i % 4], hours=(i * 7) % 13)
    expected = [b.pk for b in bounced_recipients(campaign_id=campaign.pk, kind=kind)]

    for offset, limit in ((0, 7), (7, 7), (35, 10), (0, 100)):
        got = [b.pk for b in bounced_page(campaign_id=campaign.pk, kind=kind, offset=offset, limit=limit)]
        assert got == expected[offset:offset + limit]
