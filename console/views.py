"""The console's pages: the dashboard (landing page after login) and Advanced (superusers)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from campaigns.charts import KIND_COLOURS, bounce_chart

from . import selectors


def console_context(request: HttpRequest, title: str, **extra) -> dict:
    """The admin's page context (header, user tools, theme) for a console page."""
    return {**admin.site.each_context(request), "title": title, **extra}


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Bounces today / 7 / 30 days, a per-day chart, top reasons and domains, mailboxes with
    their schedule and errors, open incidents, paused campaigns, suppressions, recent runs.
    Each part is shown to those with the view permission of its model."""
    user = request.user
    now = timezone.now()
    ctx: dict = {"now": now}
    if user.has_perm("bounces.view_bounce"):
        counts = selectors.dashboard_counts(now=now)
        windows = selectors.bounce_windows(now=now, counts=counts)
        ctx["windows"] = windows
        ctx["chart"] = bounce_chart(
            [(day, counts) for day, counts in windows.days], "day", width=900, height=200
        )
        ctx["chart_legend"] = [{"kind": k, "colour": KIND_COLOURS[k]} for k in selectors.CHART_KINDS]
        ctx["top_reasons"] = selectors.top_reasons(counts=counts)
        ctx["top_domains"] = selectors.top_domains(counts=counts)
    if user.has_perm("bounces.view_mailbox"):
        ctx["mailboxes"] = selectors.mailboxes(now=now)
        ctx["mailbox_total"] = selectors.mailbox_count()
        ctx["can_process"] = user.has_perm("bounces.process_mailbox")
        ctx["can_add_mailbox"] = user.has_perm("bounces.add_mailbox")
    if user.has_perm("bounces.view_processingrun"):
        ctx["runs"] = selectors.recent_runs()
    if user.has_perm("campaigns.view_campaign"):
        ctx["paused_campaigns"] = selectors.paused_campaigns()
        ctx["failing_campaigns"] = selectors.failing_campaigns()
    if user.has_perm("contacts.view_suppression"):
        ctx["suppressions"] = selectors.suppression_count()
    if user.has_perm("bounces.view_incident"):
        ctx["incidents"] = selectors.open_incidents()
    if user.has_perm("bounces.view_alert"):
        ctx["alerts"], ctx["alert_total"] = selectors.unacknowledged_alerts()
        ctx["can_acknowledge_alerts"] = user.has_perm("bounces.change_alert")
    return TemplateResponse(request, "console/dashboard.html", console_context(request, "Dashboard", **ctx))


@staff_member_required
def advanced(request: HttpRequest) -> HttpResponse:
    """Every model the admin knows, internal ones included: superusers only."""
    if not request.user.is_superuser:
        raise PermissionDenied
    return TemplateResponse(request, "console/advanced.html", console_context(
        request, "Advanced", app_list=admin.site.get_app_list(request)))
