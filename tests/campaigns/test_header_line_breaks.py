"""A CR or LF in a campaign's Subject or From (issue 12, low): refused by the form with a
clear error, and a campaign that has one anyway stops with the reason instead of staying
"sending" forever."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from campaigns import services
from campaigns.models import Campaign, SentMessage

from .conftest import make_campaign, make_list, subscribe

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field", ["subject", "from_email"])
def test_the_admin_form_refuses_a_line_break_in_subject_or_from(client, field):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    data = {
        "name": "November", "mailing_list": make_list().pk, "from_email": "News <news@example.com>",
        "subject": "November news", "body_text": "Hello", "body_html": "",
    }
    data[field] = data[field] + "\r\nBcc: everyone@example.com"

    response = client.post(reverse("admin:campaigns_campaign_add"), data)

    assert response.status_code == 200  # the form again, with the error
    assert "Must be a single line" in response.content.decode()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("field", ["subject", "from_email"])
def test_a_campaign_with_a_line_break_stops_with_the_reason_instead_of_jamming(smtp_server, field):
    mailing_list = make_list()
    subscribe(mailing_list, "ann@example.com")
    campaign = make_campaign(mailing_list)
    Campaign.objects.filter(pk=campaign.pk).update(**{field: "News\nBcc: x@example.com"})

    with pytest.raises(services.SendFailed, match="line break"):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "line break" in campaign.last_error
    assert not SentMessage.objects.filter(status=SentMessage.Status.SENDING).exists()
    assert smtp_server.received == []


def test_queueing_a_campaign_with_a_line_break_is_refused():
    campaign = make_campaign(make_list(), status=Campaign.Status.DRAFT)
    Campaign.objects.filter(pk=campaign.pk).update(subject="a\rb")
    with pytest.raises(services.CampaignError, match="line break"):
        services.queue_campaign(campaign=campaign)


def test_a_header_refused_while_sending_hands_the_message_back_and_pauses(smtp_server, monkeypatch):
    """The subject changes between the check and the message (edited under a running send)."""
    mailing_list = make_list()
    subscribe(mailing_list, "ann@example.com")
    campaign = make_campaign(mailing_list)
    real_build = services.build_message

    def build_with_edited_subject(*, campaign, row, connection=None):
        campaign.subject = "edited\nBcc: x@example.com"
        return real_build(campaign=campaign, row=row, connection=connection)

    monkeypatch.setattr(services, "build_message", build_with_edited_subject)
    with pytest.raises(services.SendFailed, match="header"):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED and "header" in campaign.last_error
    assert list(SentMessage.objects.values_list("status", "attempts")) == [(SentMessage.Status.QUEUED, 0)]
    assert smtp_server.received == []
