"""Every way in gives the same Bounce rows and the same contact actions as the mailbox path
for the same notice: a mailbox (maildir), the SMTP receiver, a PowerMTA record pushed over
HTTP, a PowerMTA file, an ESP webhook, a Postfix log line and a send-time refusal."""

from __future__ import annotations

import base64
import json
import mailbox as stdlib_mailbox
import smtplib
from pathlib import Path

import pytest
from django.core.management import call_command

from bounces.intake.mailbox import process_mailbox
from bounces.intake.notices import process_notices
from bounces.intake.refusals import record_send_refusal
from bounces.models import Bounce, BounceSettings, Integration, Mailbox
from contacts.models import Contact, Subscription, Suppression
from tests.pipeline.conftest import arf

from .conftest import RETURN_DOMAIN, dsn, send

pytestmark = pytest.mark.postgres  # runs on SQLite and again on PostgreSQL

SECRET = "hooks:same-outcome"
CASES = {
    "hard": {"status": "5.1.1", "code": "550",
             "text": "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"},
    "soft": {"status": "4.2.2", "code": "452", "text": "452 4.2.2 <{rcpt}>: Mailbox full, quota exceeded"},
}
SOURCES = ["mailbox", "smtpd", "pmta_http", "pmta_file", "postmark", "postfix", "refusal"]


def _outcome(sent) -> tuple:
    """What the operator sees: the bounce row (ids aside) and the contact afterwards."""
    bounce = Bounce.objects.get(contact_id=sent.contact_id)
    contact = Contact.objects.get(pk=sent.contact_id)
    subscribed = Subscription.objects.filter(contact=contact, status="subscribed").exists() \
        if hasattr(Subscription, "status") else None
    return (
        bounce.kind, bounce.reason, bounce.status_code, bounce.counted, bounce.state, sorted(bounce.actions_taken),
        bounce.sent_message_id == sent.pk, bounce.campaign_id == sent.campaign_id,
        contact.status, contact.has_bounced, contact.hard_bounce_count, contact.soft_bounce_count, subscribed,
        Suppression.objects.filter(value=contact.email.lower()).values_list("reason", flat=True).first(),
    )


def _via_mailbox(tmp_path: Path, raw: bytes) -> None:
    box = stdlib_mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    box.add(raw)
    mb = Mailbox.objects.create(name=f"box {tmp_path.name}", protocol="maildir", path=str(tmp_path / "Maildir"))
    run = process_mailbox(mailbox_id=mb.pk)
    assert run.status == "succeeded", run.error_log


def _via_smtp(receiver, raw: bytes, token: str) -> None:
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.ehlo("mx.example.net")
        smtp.mail("")
        smtp.rcpt(f"bounces+{token}@{RETURN_DOMAIN}")
        assert smtp.data(raw)[0] == 250
    process_notices(sources=["smtpd"])


def _pmta_csv(sent, case) -> str:
    text = case["text"].format(rcpt=sent.email).replace('"', '""')
    return ("type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,jobId,header_X-Bouncemgr-Token\n"
            f'b,2026-12-06 10:00:00+0000,news@example.org,{sent.email},failed,{case["status"]},'
            f'"smtp;{text}",dns;mx.example.net,,spring,{sent.token}\n')


def _run(source: str, sent, case, tmp_path, receiver, client, settings, capture) -> None:
    text = case["text"].format(rcpt=sent.email)
    if source == "mailbox":
        _via_mailbox(tmp_path, dsn(sent.email, token=sent.token, status=case["status"], diagnostic=case["text"]))
    elif source == "smtpd":
        _via_smtp(receiver, dsn(sent.email, token=sent.token, status=case["status"], diagnostic=case["text"]),
                  sent.token)
    elif source == "pmta_file":
        path = tmp_path / "acct.csv"
        path.write_text(_pmta_csv(sent, case))
        call_command("import_accounting", str(path))
    elif source == "pmta_http":
        item = Integration(name=f"i{sent.pk}")
        token = item.set_new_token()
        item.save()
        with capture(execute=True):
            r = client.post("/intake/accounting/", data=_pmta_csv(sent, case), content_type="text/csv",
                            HTTP_AUTHORIZATION=f"Bearer {token}")
        assert r.status_code == 200, r.content
    elif source == "postmark":
        settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
        body = {"RecordType": "Bounce", "ID": sent.pk, "Type": "HardBounce" if case["status"][0] == "5" else
                "SoftBounce", "MessageID": "pm-1", "Email": sent.email, "Details": f"smtp; {text}",
                "Description": "", "BouncedAt": "2026-12-06T10:00:01Z", "Metadata": {"bouncemgr_token": sent.token}}
        with capture(execute=True):
            r = client.post("/intake/esp/postmark/tracking/", data=json.dumps(body), content_type="application/json",
                            HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
        assert r.status_code == 200
    elif source == "postfix":
        path = tmp_path / "mail.log"
        path.write_text(
            f"Dec  6 10:00:01 mail postfix/cleanup[1]: 4AB12: message-id=<{sent.message_id}>\n"
            f"Dec  6 10:00:02 mail postfix/smtp[2]: 4AB12: to=<{sent.email}>, relay=mx.example.net[192.0.2.1]:25, "
            f"delay=1, delays=0/0/0/1, dsn={case['status']}, status=bounced (host mx.example.net[192.0.2.1] "
            f"said: {text} (in reply to RCPT TO command))\n")
        call_command("import_accounting", str(path))
    elif source == "refusal":
        record_send_refusal(sent_message=sent, reply_code=int(case["code"]), enhanced_status=case["status"],
                            text=text[4:], remote_mta="mx.example.net")


@pytest.mark.parametrize("case", list(CASES))
def test_every_source_gives_the_mailbox_outcome(case, receiver, campaign, client, settings, tmp_path, eager,
                                                django_capture_on_commit_callbacks):
    outcomes = {}
    for source in SOURCES:
        if source == "postfix" and case == "soft":
            continue  # Postfix logs only permanent failures as status=bounced
        sent = send(campaign, f"{source}-{case}@example.net")
        where = tmp_path / source
        where.mkdir()
        _run(source, sent, CASES[case], where, receiver, client, settings, django_capture_on_commit_callbacks)
        outcomes[source] = _outcome(sent)
    expected = outcomes["mailbox"]
    assert expected[0] == case
    for source, got in outcomes.items():
        assert got == expected, f"{source}: {got} != mailbox: {expected}"


@pytest.mark.parametrize("complaint_actions", [None, []], ids=["default policy", "policy says nothing"])
def test_a_complaint_suppresses_whichever_way_it_arrives(complaint_actions, receiver, campaign, client, settings,
                                                        tmp_path, eager, django_capture_on_commit_callbacks):
    """Issue 16: complaints from any source always suppress, even when the operator set the
    complaint policy to do nothing."""
    if complaint_actions is not None:
        BounceSettings.objects.update_or_create(pk=BounceSettings.load().pk,
                                                defaults={"complaint_actions": complaint_actions})
    outcomes = {}
    arf_mail = sent = send(campaign, "arf-box@example.net")
    _via_mailbox(tmp_path, arf(sent.email, token=sent.token))
    outcomes["mailbox"] = _outcome(arf_mail)

    sent = send(campaign, "arf-smtp@example.net")
    _via_smtp(receiver, arf(sent.email, token=sent.token), sent.token)
    outcomes["smtpd"] = _outcome(sent)

    sent = send(campaign, "fbl@example.net")
    path = tmp_path / "fbl.csv"
    path.write_text("type,timeLogged,orig,rcpt,feedbackType,format,header_X-Bouncemgr-Token\n"
                    f"f,2026-12-06 11:00:00+0000,news@example.org,{sent.email},abuse,arf,{sent.token}\n")
    call_command("import_accounting", str(path))
    outcomes["pmta f record"] = _outcome(sent)

    sent = send(campaign, "ses-complaint@example.net")
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False}
    event = {"notificationType": "Complaint", "mail": {"messageId": "x", "destination": [sent.email], "headers": [
        {"name": "X-Bouncemgr-Token", "value": sent.token}]}, "complaint": {
        "complainedRecipients": [{"emailAddress": sent.email}], "complaintFeedbackType": "abuse"}}
    body = {"Type": "Notification", "MessageId": "sns-c1", "Message": json.dumps(event),
            "Timestamp": "2026-12-06T10:00:02.000Z"}
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/intake/esp/amazon_ses/tracking/", data=json.dumps(body), content_type="application/json",
                        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification", HTTP_X_AMZ_SNS_MESSAGE_ID="sns-c1",
                        HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
    assert r.status_code == 200
    process_notices()  # (the queued task, when no worker runs it inline)
    outcomes["ses"] = _outcome(sent)

    for source, got in outcomes.items():
        assert got[0] == "complaint" and got[-1] == "complaint", f"{source}: {got}"  # suppressed
        assert got[:8] == outcomes["mailbox"][:8] and got[8:] == outcomes["mailbox"][8:], source
