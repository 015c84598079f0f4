"""Merge fields (Django's template language, sandboxed) and the one-click unsubscribe link,
through a real SMTP server on loopback and the real endpoint."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns import services
from campaigns.merge import merge_problem, render_message
from campaigns.models import SentMessage
from contacts.models import Contact, Subscription

from .conftest import make_campaign, make_list, subscribe

pytestmark = [pytest.mark.django_db]
ONE_CLICK = "https://lists.example.com/unsubscribe/{token}/"


@pytest.mark.parametrize("source", [
    "{% load i18n %}", "{% debug %}", "{% include 'admin/base.html' %}", "{% url 'admin:index' %}",
    "{% csrf_token %}", "{{ name.__class__ }}", "{% extends 'base.html' %}",
])
def test_a_template_can_reach_nothing_but_the_merge_fields(source):
    assert "merge-field error" in merge_problem(subject=source, body_text="", body_html="")


def test_a_contact_name_adds_no_header_line_and_is_escaped_in_html():
    subject, text, html = render_message(
        subject="News for {{ name }}", body_text="Dear {{ name|default:'reader' }}",
        body_html="<p>Dear {{ name }}</p>", name="Eve\r\nBcc: all@example.com <b>", email="e@x",
        unsubscribe_url="")
    assert "\n" not in subject and "\r" not in subject
    assert html == "<p>Dear Eve\r\nBcc: all@example.com &lt;b&gt;</p>"
    assert render_message(subject="x", body_text="Dear {{ name|default:'reader' }}", body_html="",
                          name="", email="e@x", unsubscribe_url="")[1] == "Dear reader"


def test_each_recipient_gets_their_own_merge_fields_and_a_one_click_unsubscribe(smtp_server, settings):
    settings.CAMPAIGN_LIST_UNSUBSCRIBE = ONE_CLICK
    mailing_list = make_list()
    ann, = subscribe(mailing_list, "ann@example.com")
    Contact.objects.filter(pk=ann.pk).update(name="Ann")
    campaign = make_campaign(mailing_list, subject="{{ name|default:'Hello' }}, our news",
                             body_text="Dear {{ name }} <{{ email }}>\nLeave: {{ unsubscribe_url }}")
    services.send_campaign(campaign_id=campaign.pk)
    row = SentMessage.objects.get(campaign=campaign)
    message = smtp_server.received[0].message
    url = ONE_CLICK.format(token=row.token)
    assert message["Subject"] == "Ann, our news"
    assert f"Dear Ann <ann@example.com>\r\nLeave: {url}" in message.get_content()
    assert message["List-Unsubscribe"].strip() == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_campaign_with_a_broken_merge_field_is_not_queued():
    campaign = make_campaign(make_list(), subject="Hi {% if name %}")
    with pytest.raises(services.CampaignError, match="merge-field error"):
        services.queue_campaign(campaign=campaign)


def test_the_one_click_post_of_a_mailbox_provider_unsubscribes_from_the_campaigns_list(smtp_server):
    mailing_list = make_list()
    other_list = make_list()
    ann, = subscribe(mailing_list, "ann@example.com")
    Subscription.objects.create(contact=ann, mailing_list=other_list)
    campaign = make_campaign(mailing_list)
    services.send_campaign(campaign_id=campaign.pk)
    row = SentMessage.objects.get(campaign=campaign)
    client = Client(enforce_csrf_checks=True)  # as a provider: no cookie, no form token
    url = f"/unsubscribe/{row.token}/"
    page = client.get(url)
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    assert Subscription.objects.get(contact=ann, mailing_list=mailing_list).status == Subscription.Status.SUBSCRIBED
    response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert Subscription.objects.get(contact=ann, mailing_list=mailing_list).status == Subscription.Status.UNSUBSCRIBED
    assert Subscription.objects.get(contact=ann, mailing_list=other_list).status == Subscription.Status.SUBSCRIBED
    assert client.post(url).status_code == 200  # twice is fine


def test_an_unknown_unsubscribe_token_says_so():
    assert Client().get("/unsubscribe/nothing-like-a-token/").status_code == 404
