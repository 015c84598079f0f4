"""Staff self-service: set up or remove one's own two-factor device (docs/security.md)."""

from __future__ import annotations

import base64

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .admin_site import two_factor_required

PENDING = "bouncemgr_pending_totp"


def _secret(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


@never_cache
@sensitive_post_parameters("token")
@staff_member_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up a TOTP device (shown once, confirmed by a code) or remove it (with a code)."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    pending = TOTPDevice.objects.filter(user=user, confirmed=False, pk=request.session.get(PENDING)).first()
    action = request.POST.get("action") if request.method == "POST" else None
    token = request.POST.get("token", "").strip()

    if action == "start" and confirmed is None:
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        pending = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
        request.session[PENDING] = pending.pk
    elif action == "confirm" and pending is not None:
        if pending.verify_token(token):
            pending.confirmed = True
            pending.save(update_fields=["confirmed"])
            request.session.pop(PENDING, None)
            otp_login(request, pending)
            messages.success(request, "Two-factor login is on: from now on you log in with a code from the app.")
            return redirect("two_factor")
        messages.error(request, "That code is not right. Check the phone's clock and enter the current code.")
    elif action == "remove" and confirmed is not None:
        if two_factor_required():
            messages.error(request, "Two-factor login is required on this instance: the device cannot be removed.")
        elif confirmed.verify_token(token):
            confirmed.delete()
            messages.success(request, "Two-factor login is off: you log in with your password alone.")
            return redirect("two_factor")
        else:
            messages.error(request, "That code is not right.")
    elif action:
        return redirect("two_factor")

    context = {"confirmed": confirmed, "pending": pending if confirmed is None else None,
               "required": two_factor_required()}
    if context["pending"] is not None:
        context["secret"] = _secret(pending)
        context["config_url"] = pending.config_url
    return render(request, "bouncemgr/two_factor.html", context)
