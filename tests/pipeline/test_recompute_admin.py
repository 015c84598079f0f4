"""Issue 11: the admin page of the outcome recompute (preview, then apply), by permission."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from bounces.models import Bounce, BounceSettings
from contacts.models import Contact, ContactEvent, MailingList, Subscription, Suppression

pytestmark = pytest.mark.django_db
URL = "/admin/bounces/bouncesettings/recompute-outcomes/"


def _only_marked(n: int) -> list[Contact]:
    """What the old starter rules left behind: hard-bounced, still subscribed, not suppressed."""
    news = MailingList.objects.create(name="news")
    dead = []
    for i in range(n):
        contact = Contact.objects.create(email=f"dead{i}@example.org", has_bounced=True, hard_bounce_count=1)
        Subscription.objects.create(contact=contact, mailing_list=news)
        Bounce.objects.create(contact=contact, recipient=contact.email, kind="hard", state="applied", counted=True,
                              bounced_at=timezone.now(), actions_taken=["mark_hard"])
        dead.append(contact)
    fine = Contact.objects.create(email="fine@example.org")
    Subscription.objects.create(contact=fine, mailing_list=news)
    return dead


def _staff(client, name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password="pw-not-used", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="bounces", codename__in=perms))
    client.force_login(user)
    return user


def test_a_view_only_user_sees_the_preview_without_the_button_and_cannot_apply(client):
    _only_marked(2)
    BounceSettings.load()
    _staff(client, "viewer", "view_bouncesettings")
    page = client.get(URL)
    text = page.content.decode()
    assert page.status_code == 200 and "2</strong> would change" in text and "dead0@example.org" in text
    assert 'name="apply"' not in text and "needs the permission" in text
    assert client.post(URL).status_code == 403
    assert not Suppression.objects.exists()


def test_a_user_without_the_view_permission_is_refused(client):
    _staff(client, "nobody", "view_bounce")
    assert client.get(URL).status_code == 403


def test_the_operator_previews_pages_through_and_applies_and_it_is_audited(client):
    dead = _only_marked(55)
    settings_row = BounceSettings.load()
    operator = _staff(client, "operator", "view_bouncesettings", "change_bouncesettings")
    settings_page = client.get(f"/admin/bounces/bouncesettings/{settings_row.pk}/change/").content.decode()
    assert 'href="../../recompute-outcomes/"' in settings_page

    first = client.get(URL).content.decode()
    assert "55</strong> would change" in first and "page 1 of 2" in first and 'name="apply"' in first
    assert "Suppress the address" in first and "55 contact(s)" in first
    assert "fine@example.org" not in first
    second = client.get(URL + "?page=2").content.decode()
    assert second.count("<tr><td>") == 5
    assert not Suppression.objects.exists()  # previews write nothing

    done = client.post(URL, follow=True)
    assert "55 contact(s) changed." in done.content.decode()
    assert Suppression.objects.filter(value__in=[c.email for c in dead]).count() == 55
    assert set(Subscription.objects.filter(contact__in=dead).values_list("status", flat=True)) == {"unsubscribed"}
    assert Subscription.objects.get(contact__email="fine@example.org").status == "subscribed"
    entry = LogEntry.objects.get(user=operator)
    assert "55 contact(s) changed" in entry.get_change_message()
    assert ContactEvent.objects.filter(contact=dead[0], actor=operator).exists()
    assert "0</strong> would change" in client.get(URL).content.decode()
