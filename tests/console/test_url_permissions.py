"""Every URL of the site (taken from the URL resolver, admin and custom pages alike), per role.

Anonymous visitors are sent to the login page; a view-only staff user gets read-only pages,
403 on add/delete, and changes nothing whatever it POSTs; operators and superusers see every
page. Nobody ever gets a server error. A new URL is covered without editing this file: its
arguments are filled with the primary key of the model its route names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver

from bounces.models import Bounce, ProcessingRun
from contacts.models import Suppression
from tests.factories import (
    BounceFactory,
    CampaignFactory,
    ContactFactory,
    MailboxFactory,
    SentMessageFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client):
    """Server errors come back as HTTP 500 responses, so one walk reports all of them."""
    client.raise_request_exception = False
    return client

BUSINESS_APPS = ("contacts", "campaigns", "bounces")
# Pages anyone may open; everything else under these prefixes needs a staff login.
PUBLIC = {"/healthz", "/admin/login/"}
STAFF_PREFIXES = ("/admin/", "/campaigns/", "/contacts/", "/bounces/", "/advanced/")
SKIP_NAMES = {"admin:logout", "admin:view_on_site"}
# Known server errors for view-only users, fixed where those admin classes live; each
# leaves this set with its fix.
KNOWN_VIEW_ONLY_ERRORS: set[str] = set()
ARG = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>[^)]*\)")


def _routes(patterns, prefix: str = "", ns: str = "") -> Iterator[tuple[str, str]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            sub = f"{ns}:{p.namespace}" if ns and p.namespace else (p.namespace or ns)
            yield from _routes(p.url_patterns, prefix + str(p.pattern), sub)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), f"{ns}:{p.name}" if ns else (p.name or "")


def _model_for(segment: str):
    segment = segment.lower().replace("-", "").replace("_", "")
    candidates = [segment, segment.rstrip("s"), segment[:-2] if segment.endswith("es") else segment]
    models = [m for m in apps.get_models()]
    for cand in candidates:
        for model in models:
            if model._meta.model_name == cand:
                return model
    for cand in candidates:
        for model in models:
            if model._meta.model_name.endswith(cand) and cand:
                return model
    return None


def _url(route: str) -> str | None:
    """A concrete URL for a route, or None when it cannot be filled (app_list is expanded)."""
    route = route.replace("^", "").replace("$", "")
    if "(?P<url>" in route or "(?P<app_label>" in route:
        return None
    parts = route.split("/")
    out = []
    for i, part in enumerate(parts):
        match = ARG.fullmatch(part) if part else None
        if not match:
            if ARG.search(part):  # an argument with a suffix, e.g. "<int:pk>.csv"
                out.append(ARG.sub(lambda m, i=i: str(_pk_for(m, parts, i)), part))
                continue
            out.append(part)
            continue
        out.append(str(_pk_for(match, parts, i)))
    return "/" + "/".join(out)


def _pk_for(match, parts: list[str], index: int) -> int:
    name = match.group("name") or match.group("rname") or ""
    model = None
    if name.endswith("_id") and name not in ("object_id", "content_type_id"):
        model = _model_for(name[:-3])
    if model is None:
        for back in range(index - 1, -1, -1):
            if parts[back] and not ARG.search(parts[back]) and parts[back] not in ("admin",):
                model = _model_for(parts[back])
                if model is not None:
                    break
    obj = model.objects.order_by("pk").first() if model is not None else None
    return obj.pk if obj is not None else 1


def all_urls() -> list[tuple[str, str]]:
    urls = []
    for route, name in _routes(get_resolver().url_patterns):
        if name in SKIP_NAMES:
            continue
        url = _url(route)
        if url is not None:
            urls.append((url, name))
    from django.contrib import admin

    for app_label in {m._meta.app_label for m in admin.site._registry}:
        urls.append((f"/admin/{app_label}/", "admin:app_list"))
    return sorted(set(urls))


@pytest.fixture
def world(db):
    """One object of each kind the pages show."""
    contact = ContactFactory()
    subscription = SubscriptionFactory(contact=contact)
    campaign = CampaignFactory(mailing_list=subscription.mailing_list)
    sent = SentMessageFactory(campaign=campaign, contact=contact, email=contact.email)
    box = MailboxFactory()
    bounce = BounceFactory(raw_message__mailbox=box, mailbox=box, contact=contact, campaign=campaign,
                           sent_message=sent, recipient=contact.email, state=Bounce.State.UNMATCHED)
    ProcessingRun.objects.create(mailbox=box)
    from bounces.models import BounceSettings

    BounceSettings.objects.get_or_create(pk=1)
    Suppression.objects.create(value="gone@example.org")
    from bounces.models import BounceRule

    BounceRule.objects.create(**_rule_fields(BounceRule))
    return {"bounce": bounce}


def _rule_fields(model) -> dict:
    fields = {f.name for f in model._meta.get_fields()}
    data = {"name": "Mailbox full"} if "name" in fields else {}
    for key, value in (("pattern", "mailbox full"), ("match_text", "mailbox full"), ("kind", "soft")):
        if key in fields:
            data[key] = value
    return data


def _user(django_user_model, name: str, *, perms=(), superuser: bool = False):
    user = django_user_model.objects.create_user(name, password="x", is_staff=True, is_superuser=superuser)
    if perms:
        user.user_permissions.add(*perms)
    return user


def _view_perms():
    return Permission.objects.filter(codename__startswith="view_")


def _operator_perms():
    return Permission.objects.filter(content_type__app_label__in=BUSINESS_APPS)


def test_the_walk_covers_admin_and_custom_pages(world):
    names = {name for _, name in all_urls()}
    assert {"console:dashboard", "admin:bounces_mailbox_change", "bounces:detail",
            "campaigns:results", "contacts:import"} <= names


def test_an_anonymous_visitor_is_sent_to_log_in_everywhere(client, world):
    problems = []
    for url, name in all_urls():
        response = client.get(url)
        if response.status_code == 302 and response.url == "/":  # /admin/ leads to the dashboard
            response = client.get(response.url)
        if response.status_code >= 500:
            problems.append(f"{url} ({name}): {response.status_code}")
        elif url in PUBLIC or response.status_code == 405:  # POST-only: nothing to see
            continue
        elif url.startswith(STAFF_PREFIXES) or url == "/":
            if not (response.status_code == 302 and "/admin/login/" in response.url):
                problems.append(f"{url} ({name}): {response.status_code}, not a redirect to the login page")
    assert not problems, "\n".join(problems)


def test_a_view_only_user_gets_read_only_pages_and_no_server_error(client, django_user_model, world):
    client.force_login(_user(django_user_model, "viewer", perms=_view_perms()))
    problems = []
    for url, name in all_urls():
        response = client.get(url)
        status = response.status_code
        if status >= 500 and name in KNOWN_VIEW_ONLY_ERRORS:
            continue
        if status >= 500:
            problems.append(f"{url} ({name}): {status}")
        elif name.endswith(("_add", "_delete")) and name.startswith("admin:") and status != 403:
            problems.append(f"{url} ({name}): {status}, expected 403")
        elif name.endswith("_change") and name.startswith("admin:") and status == 200:
            if b'name="_save"' in response.content:
                problems.append(f"{url} ({name}): a Save button for a view-only user")
    assert not problems, "\n".join(problems)


def _snapshot() -> dict:
    # Sessions and the admin log are not data; campaign figures and the dashboard's stored
    # counts are caches a page may refresh for anyone who may read it.
    skip = {"sessions.session", "admin.logentry", "campaigns.campaignstats", "console.dashboardcount",
            "console.dashboardcountstate"}
    return {
        model._meta.label_lower: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.label_lower not in skip and not model._meta.proxy
    }


def test_whatever_a_view_only_user_posts_changes_nothing(client, django_user_model, world):
    client.force_login(_user(django_user_model, "viewer", perms=_view_perms()))
    before = _snapshot()
    problems = []
    urls = [(url, name) for url, name in all_urls() if name not in ("admin:password_change",)]
    # The database is compared after every 10 URLs (a snapshot reads every table): a change
    # names the group of URLs to look into.
    for start in range(0, len(urls), 10):
        group = urls[start:start + 10]
        for url, name in group:
            for data in ({}, {"action": "delete_selected", "_selected_action": [str(world["bounce"].pk)],
                              "post": "yes"}):
                response = client.post(url, data)
                if response.status_code >= 500:
                    problems.append(f"POST {url} ({name}): {response.status_code}")
        after = _snapshot()
        changed = [label for label in before if before[label] != after[label]]
        if changed:
            problems.append(f"POST to one of {[url for url, _ in group]} changed {', '.join(changed)}")
            before = after
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ["operator", "superuser"])
def test_operators_and_superusers_open_every_page_without_a_server_error(client, django_user_model, world, role):
    if role == "operator":
        user = _user(django_user_model, "operator", perms=_operator_perms())
    else:
        user = _user(django_user_model, "root", superuser=True)
    client.force_login(user)
    problems = []
    for url, name in all_urls():
        response = client.get(url)
        if response.status_code >= 500:
            problems.append(f"{url} ({name}): {response.status_code}")
    assert not problems, "\n".join(problems)
