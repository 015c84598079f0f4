"""Behaviour of the staff pages found while using them as an operator would.

Django test client only; each test names what a person saw or did.
"""

from __future__ import annotations

import itertools

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from contacts.models import Contact, MailingList

pytestmark = pytest.mark.django_db

_seq = itertools.count(1)


def _bounce(**fields) -> Bounce:
    n = next(_seq)
    raw = RawMessage.objects.create(dedupe_key=f"ui:{n}", sha256=f"{n:064d}", raw=b"Subject: x\r\n\r\nx",
                                    size=16, state="processed")
    defaults = {"recipient": f"user{n}@example.org", "kind": "unknown", "state": "unmatched",
                "bounced_at": timezone.now()}
    return Bounce.objects.create(raw_message=raw, **{**defaults, **fields})


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


# --- pipeline pages ---------------------------------------------------------------------

def test_a_hand_edited_days_window_on_the_deliverability_page_falls_back_instead_of_failing(admin_client):
    url = reverse("bounces:pipeline_deliverability")
    assert admin_client.get(url, {"days": "abc"}).context["days"] == 30
    assert admin_client.get(url, {"days": "-5"}).context["days"] == 1
    assert admin_client.get(url, {"days": "7"}).context["days"] == 7


def test_process_all_with_no_enabled_mailbox_says_so_and_queues_nothing(admin_client):
    Mailbox.objects.create(name="off", protocol="maildir", path="/nonexistent", enabled=False)
    response = admin_client.post(reverse("bounces:pipeline_process_all"))
    assert response.status_code == 302
    assert response.url == reverse("admin:bounces_mailbox_changelist")
    assert _messages(response) == [("warning", "No mailbox is enabled: nothing to process.")]
    assert not ProcessingRun.objects.exists()


def test_the_unexplained_queue_links_each_row_to_the_bounce_detail_page(admin_client):
    bounce = _bounce()
    body = admin_client.get(reverse("bounces:pipeline_unexplained")).content.decode()
    assert f'href="{reverse("bounces:detail", args=[bounce.pk])}"' in body


def test_a_full_unexplained_queue_says_how_many_are_waiting_in_all(admin_client):
    for _ in range(101):
        _bounce()
    response = admin_client.get(reverse("bounces:pipeline_unexplained"))
    assert len(response.context["bounces"]) == 100
    assert "Showing the 100 most recent of 101." in response.content.decode()


def test_a_short_unexplained_queue_shows_no_count_line(admin_client):
    _bounce()
    response = admin_client.get(reverse("bounces:pipeline_unexplained"))
    assert response.context["total"] == 1
    assert "most recent of" not in response.content.decode()


# --- mailbox admin: POST buttons among the object tools ---------------------------------

def test_the_process_buttons_of_the_mailbox_admin_are_csrf_posts_styled_like_the_other_tools(admin_client):
    mailbox = Mailbox.objects.create(name="box", protocol="maildir", path="/nonexistent")
    for url, action in (
        (reverse("admin:bounces_mailbox_changelist"), reverse("bounces:pipeline_process_all")),
        (reverse("admin:bounces_mailbox_change", args=[mailbox.pk]),
         reverse("bounces:pipeline_process", args=[mailbox.pk])),
    ):
        body = admin_client.get(url).content.decode()
        assert "bouncemgr/admin-tools.css" in body
        form = body[body.index(f'action="{action}"') - 40:]
        form = form[: form.index("</form>")]
        assert 'method="post"' in form and "csrfmiddlewaretoken" in form
        assert 'class="bm-tool"' in form


@pytest.mark.parametrize("page", ["admin:bounces_bouncerule_changelist", "admin:bounces_mailbox_changelist"])
def test_long_rows_of_admin_tools_sit_under_the_title_instead_of_over_it(admin_client, page):
    body = admin_client.get(reverse(page)).content.decode()
    assert "bouncemgr/admin-tools.css" in body
    body_tag = body[body.index("<body"):]
    assert "bm-tools-row" in body_tag[: body_tag.index(">")]


# --- contacts ---------------------------------------------------------------------------

def test_the_import_page_ignores_a_list_parameter_that_is_not_a_number(admin_client):
    response = admin_client.get(reverse("contacts:import"), {"list": "x"})
    assert response.status_code == 200


def test_the_import_page_preselects_the_list_given_by_id(admin_client):
    mailing_list = MailingList.objects.create(name="News")
    response = admin_client.get(reverse("contacts:import"), {"list": str(mailing_list.pk)})
    assert response.context["form"].initial["mailing_list"] == mailing_list


@pytest.mark.parametrize("data", [
    b"colour,size\nred,10\n",  # no email column: refused before any row
    # an unreadable line is reported and the import goes on (tests/contacts/test_import_reading.py)
], ids=["no email column"])
def test_a_broken_csv_leaves_no_new_list_and_no_contacts_behind(admin_client, data):
    response = admin_client.post(reverse("contacts:import"), {
        "file": SimpleUploadedFile("c.csv", data, content_type="text/csv"), "new_list": "Fresh",
        "update_names": "on",
    })
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert errors and errors[0].endswith("Nothing was imported.")
    assert not MailingList.objects.filter(name="Fresh").exists()
    assert not Contact.objects.exists()


def test_an_import_with_rejected_rows_is_reported_as_a_warning(admin_client):
    mailing_list = MailingList.objects.create(name="News")
    data = b"email,name\nnot-an-address,X\nok@example.org,Ok\n"
    response = admin_client.post(reverse("contacts:import"), {
        "file": SimpleUploadedFile("c.csv", data, content_type="text/csv"),
        "mailing_list": str(mailing_list.pk), "update_names": "on",
    }, follow=True)
    assert '<div class="alert alert-warning">' in response.content.decode()
    assert Contact.objects.filter(email="ok@example.org").exists()


def test_a_clean_import_is_reported_as_a_success(admin_client):
    mailing_list = MailingList.objects.create(name="News")
    response = admin_client.post(reverse("contacts:import"), {
        "file": SimpleUploadedFile("c.csv", b"email\nok@example.org\n", content_type="text/csv"),
        "mailing_list": str(mailing_list.pk), "update_names": "on",
    }, follow=True)
    assert '<div class="alert alert-success">' in response.content.decode()


def test_the_contact_page_says_the_reset_keeps_the_lifetime_totals(admin_client):
    contact = Contact.objects.create(email="a@example.org", hard_bounce_count=2)
    body = admin_client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert "lifetime hard and soft totals are kept" in body
    assert "clears the counters" not in body


# --- campaign results ---------------------------------------------------------------------

def test_the_bounced_recipients_table_scrolls_inside_the_page_instead_of_widening_it(admin_client):
    from campaigns.models import Campaign

    mailing_list = MailingList.objects.create(name="News")
    campaign = Campaign.objects.create(name="C", subject="S", from_email="a@example.org",
                                       mailing_list=mailing_list, status="sent")
    _bounce(campaign=campaign, kind="hard", state="applied", diagnostic="550 " + "x" * 300)
    body = admin_client.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    table = body[body.index('id="bounced"'):]
    assert table.index('<div class="table-responsive">') < table.index("<table")
    assert "text-truncate" not in table  # nowrap cells are what widened the page


# --- rules: re-apply ----------------------------------------------------------------------

def test_reapply_preview_and_record_name_the_rules_instead_of_showing_their_ids(admin_client):
    from bounces.rules.models import BounceRule

    rule = BounceRule(name="Quota <full>", pattern="quota exceeded", bounce_type="soft")
    rule.full_clean()
    rule.save()
    bounce = _bounce(diagnostic="552 quota exceeded", state="applied")
    preview = admin_client.get(reverse("bounces:rule_reapply"), {"sample": "5000", "preview": "1"})
    body = preview.content.decode()
    assert f"“Quota &lt;full&gt;” (#{rule.pk})" in body  # named, and escaped
    assert f'href="{reverse("bounces:detail", args=[bounce.pk])}"' in body

    applied = admin_client.post(reverse("bounces:rule_reapply"), {"sample": "5000"})
    rule_id = rule.pk
    rule.delete()  # the record outlives the rule
    body = admin_client.get(applied["Location"]).content.decode()
    assert f"rule #{rule_id} (deleted)" in body


# --- run page -----------------------------------------------------------------------------

def test_a_queued_run_says_it_waits_for_a_worker_and_a_failed_one_shows_a_red_bar(admin_client):
    mailbox = Mailbox.objects.create(name="box", protocol="maildir", path="/nonexistent")
    queued = ProcessingRun.objects.create(mailbox=mailbox, status=ProcessingRun.Status.QUEUED)
    body = admin_client.get(reverse("bounces:pipeline_run", args=[queued.pk])).content.decode()
    assert 'id="run-queued-hint" class="small text-body-secondary">' in body
    assert "bg-danger" not in body.split('id="run-bar"')[1].split(">")[0]

    failed = ProcessingRun.objects.create(mailbox=mailbox, status=ProcessingRun.Status.FAILED,
                                          error_log="Connection refused", finished_at=timezone.now())
    body = admin_client.get(reverse("bounces:pipeline_run", args=[failed.pk])).content.decode()
    assert 'id="run-queued-hint" class="small text-body-secondary d-none">' in body
    assert "bg-danger" in body.split('id="run-bar"')[1].split(">")[0]
    assert "Connection refused" in body


# --- permissions: staff status alone does not open every page --------------------------------

@pytest.fixture
def bare_staff(client, django_user_model):
    user = django_user_model.objects.create_user("bare", password="x", is_staff=True)
    client.force_login(user)
    return client, user


def test_a_staff_user_without_permissions_gets_403_on_the_staff_pages(bare_staff):
    from campaigns.models import Campaign

    client, _ = bare_staff
    contact = Contact.objects.create(email="a@example.org")
    campaign = Campaign.objects.create(name="C", subject="S", from_email="a@example.org")
    bounce = _bounce()
    mailbox = Mailbox.objects.create(name="box", protocol="maildir", path="/nonexistent")
    run = ProcessingRun.objects.create(mailbox=mailbox)
    for url in (
        reverse("contacts:detail", args=[contact.pk]), reverse("contacts:import"),
        reverse("contacts:suppressions_csv"),
        reverse("campaigns:results", args=[campaign.pk]), reverse("campaigns:bounces_csv", args=[campaign.pk]),
        reverse("bounces:detail", args=[bounce.pk]), reverse("bounces:detail_raw", args=[bounce.pk]),
        reverse("bounces:pipeline_runs"), reverse("bounces:pipeline_run", args=[run.pk]),
        reverse("bounces:pipeline_run_status", args=[run.pk]), reverse("bounces:pipeline_unexplained"),
        reverse("bounces:pipeline_deliverability"),
    ):
        assert client.get(url).status_code == 403, url


def test_a_viewer_of_contacts_sees_the_page_but_neither_the_reset_button_nor_may_reset(bare_staff):
    from django.contrib.auth.models import Permission

    client, user = bare_staff
    user.user_permissions.add(Permission.objects.get(codename="view_contact"))
    contact = Contact.objects.create(email="a@example.org", consecutive_bounces=3, has_bounced=True)
    page = client.get(reverse("contacts:detail", args=[contact.pk]))
    assert page.status_code == 200
    assert "Reset bounce state" not in page.content.decode()
    assert client.post(reverse("contacts:reset_bounce", args=[contact.pk])).status_code == 403
    contact.refresh_from_db()
    assert contact.consecutive_bounces == 3 and contact.has_bounced


def test_the_contact_history_shows_event_details_as_readable_pairs_and_escaped(admin_client):
    from contacts.models import ContactEvent

    contact = Contact.objects.create(email="a@example.org")
    ContactEvent.objects.create(contact=contact, kind=ContactEvent.Kind.BOUNCE_RESET,
                                detail={"reason": "<b>x</b>", "before": {"hard_bounce_count": 2}})
    body = admin_client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert 'reason:</span> &lt;b&gt;x&lt;/b&gt;' in body
    assert "hard_bounce_count=2" in body
    assert "{&#x27;" not in body  # no Python dict repr


def test_the_rest_of_a_full_unexplained_queue_is_one_click_away(admin_client):
    for _ in range(234):
        _bounce()
    url = reverse("bounces:pipeline_unexplained")
    first = admin_client.get(url)
    assert 'href="?page=2"' in first.content.decode()
    last = admin_client.get(url, {"page": "3"})
    assert len(last.context["bounces"]) == 34
    assert "Showing 201–234 of 234." in last.content.decode()
    assert 'href="?page=2"' in last.content.decode() and "?page=4" not in last.content.decode()
    assert admin_client.get(url, {"page": "x"}).context["page"] == 1


def test_the_runs_page_pages_back_through_older_runs(admin_client):
    ProcessingRun.objects.bulk_create([ProcessingRun() for _ in range(55)])
    url = reverse("bounces:pipeline_runs")
    first = admin_client.get(url)
    assert len(first.context["runs"]) == 50 and first.context["next_page"] == 2
    second = admin_client.get(url, {"page": "2"})
    assert len(second.context["runs"]) == 5 and second.context["next_page"] is None
