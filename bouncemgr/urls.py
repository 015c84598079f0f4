"""URL configuration."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView

from campaigns import views as campaign_views

from . import views


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness/readiness probe for the container health check: answers when the DB does.

    bouncemgr.middleware.HealthCheckMiddleware answers /healthz first (before host checks
    and the HTTPS redirect); this view keeps the URL name."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    # The console's dashboard is the landing page; the admin's index (and so the admin's
    # "Home" links and the page after login) leads there too. Every model stays reachable
    # for superusers under Advanced.
    path("admin/", RedirectView.as_view(pattern_name="console:dashboard", permanent=False)),
    path("", include("console.urls")),
    path("healthz", healthz, name="healthz"),
    path("account/two-factor/", views.two_factor, name="two_factor"),
    path("admin/", admin.site.urls),
    path("campaigns/", include("campaigns.urls")),
    # a campaign recipient's unsubscribe link (public: the token is the key)
    path("unsubscribe/<str:token>/", campaign_views.unsubscribe, name="unsubscribe"),
    path("contacts/", include("contacts.urls")),
    path("bounces/", include("bounces.urls")),
    path("api/v1/", include("api.urls")),
    path("intake/", include("bounces.views.intake")),
]
