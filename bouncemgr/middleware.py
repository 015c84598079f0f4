"""Project middleware: health probe, two-factor enforcement, private caching (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control

Handler = Callable[[HttpRequest], HttpResponse]


class HealthCheckMiddleware:
    """Answer GET /healthz before host validation and the HTTPS redirect.

    The container health check calls http://127.0.0.1:8000/healthz, a host that is not in
    ALLOWED_HOSTS in production and a scheme that SECURE_SSL_REDIRECT would redirect: the
    probe must not need either (nor trust an X-Forwarded-Proto it sends). It says only
    whether the database answers.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            response = JsonResponse({"status": "ok"})
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)


class RequireTwoFactorMiddleware:
    """With REQUIRE_2FA, a signed-in user not verified by an OTP device sees only the login.

    The admin site checks verification itself (bouncemgr.admin_site); this covers the staff
    pages outside it (results, bounce detail, rules editor...), which only ask for staff.
    Place after django_otp.middleware.OTPMiddleware.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if getattr(settings, "REQUIRE_2FA", False):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and not user.is_verified():
                login_url = reverse("admin:login")
                if request.path not in (login_url, reverse("admin:logout")):
                    return redirect_to_login(request.get_full_path(), login_url)
        return self.get_response(request)


class PrivateCacheMiddleware:
    """Cache-Control: private, no-store on every page and export served to a signed-in user.

    Pages show addresses, bounces and mail; a shared proxy or the browser's disk cache must
    not keep them. Static files never get here (WhiteNoise answers them earlier).
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response
