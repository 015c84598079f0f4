"""The guard's thresholds and scopes through the real pipeline (maildir): the defaults of
docs/incidents.md are the ones these tests justify."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bounces.incidents.guard import sweep_counts
from bounces.incidents.providers import provider_group
from bounces.incidents.selectors import incidents_for_addresses
from bounces.models import Bounce, Incident, IncidentCount

from .helpers import IP_LISTED, Maildir, make_campaign, notice, sent_to, spread

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # on SQLite and on PostgreSQL (scripts/test.sh)


def _refusals(maildir, campaign, addresses, *, minutes, end=None, diagnostic=IP_LISTED, status="5.7.1"):
    for address, at in zip(addresses, spread(len(addresses), minutes=minutes, end=end), strict=True):
        maildir.drop(notice(sent_to(campaign, address, when=at - timedelta(minutes=5)), diagnostic=diagnostic,
                            status=status, at=at))
    return maildir.run()


def test_the_blocked_threshold_is_25_in_ten_minutes_per_provider(tmp_path):
    campaign, maildir = make_campaign(), Maildir(tmp_path)
    _refusals(maildir, campaign, [f"a{i}@hotmail.com" for i in range(24)], minutes=9)
    assert not Incident.objects.exists()
    assert Bounce.objects.filter(state=Bounce.State.RECORDED).count() == 24
    _refusals(maildir, campaign, ["a24@outlook.com"], minutes=0.1)
    [incident] = Incident.objects.all()
    assert (incident.scope, incident.key, incident.window_count) == ("provider", "microsoft", 25)
    # the 24 recorded in the earlier run (no action taken on them) are its bounces too
    assert Bounce.objects.filter(state=Bounce.State.HELD, incident=incident).count() == 25


def test_refusals_spread_thinner_than_the_window_open_nothing(tmp_path):
    campaign, maildir = make_campaign(), Maildir(tmp_path)
    # 60 refusals over an hour: at most ~10 in any 10 minutes
    _refusals(maildir, campaign, [f"b{i}@yahoo.com" for i in range(60)], minutes=60)
    assert not Incident.objects.exists()


def test_an_old_backlog_opens_no_incident(tmp_path):
    campaign, maildir = make_campaign(), Maildir(tmp_path)
    _refusals(maildir, campaign, [f"c{i}@gmail.com" for i in range(40)], minutes=5,
              end=timezone.now() - timedelta(days=2))
    assert not Incident.objects.exists()
    assert not IncidentCount.objects.exists()  # older than the baseline: not even counted


def test_a_hosted_domain_is_grouped_by_the_mx_its_notices_name_and_its_sends_pause(tmp_path):
    assert provider_group("example.org", "dns; aspmx.l.google.com") == "google"
    assert provider_group("example.org", "", "host mx1.mail.protection.outlook.com[203.0.113.9] said: 550") == (
        "microsoft")
    campaign, maildir = make_campaign(), Maildir(tmp_path)
    diagnostic = "host alt1.aspmx.l.google.com[192.0.2.7] said: " + IP_LISTED
    _refusals(maildir, campaign, [f"d{i}@corp.example" for i in range(25)], minutes=5, diagnostic=diagnostic)
    [incident] = Incident.objects.all()
    assert (incident.scope, incident.key, incident.domains) == ("provider", "google", ["corp.example"])
    paused = incidents_for_addresses(emails=["x@corp.example", "y@gmail.com", "z@other.example"])
    assert paused == {"x@corp.example": incident.pk, "y@gmail.com": incident.pk}


def test_our_domain_refused_everywhere_opens_one_sending_incident(tmp_path):
    campaign, maildir = make_campaign(from_email="News <news@news.example>"), Maildir(tmp_path)
    addresses = [f"e{i}@host{i % 5}.example" for i in range(30)]  # 6 per receiving domain
    _refusals(maildir, campaign, addresses, minutes=5)
    [incident] = Incident.objects.all()
    assert (incident.scope, incident.key) == ("sending", "news.example")
    assert incident.held_count == 30
    assert incidents_for_addresses(emails=["f@anywhere.example"], from_email="news@news.example") == {
        "f@anywhere.example": incident.pk}
    assert incidents_for_addresses(emails=["f@anywhere.example"], from_email="x@other.example") == {}


def test_old_counts_are_swept():
    now = timezone.now()
    IncidentCount.objects.create(scope="domain:a.example", minute=now - timedelta(hours=30), failed=1, total=1)
    IncidentCount.objects.create(scope="domain:a.example", minute=now - timedelta(hours=2), failed=1, total=1)
    assert sweep_counts(now=now) == 1
    assert IncidentCount.objects.count() == 1


def test_a_provider_that_always_refuses_some_needs_ten_times_its_usual_refusals(tmp_path):
    # the guard's history: 30 refusals at gmail every 10 minutes for the last 6 hours (a big
    # sender's ordinary content-filter noise), counted for its sending domain too
    now = timezone.now()
    IncidentCount.objects.bulk_create([
        IncidentCount(scope=scope, minute=(now - timedelta(minutes=minute)).replace(second=0, microsecond=0),
                      blocked=3, total=3)
        for minute in range(15, 6 * 60) for scope in ("provider:google", "sending:example.org")
    ])
    campaign, maildir = make_campaign(), Maildir(tmp_path)
    _refusals(maildir, campaign, [f"g{i}@gmail.com" for i in range(40)], minutes=9)
    assert not Incident.objects.exists()
    assert Bounce.objects.filter(state=Bounce.State.RECORDED).count() == 40


def test_counts_dated_after_the_window_give_no_history_not_a_negative_one(caplog):
    """Notices dated ahead of our clock: the earliest count lies after the window's start. The
    guard has no history then (a failure burst waits for one), and says so without a negative
    duration ("-1 day, 23:50:00" before)."""
    from bounces.incidents.guard import _above_baseline, guard_settings

    now = timezone.now()
    IncidentCount.objects.create(scope="domain:example.net", minute=now + timedelta(minutes=30), failed=80, total=80)
    candidates = {"domain:example.net": (Incident.Trigger.BURST, 80, "failed"),
                  "provider:gmail": (Incident.Trigger.BLOCKED, 30, "blocked")}
    with caplog.at_level("INFO", logger="bounces.incidents.guard"):
        chosen = _above_baseline(candidates, cfg=guard_settings(), window_start=now - timedelta(minutes=10))
    assert [scope for scope, _, _ in chosen] == ["provider:gmail"]
    assert "0:00:00 of history" in caplog.text and "-1 day" not in caplog.text
