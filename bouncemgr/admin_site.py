"""The project's admin site: Django's, with two-factor login (django-otp, TOTP).

Every model registers on `django.contrib.admin.site` as usual; bouncemgr.apps.AdminConfig
makes that default site an instance of this class.

- A user who set up a device (/account/two-factor/, or `manage.py totp_device`) always
  logs in with its code: the opt-in is real even when nothing is required.
- With REQUIRE_2FA=true every user needs a device and its code, and only sessions verified
  by a device may use the admin (django_otp.admin.OTPAdminSite's rule).

The setting is read per request, so tests and a changed environment need no other site.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django_otp import devices_for_user, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm


def two_factor_required() -> bool:
    return bool(getattr(settings, "REQUIRE_2FA", False))


def needs_second_factor(user) -> bool:
    """Whether this user must prove a device: always under REQUIRE_2FA, else if they have one."""
    return two_factor_required() or user_has_device(user, confirmed=True)


class TwoFactorLoginForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form: the code field is asked of those who need it.

    A user with a single device need not pick it: username, password and code go in one
    submit. With several devices the form asks which one after the password, as django-otp
    does. A user without a device logs in with the password unless REQUIRE_2FA.
    """

    def clean(self):
        self.cleaned_data = super(OTPAdminAuthenticationForm, self).clean()
        user = self.get_user()
        if user is not None and needs_second_factor(user):
            self.clean_otp(user)
        return self.cleaned_data

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
    login_form = TwoFactorLoginForm
    login_template = "bouncemgr/login.html"

    def each_context(self, request):
        return {**super().each_context(request), "two_factor_required": two_factor_required()}

    def has_permission(self, request) -> bool:
        allowed = super().has_permission(request)
        if allowed and two_factor_required():
            return request.user.is_verified()
        return allowed
