"""Intake endpoints (interfaces): records pushed by Logstash / Vector (`push_records`) and ESP
webhooks through anymail's tracking views, which verify and normalise; the intake stores.

anymail authenticates each request as the provider requires (basic auth with
`ANYMAIL["WEBHOOK_SECRET"]` for every provider; plus the signature with Mailgun's signing
key or SendGrid's verification key when configured) and sends one `tracking` signal per
event. `on_tracking` turns bounce-like events into notices (`esp.anymail_notice`) keyed by
the provider's event id, so a replayed webhook is a no-op, and hands them to the intake.

A provider route answers 404 until it is configured: no webhook secret, no webhook
(anymail would only warn and accept anyone); Mailgun also needs its signing key.

Amazon SES arrives through SNS. anymail confirms SNS subscriptions with boto3, which
bouncemgr does not ship; `SESTrackingWebhookView` confirms instead by fetching the
`SubscribeURL` SNS sends (AWS's documented alternative), only for an authenticated request
and only when the URL matches `BOUNCE_SNS_SUBSCRIBE_URL_PATTERN` (https on an
sns.<region>.amazonaws.com host by default; tests point it at a loopback server), and only
when `ANYMAIL["AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS"]` is on.
"""

from __future__ import annotations

import functools
import logging
import re
import urllib.request
from collections.abc import Callable
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.utils import get_anymail_setting
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBaseWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..intake.accounting import BadPayload, authenticate, receive_pushed

log = logging.getLogger(__name__)

try:  # Django >= 5.1 (LoginRequiredMiddleware)
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # pragma: no cover
    def login_not_required(view):  # type: ignore[no-redef]
        return view


#: Seconds a sender is asked to wait before retrying while the database refuses writes.
RETRY_AFTER_SECONDS = 60


def _storage_refused(exc: DatabaseError) -> JsonResponse:
    """503 with Retry-After: nothing was stored, the sender (an ESP, Logstash) retries; one log
    line, no traceback (the database's own words, cut)."""
    log.warning("intake: the database refused to store a pushed notice (the sender will retry): %s",
                " ".join(str(exc).split())[:300])
    response = JsonResponse({"error": "storage is unavailable for now; nothing was stored, retry later"}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _503_while_storage_is_refused(view: Callable) -> Callable:
    """`view`, answering 503 with Retry-After when the database refuses a write."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DatabaseError as exc:
            return _storage_refused(exc)

    return wrapped


def _token(request: HttpRequest) -> str:
    auth = request.headers.get("Authorization", "")
    kind, _, value = auth.partition(" ")
    if kind.lower() == "bearer":
        return value.strip()
    return request.headers.get("X-Bouncemgr-Integration-Token", "").strip()


@csrf_exempt
@login_not_required
@require_POST
@_503_while_storage_is_refused
def push_records(request: HttpRequest) -> JsonResponse:
    """POST accounting records: CSV (header line first or remembered), JSON object / array /
    lines, or Postfix / Exim log lines (text/plain). Bearer token of an Integration."""
    integration = authenticate(_token(request))
    if integration is None:
        response = JsonResponse({"error": "missing or invalid integration token"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="bouncemgr intake"'
        return response
    length = int(request.headers.get("Content-Length") or 0)
    if length > settings.BOUNCE_INTAKE_MAX_BODY:
        return JsonResponse({"error": f"body over {settings.BOUNCE_INTAKE_MAX_BODY} bytes"}, status=413)
    body = request.read(settings.BOUNCE_INTAKE_MAX_BODY + 1)
    if len(body) > settings.BOUNCE_INTAKE_MAX_BODY:
        return JsonResponse({"error": f"body over {settings.BOUNCE_INTAKE_MAX_BODY} bytes"}, status=413)
    try:
        report = receive_pushed(integration=integration, body=body, content_type=request.content_type or "")
    except BadPayload as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"records": report.records, "notices": report.notices, "stored": report.stored,
                         "duplicates": report.duplicates, "skipped": report.skipped})


class SESTrackingWebhookView(AmazonSESTrackingWebhookView):
    """anymail's SES tracking view without boto3 (see module doc)."""

    def __init__(self, **kwargs: Any) -> None:
        self.auto_confirm_enabled = get_anymail_setting(
            "auto_confirm_sns_subscriptions", esp_name=self.esp_name, kwargs=kwargs, default=False)
        self.session_params, self.client_params = {}, {}
        AnymailBaseWebhookView.__init__(self, **kwargs)

    def auto_confirm_sns_subscription(self, sns_message: dict) -> None:
        topic = str(sns_message.get("TopicArn", ""))[:256]
        if not self.auto_confirm_enabled:
            log.warning("SNS subscription to %s not confirmed: auto-confirm is off (confirm it in the SNS console)",
                        topic)
            return
        if not self.basic_auth:
            raise AnymailWebhookValidationFailure("SNS subscription confirmation needs ANYMAIL WEBHOOK_SECRET")
        url = sns_message.get("SubscribeURL")
        if not isinstance(url, str) or not re.match(settings.BOUNCE_SNS_SUBSCRIBE_URL_PATTERN, url):
            raise AnymailWebhookValidationFailure("SNS SubscribeURL is not an Amazon SNS address")
        # Authenticated request, URL on Amazon's SNS host: visiting it confirms.
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - pattern-checked above
            response.read(65536)
        log.info("SNS subscription to %s confirmed", topic)


def _configured(view: Callable, *, needs: tuple[str, ...] = ()) -> Callable:
    """`view`, answering 404 while the webhook secret (and `needs`) are not set."""

    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        anymail = getattr(settings, "ANYMAIL", {}) or {}
        if not anymail.get("WEBHOOK_SECRET") or any(not anymail.get(name) for name in needs):
            raise Http404("webhook not configured")
        return _503_while_storage_is_refused(view)(request, *args, **kwargs)

    guarded.csrf_exempt = True  # type: ignore[attr-defined]
    guarded.login_required = False  # type: ignore[attr-defined]
    return guarded


#: (url part, view) of the providers bouncemgr documents and tests.
PROVIDERS = [
    ("amazon_ses", _configured(SESTrackingWebhookView.as_view())),
    ("sendgrid", _configured(SendGridTrackingWebhookView.as_view())),
    ("mailgun", _configured(MailgunTrackingWebhookView.as_view(), needs=("MAILGUN_WEBHOOK_SIGNING_KEY",))),
    ("postmark", _configured(PostmarkTrackingWebhookView.as_view())),
]


app_name = "intake"
urlpatterns = [
    path("accounting/", push_records, name="push_records"),
    *[path(f"esp/{name}/tracking/", view, name=f"{name}_tracking") for name, view in PROVIDERS],
]
