"""Staff pages of the deliverability guard: alerts (acknowledge) and incidents (list, detail,
resolve). An interface: imports the incidents' selectors and services and pipeline.held."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from bounces.incidents import alerts


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
