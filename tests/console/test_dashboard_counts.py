"""The dashboard's stored counts: a rebuild counts 30 days per day by kind, reason and domain;
bounces above the mark are added live, so a run's bounces show at once; changes to older
bounces show after the next rebuild; hostile domains do not break it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bounces.models import Bounce
from console import selectors
from console.models import DashboardCount, DashboardCountState
from console.services import rebuild_dashboard_counts
from console.tasks import rebuild_dashboard_counts_task
from tests.factories import BounceFactory

pytestmark = pytest.mark.django_db


def _figures():
    counts = selectors.dashboard_counts(now=timezone.now())
    windows = selectors.bounce_windows(counts=counts)
    kinds = {k["kind"]: k for k in windows.kinds}
    return kinds, selectors.top_reasons(counts=counts), selectors.top_domains(counts=counts)


def test_stored_counts_plus_the_bounces_since_the_mark_give_the_figures():
    now = timezone.now()
    BounceFactory(recipient="a@big.example", kind="hard", reason="userunknown")
    BounceFactory(recipient="b@big.example", kind="soft", reason="mailboxfull", bounced_at=now - dt.timedelta(days=3))
    BounceFactory(recipient="c@old.example", kind="hard", bounced_at=now - dt.timedelta(days=40))  # outside
    state = rebuild_dashboard_counts()
    assert state.last_bounce_id == Bounce.objects.order_by("-id").first().pk
    assert DashboardCount.objects.filter(dimension="kind").count() == 2

    BounceFactory(recipient="d@big.example", kind="hard", reason="userunknown")  # after the mark
    kinds, reasons, domains = _figures()
    assert (kinds["hard"]["today"], kinds["hard"]["month"], kinds["soft"]["week"]) == (2, 2, 1)
    assert reasons[0] == {"reason": "userunknown", "n": 2}
    assert domains == [{"domain": "big.example", "n": 3}]


def test_a_change_to_an_older_bounce_shows_after_the_next_rebuild():
    bounce = BounceFactory(kind="unknown", reason="")
    rebuild_dashboard_counts()
    Bounce.objects.filter(pk=bounce.pk).update(kind="hard", reason="userunknown")  # e.g. rules re-applied
    assert _figures()[0]["hard"]["month"] == 0
    rebuild_dashboard_counts_task()
    assert _figures()[0]["hard"]["month"] == 1


def test_the_first_dashboard_builds_the_counts_and_a_hostile_domain_is_cut():
    long_domain = "x" * 300 + ".example"
    BounceFactory(recipient=f"a@{long_domain}", kind="hard")
    BounceFactory(recipient=f"b@{long_domain}y", kind="hard")  # differs after 255 characters
    assert not DashboardCountState.objects.exists()
    _, _, domains = _figures()
    assert DashboardCountState.objects.get().last_bounce_id > 0
    assert domains == [{"domain": long_domain[:255], "n": 2}]
