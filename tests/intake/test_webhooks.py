"""ESP webhooks through anymail's views: signed (or basic-auth) requests for Amazon SES,
SendGrid, Mailgun and Postmark, through the Django test client, as the provider sends them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bounces.models import Bounce, RawMessage
from contacts.models import Contact, Suppression

from .conftest import send

pytestmark = pytest.mark.postgres  # runs on SQLite and again on PostgreSQL

SECRET = "hooks:s3cret-webhook-pass"
AUTH = "Basic " + base64.b64encode(SECRET.encode()).decode()
MAILGUN_KEY = "key-mailgun-signing-test"
DIAG = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"


@pytest.fixture
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def webhooks(settings, eager, sendgrid_key):
    public = sendgrid_key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": SECRET,
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(public).decode(),
    }


# --------------------------------------------------------------------------- payloads
def ses(rcpt: str, token: str, *, message_id: str = "sns-1", kind: str = "Bounce") -> tuple[str, dict, str]:
    mail = {"messageId": "0100018c-ses-id", "destination": [rcpt], "timestamp": "2026-12-06T10:00:00.000Z",
            "headers": [{"name": "X-Bouncemgr-Token", "value": token}]}
    if kind == "Bounce":
        event = {"notificationType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": [
                {"emailAddress": rcpt, "action": "failed", "status": "5.1.1",
                 "diagnosticCode": DIAG.format(rcpt=rcpt)}],
            "timestamp": "2026-12-06T10:00:01.000Z", "reportingMTA": "dns; a8-1.smtp-out.amazonses.com"}}
    else:
        event = {"notificationType": "Complaint", "mail": mail, "complaint": {
            "complainedRecipients": [{"emailAddress": rcpt}], "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-06T10:00:01.000Z"}}
    body = {"Type": "Notification", "MessageId": message_id, "TopicArn": "arn:aws:sns:us-east-1:123:ses",
            "Message": json.dumps(event), "Timestamp": "2026-12-06T10:00:02.000Z", "SignatureVersion": "1"}
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
               "HTTP_AUTHORIZATION": AUTH}
    return "/intake/esp/amazon_ses/tracking/", headers, json.dumps(body)


def sendgrid(rcpt: str, token: str, key) -> tuple[str, dict, str]:
    body = json.dumps([{"email": rcpt, "event": "bounce", "type": "bounce", "sg_event_id": "sg-evt-1",
                        "sg_message_id": "sg-msg-1", "smtp-id": "<sg-msg-1@sendgrid>", "timestamp": 1765000000,
                        "status": "5.1.1", "reason": DIAG.format(rcpt=rcpt)[6:], "bouncemgr_token": token}])
    stamp = str(int(time.time()))
    signature = key.sign(stamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))
    headers = {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
               "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": stamp, "HTTP_AUTHORIZATION": AUTH}
    return "/intake/esp/sendgrid/tracking/", headers, body


def mailgun(rcpt: str, token: str, *, key: str = MAILGUN_KEY) -> tuple[str, dict, str]:
    stamp, nonce = str(int(time.time())), "a" * 50
    sig = hmac.new(key.encode(), f"{stamp}{nonce}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": stamp, "token": nonce, "signature": sig}, "event-data": {
        "event": "failed", "severity": "permanent", "reason": "bounce", "recipient": rcpt, "id": "mg-1",
        "timestamp": 1765000000.0, "user-variables": {"bouncemgr_token": token},
        "message": {"headers": {"message-id": "mg-msg-1@example.org", "to": rcpt}},
        "delivery-status": {"code": 550, "message": DIAG.format(rcpt=rcpt)[6:], "description": ""}}}
    return "/intake/esp/mailgun/tracking/", {"HTTP_AUTHORIZATION": AUTH}, json.dumps(body)


def postmark(rcpt: str, token: str) -> tuple[str, dict, str]:
    body = {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": rcpt,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": DIAG.format(rcpt=rcpt), "BouncedAt": "2026-12-06T10:00:01Z",
            "Metadata": {"bouncemgr_token": token}, "Inactive": True, "CanActivate": True}
    return "/intake/esp/postmark/tracking/", {"HTTP_AUTHORIZATION": AUTH}, json.dumps(body)


def _post(client, request, django_capture_on_commit_callbacks):
    url, headers, body = request
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, data=body, content_type="application/json", **headers)


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("esp", ["amazon_ses", "sendgrid", "mailgun", "postmark"])
def test_a_signed_bounce_webhook_is_a_hard_bounce_and_a_replay_is_a_no_op(
        esp, client, webhooks, campaign, sendgrid_key, django_capture_on_commit_callbacks):
    sent = send(campaign, f"{esp}@example.net")
    build = {"amazon_ses": lambda: ses(sent.email, sent.token), "postmark": lambda: postmark(sent.email, sent.token),
             "sendgrid": lambda: sendgrid(sent.email, sent.token, sendgrid_key),
             "mailgun": lambda: mailgun(sent.email, sent.token)}[esp]

    assert _post(client, build(), django_capture_on_commit_callbacks).status_code == 200
    assert _post(client, build(), django_capture_on_commit_callbacks).status_code == 200  # replayed

    bounce = Bounce.objects.get()
    assert (bounce.kind, bounce.reason, bounce.status_code, bounce.sent_message_id, bounce.counted) == (
        "hard", "userunknown", "5.1.1", sent.pk, True)
    raw = RawMessage.objects.get()
    assert raw.source == "webhook" and raw.state == "processed"
    assert b"esp_event" in bytes(raw.raw)  # the provider's payload is kept
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.has_bounced and contact.hard_bounce_count == 1


def test_a_complaint_webhook_always_suppresses(client, webhooks, campaign, django_capture_on_commit_callbacks):
    sent = send(campaign, "angry@example.net")
    assert _post(client, ses(sent.email, sent.token, kind="Complaint"), django_capture_on_commit_callbacks
                 ).status_code == 200
    assert Bounce.objects.get().kind == "complaint"
    assert Suppression.objects.filter(value="angry@example.net", reason="complaint").exists()


@pytest.mark.parametrize("tamper", ["no-auth", "wrong-signature"])
@pytest.mark.parametrize("esp", ["sendgrid", "mailgun", "postmark", "amazon_ses"])
def test_unauthenticated_or_badly_signed_webhooks_are_refused(
        esp, tamper, client, webhooks, campaign, sendgrid_key, django_capture_on_commit_callbacks):
    sent = send(campaign, "x@example.net")
    if esp == "sendgrid":
        other = ec.generate_private_key(ec.SECP256R1())
        url, headers, body = sendgrid(sent.email, sent.token, other if tamper == "wrong-signature" else sendgrid_key)
    elif esp == "mailgun":
        url, headers, body = mailgun(sent.email, sent.token, key="wrong" if tamper == "wrong-signature" else MAILGUN_KEY)
    elif esp == "postmark":
        url, headers, body = postmark(sent.email, sent.token)
    else:
        url, headers, body = ses(sent.email, sent.token)
    if tamper == "no-auth" or esp in ("postmark", "amazon_ses"):
        headers = {**headers, "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hooks:wrong").decode()}
        if tamper == "no-auth":
            headers.pop("HTTP_AUTHORIZATION")
    response = client.post(url, data=body, content_type="application/json", **headers)
    assert response.status_code in (400, 401)
    assert not RawMessage.objects.exists()


def test_webhooks_answer_404_until_a_secret_is_configured(client, settings, campaign):
    settings.ANYMAIL = {}
    sent = send(campaign, "y@example.net")
    url, headers, body = postmark(sent.email, sent.token)
    assert client.post(url, data=body, content_type="application/json", **headers).status_code == 404


@pytest.fixture
def sns_endpoint():
    """A loopback HTTP server standing in for Amazon SNS's SubscribeURL."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<ConfirmSubscriptionResponse/>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


def _confirmation(url: str, auth: str = AUTH) -> tuple[dict, str]:
    body = {"Type": "SubscriptionConfirmation", "MessageId": "sns-sub-1", "Token": "tok",
            "TopicArn": "arn:aws:sns:us-east-1:123:ses", "SubscribeURL": url,
            "Message": "You have chosen to subscribe ...", "Timestamp": "2026-12-06T10:00:00.000Z"}
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "SubscriptionConfirmation", "HTTP_X_AMZ_SNS_MESSAGE_ID": "sns-sub-1",
               "HTTP_AUTHORIZATION": auth}
    return headers, json.dumps(body)


def test_sns_subscription_confirmation_visits_the_subscribe_url_only_when_allowed(
        client, webhooks, settings, sns_endpoint, db):
    base, hits = sns_endpoint
    url = "/intake/esp/amazon_ses/tracking/"
    headers, body = _confirmation(f"{base}/?Action=ConfirmSubscription&Token=tok")

    # off (as in these tests by default): acknowledged, nothing fetched
    assert client.post(url, data=body, content_type="application/json", **headers).status_code == 200
    assert hits == []

    settings.ANYMAIL = {**settings.ANYMAIL, "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": True}
    # on, but the URL is not Amazon's: refused, nothing fetched
    assert client.post(url, data=body, content_type="application/json", **headers).status_code == 400
    assert hits == []

    settings.BOUNCE_SNS_SUBSCRIBE_URL_PATTERN = r"^http://127\.0\.0\.1:\d+/"
    assert client.post(url, data=body, content_type="application/json", **headers).status_code == 200
    assert hits == ["/?Action=ConfirmSubscription&Token=tok"]
    assert not RawMessage.objects.exists()
