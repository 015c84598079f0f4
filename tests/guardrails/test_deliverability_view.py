"""The per-domain deliverability page and its CSV: many domains page and stream, sorting,
filters, incident and guardrail state, permissions."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce
from campaigns.models import Campaign, CampaignGuardrail, GuardrailCount

from .conftest import campaign_to, staff

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = "bounces:pipeline_deliverability"


def bounces_for(domains: int, *, per_domain=lambda i: 1, kind=lambda i: Bounce.Kind.HARD, campaign=None,
                at=None) -> None:
    now = at or timezone.now()
    rows = []
    for i in range(domains):
        for j in range(per_domain(i)):
            rows.append(Bounce(recipient=f"u{j}@d{i:04}.example", kind=kind(i), campaign=campaign,
                               bounced_at=now, state=Bounce.State.RECORDED, reason="userunknown",
                               status_code="5.1.1", diagnostic=f"550 5.1.1 <u{j}@d{i:04}.example> unknown"))
    Bounce.objects.bulk_create(rows, batch_size=1000)


@pytest.fixture
def viewer(client):
    client.force_login(staff("bounces.view_bounce"))
    return client


def test_many_domains_are_paged_and_sorted_by_any_column(viewer):
    bounces_for(130, per_domain=lambda i: 1 + i % 7)
    page = viewer.get(reverse(URL))
    assert page.status_code == 200
    rows = page.context["page"]
    assert rows.paginator.count == 130 and len(rows.object_list) == 50 and rows.paginator.num_pages == 3
    totals = [r["total"] for r in rows.object_list]
    assert totals == sorted(totals, reverse=True) and totals[0] == 7
    body = page.content.decode()
    assert "page 1 of 3 (130 rows)" in body and "page=2" in body

    last = viewer.get(reverse(URL), {"page": 3, "sort": "domain"}).context["page"]
    assert [r["domain"] for r in last.object_list][-1] == "d0129.example" and len(last.object_list) == 30
    by_name = viewer.get(reverse(URL), {"sort": "-domain"}).context["page"].object_list
    assert by_name[0]["domain"] == "d0129.example"
    assert viewer.get(reverse(URL), {"sort": "nonsense", "page": "x"}).status_code == 200


def test_the_csv_streams_every_domain_in_chunks(viewer, django_assert_max_num_queries):
    bounces_for(2500, kind=lambda i: Bounce.Kind.BLOCKED if i % 5 == 0 else Bounce.Kind.HARD)
    response = viewer.get(reverse("bounces:pipeline_deliverability_csv"), {"sort": "domain"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    with django_assert_max_num_queries(10):  # chunks of one query each, never a list of all rows
        text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["domain", "total", "bounced", "hard"]
    assert len(rows) == 2501 and rows[1][0] == "d0000.example"
    blocked = rows[0].index("blocked")
    assert rows[1][blocked] == "1" and rows[2][blocked] == "0"


def test_a_hostile_domain_is_escaped_on_the_page_and_defused_in_the_csv(viewer):
    Bounce.objects.create(recipient="x@=cmd|calc.<script>x</script>", kind=Bounce.Kind.HARD,
                          bounced_at=timezone.now(), state=Bounce.State.RECORDED,
                          diagnostic="<img src=x onerror=alert(1)>")
    body = viewer.get(reverse(URL)).content.decode()
    assert "<script>x</script>" not in body and "<img src=x" not in body
    text = b"".join(viewer.get(reverse("bounces:pipeline_deliverability_csv")).streaming_content).decode()
    assert "\n'=cmd" in text or "\"'=cmd" in text


def test_filters_by_dates_and_campaign_and_provider_groups(viewer):
    campaign = campaign_to(["a@example.org"], status=Campaign.Status.SENT)
    old = timezone.now() - dt.timedelta(days=40)
    bounces_for(3, campaign=campaign)
    bounces_for(2, at=old)
    Bounce.objects.create(recipient="x@gmail.com", kind=Bounce.Kind.BLOCKED, bounced_at=timezone.now(),
                          state=Bounce.State.RECORDED)
    Bounce.objects.create(recipient="y@googlemail.com", kind=Bounce.Kind.HARD, bounced_at=timezone.now(),
                          state=Bounce.State.RECORDED)
    assert viewer.get(reverse(URL)).context["page"].paginator.count == 5  # the old ones are outside 30 days
    start = (timezone.localdate() - dt.timedelta(days=41)).isoformat()
    assert viewer.get(reverse(URL), {"from": start}).context["page"].paginator.count == 5  # same domains d0000/1
    only = viewer.get(reverse(URL), {"campaign": campaign.pk}).context["page"].object_list
    assert [r["domain"] for r in only] == ["d0000.example", "d0001.example", "d0002.example"]
    groups = {r["domain"]: r for r in viewer.get(reverse(URL), {"by": "provider"}).context["page"].object_list}
    assert groups["google"]["total"] == 2 and groups["google"]["domains"] == 2
    assert groups["google"]["blocked"] == 1 and groups["other"]["total"] == 3
    day = viewer.get(reverse(URL), {"domain": "gmail.com"})
    assert [d["blocked"] for d in day.context["timeline"]] == [1]


def test_the_page_shows_the_guardrail_state_and_sent_rates_per_domain(viewer):
    campaign = campaign_to(["a@example.org"], status=Campaign.Status.PAUSED)
    campaign.sent_at = timezone.now()
    campaign.save(update_fields=["sent_at"])
    GuardrailCount.objects.create(campaign=campaign, scope=GuardrailCount.Scope.RECEIVING, key="d0000.example",
                                  sent=10)
    CampaignGuardrail.objects.create(campaign=campaign, paused_at=timezone.now(),
                                     pause_reason="Paused by the guardrail: bounce rate 10.00 % ...",
                                     pause_detail={"scope": "receiving", "key": "d0000.example"})
    bounces_for(1, campaign=campaign)
    page = viewer.get(reverse(URL))
    [row] = page.context["page"].object_list
    assert row["sent"] == 10 and row["bounce_percent"] == 10.0
    body = page.content.decode()
    assert 'id="paused-campaigns"' in body and "Paused by the guardrail: bounce rate 10.00 %" in body


def test_only_those_who_may_view_bounces_see_the_page_or_the_csv(client):
    client.force_login(staff("campaigns.view_campaign"))
    assert client.get(reverse(URL)).status_code == 403
    assert client.get(reverse("bounces:pipeline_deliverability_csv")).status_code == 403


def test_a_domain_with_an_open_incident_links_to_it(viewer):
    from bounces.incidents.models import Incident

    incident = Incident.objects.create(scope=Incident.Scope.DOMAIN, key="d0000.example", trigger="blocked",
                                       opened_at=timezone.now(), window_start=timezone.now())
    bounces_for(2)
    body = viewer.get(reverse(URL)).content.decode()
    link = reverse("bounces:incident_detail", args=[incident.pk])
    assert 'id="open-incidents"' in body and body.count(f'href="{link}"') == 2  # the list and the row
