"""The console's navigation: the same sections on every page, each shown to those who may see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Item:
    label: str
    url_name: str
    perm: str | None = None  # model permission needed to see the link; None: any staff user
    superuser: bool = False


@dataclass(frozen=True)
class Section:
    label: str
    items: tuple[Item, ...]
    # URL prefixes that belong to the section (marks it current); the items' URLs count too.
    prefixes: tuple[str, ...] = field(default=())


SECTIONS: tuple[Section, ...] = (
    Section("Dashboard", (Item("Dashboard", "console:dashboard"),)),
    Section("Campaigns", (
        Item("Campaigns", "admin:campaigns_campaign_changelist", "campaigns.view_campaign"),
        Item("Sent messages", "admin:campaigns_sentmessage_changelist", "campaigns.view_sentmessage"),
    ), ("/admin/campaigns/", "/campaigns/")),
    Section("Contacts & lists", (
        Item("Contacts", "admin:contacts_contact_changelist", "contacts.view_contact"),
        Item("Mailing lists", "admin:contacts_mailinglist_changelist", "contacts.view_mailinglist"),
        Item("Subscriptions", "admin:contacts_subscription_changelist", "contacts.view_subscription"),
        Item("Suppressions", "admin:contacts_suppression_changelist", "contacts.view_suppression"),
        Item("Releases", "admin:contacts_suppressionrelease_changelist", "contacts.view_suppressionrelease"),
        Item("Import contacts", "contacts:import", "contacts.add_contact"),
    ), ("/admin/contacts/", "/contacts/")),
    Section("Bounces", (
        Item("Bounces", "admin:bounces_bounce_changelist", "bounces.view_bounce"),
        Item("Unexplained", "bounces:pipeline_unexplained", "bounces.view_bounce"),
        Item("Deliverability", "bounces:pipeline_deliverability", "bounces.view_bounce"),
        Item("Incidents", "bounces:incident_list", "bounces.view_incident"),
    ), ("/admin/bounces/bounce/", "/bounces/", "/admin/bounces/rawmessage/")),
    Section("Mailboxes", (
        Item("Mailboxes", "admin:bounces_mailbox_changelist", "bounces.view_mailbox"),
    ), ("/admin/bounces/mailbox/", "/bounces/mailboxes/")),
    Section("Rules", (
        Item("Rules", "admin:bounces_bouncerule_changelist", "bounces.view_bouncerule"),
        Item("Coverage", "bounces:rule_coverage", "bounces.view_bouncerule"),
        Item("Re-apply", "bounces:rule_reapply", "bounces.apply_bouncerule"),
    ), ("/admin/bounces/bouncerule", "/bounces/rules/", "/admin/bounces/rulereapply/")),
    Section("Runs", (
        Item("Runs", "bounces:pipeline_runs", "bounces.view_processingrun"),
    ), ("/bounces/runs/", "/admin/bounces/processingrun/")),
    Section("Settings", (
        Item("Bounce settings", "admin:bounces_bouncesettings_changelist", "bounces.view_bouncesettings"),
        Item("Users", "admin:auth_user_changelist", "auth.view_user"),
        Item("Groups", "admin:auth_group_changelist", "auth.view_group"),
        Item("Advanced", "console:advanced", superuser=True),
    ), ("/admin/bounces/bouncesettings/", "/admin/auth/", "/advanced/", "/admin/")),
)


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:  # a page another part of the project has not added (yet)
        return None


def _visible(user, item: Item) -> bool:
    if item.superuser:
        return user.is_superuser
    return item.perm is None or user.has_perm(item.perm)


def build(user, path: str) -> dict:
    """Sections the user may see, the current one marked, with its sub-links."""
    sections = []
    best_len, current = -1, None
    for section in SECTIONS:
        links = [
            {"label": item.label, "url": url}
            for item in section.items
            if _visible(user, item) and (url := _url(item.url_name))
        ]
        if not links:
            continue
        entry = {"label": section.label, "url": links[0]["url"], "links": links, "current": False}
        sections.append(entry)
        # The longest matching prefix wins (/admin/bounces/mailbox/ before /admin/).
        for prefix in (*section.prefixes, *(link["url"] for link in links)):
            if prefix != "/" and path.startswith(prefix) and len(prefix) > best_len:
                best_len, current = len(prefix), entry
            elif prefix == "/" and path == "/" and best_len < 1:
                best_len, current = 1, entry
    if current is not None:
        current["current"] = True
        for link in current["links"]:
            link["current"] = path.startswith(link["url"]) and (link["url"] != "/" or path == "/")
    return {"sections": sections, "current": current}
