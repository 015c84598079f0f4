"""Staff pages of the deliverability guard: alerts (acknowledge) and incidents (list, detail,
resolve with a preview). An interface: imports the incidents' selectors and alerts and
pipeline.held (resolving applies pipeline actions)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from bounces.incidents import alerts, selectors
from bounces.models import Incident
from bounces.pipeline import held
from campaigns.charts import KIND_COLOURS, bounce_chart

INCIDENTS_PAGE = 50
RESTORE_PERMISSION = "contacts.release_suppression"


def _page(request: HttpRequest, title: str, **extra) -> dict:
    """The console's frame (the admin's header, user tools, theme) for these pages."""
    return {**admin.site.each_context(request), "title": title, **extra}


def _back(request: HttpRequest, default: str = "console:dashboard") -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return redirect(target)
    return redirect(default)


@staff_member_required
@require_POST
def acknowledge_alert(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Hide an alert's banner (for everyone): needs the change permission of alerts."""
    if not request.user.has_perm("bounces.change_alert"):
        messages.error(request, "You may not acknowledge alerts.")
        return _back(request)
    if alerts.acknowledge_alert(alert_id=alert_id, user=request.user):
        messages.success(request, "Alert acknowledged.")
    return _back(request)


@staff_member_required
@permission_required("bounces.view_incident", raise_exception=True)
def incident_list(request: HttpRequest) -> HttpResponse:
    """Every incident, newest first, 50 a page."""
    page = Paginator(selectors.incidents(), INCIDENTS_PAGE).get_page(request.GET.get("page"))
    return TemplateResponse(request, "bounces/incidents/list.html", _page(request, "Incidents", page=page))


@staff_member_required
@permission_required("bounces.view_incident", raise_exception=True)
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Scope, cause, counts over time, sample diagnostics, the raw notices (escaped); the
    resolve buttons for those with the change permission."""
    incident = get_object_or_404(Incident.objects.select_related("resolved_by"), pk=pk)
    data = selectors.incident_page(incident=incident)
    chart = bounce_chart(data["timeline"], data["unit"], width=900, height=200) if data["timeline"] else None
    can_resolve = incident.is_open and request.user.has_perm("bounces.change_incident")
    return TemplateResponse(request, "bounces/incidents/detail.html", _page(
        request, f"Incident {incident.pk}", incident=incident, data=data, chart=chart, can_resolve=can_resolve,
        legend=[{"kind": k, "colour": c} for k, c in KIND_COLOURS.items() if k in data["by_kind"]],
        kinds=dict(incident.bounces.model.Kind.choices), states=dict(incident.bounces.model.State.choices),
    ))


@staff_member_required
def incident_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """GET ?as=real: the preview of applying the held bounces; GET ?as=ours: the preview of
    the contacts restored with the release; POST as=ours|real (restore=on): resolve.
    Needs the change permission of incidents (view-only users get a 403); restoring contacts
    also the permission to release suppressions."""
    if not request.user.has_perm("bounces.change_incident"):
        raise PermissionDenied
    incident = get_object_or_404(Incident, pk=pk)
    choice = (request.POST.get("as") if request.method == "POST" else request.GET.get("as")) or ""
    if choice not in ("ours", "real"):
        return redirect("bounces:incident_detail", pk=incident.pk)
    if request.method != "POST":
        if not incident.is_open:
            return redirect("bounces:incident_detail", pk=incident.pk)
        preview = held.preview_apply(incident=incident) if choice == "real" else None
        restore = held.preview_release(incident=incident) if choice == "ours" else None
        return TemplateResponse(request, "bounces/incidents/resolve.html", _page(
            request, f"Resolve incident {incident.pk}", incident=incident, choice=choice, preview=preview,
            restore=restore, can_restore=request.user.has_perm(RESTORE_PERMISSION)))
    # restoring contacts lifts suppressions: it needs the permission to release them as well
    restore = choice == "ours" and request.POST.get("restore") == "on"
    if restore and not request.user.has_perm(RESTORE_PERMISSION):
        raise PermissionDenied
    try:
        held.resolve_incident(incident_id=incident.pk, real=choice == "real", actor=request.user,
                              note=request.POST.get("note", ""), restore=restore)
    except held.IncidentClosed:
        messages.warning(request, "This incident was already resolved.")
    else:
        messages.success(request, "Incident resolved: " + (
            "its held bounces were applied under the policy." if choice == "real" else
            "its held bounces were released and will never count" + (
                "; the contacts acted on before it opened were restored (unless other evidence stands)."
                if restore else ".")))
    return redirect("bounces:incident_detail", pk=incident.pk)
