"""The project's admin site: Django's, with two-factor login when REQUIRE_2FA is set.

Every model registers on `django.contrib.admin.site` as usual; bouncemgr.apps.AdminConfig
makes that default site an instance of this class. With REQUIRE_2FA=true the login form
asks for a TOTP code (django-otp) and only users verified by a device may use the admin
(django_otp.admin.OTPAdminSite's rule). The setting is read per request, so tests and a
changed environment need no other site.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def two_factor_required() -> bool:
    return bool(getattr(settings, "REQUIRE_2FA", False))


class TwoFactorLoginForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form; a user with a single device need not pick it.

    Username, password and code go in one submit. With several devices, the form asks which
    one after the password, as django-otp does.
    """

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device


class AdminSite(admin.AdminSite):
    site_header = "bouncemgr"
    site_title = "bouncemgr"
    index_title = "Bounce management"

    @property
    def login_form(self):  # type: ignore[override]
        return TwoFactorLoginForm if two_factor_required() else AdminAuthenticationForm

    @property
    def login_template(self):  # type: ignore[override]
        return OTPAdminSite.login_template if two_factor_required() else None

    def has_permission(self, request) -> bool:
        allowed = super().has_permission(request)
        if allowed and two_factor_required():
            return request.user.is_verified()
        return allowed
