"""Amazon SES (and WorkMail): DSNs whose diagnostic wraps the remote reply as
"5.3.0 - Other mail system problem 550-'reply text' (delivery attempts: 0)", plus SES's
JSON notifications (bounceType / bouncedRecipients) for feeds forwarded by mail."""

from __future__ import annotations

import json
import re

from ..common import Rec, clean_smtp_reply, find_replycode, find_status, norm_address, norm_status
from ..message import Mail
from ..recognise import SES_EVENT
from ._text import merge_dsn, region

NAME = "amazonses"
_WRAPPED = re.compile(r"^\s*([245]\.\d+\.\d+)\s+-\s+[^']*?(\d{3})[- ]'(.*?)'?\s*(?:\(delivery attempts: \d+\))?\s*$", re.S)
_INTRO = re.compile(r"The following message to <([^<>\s]+)> was undeliverable", re.I)
_WORKMAIL = re.compile(r"An error occurred while trying to deliver the mail to the following recipients:\s*\n", re.I)


# An SES event as JSON, bare or inside an SNS envelope where its quotes are escaped
# (\"notificationType\":\"Bounce\"), sent by SNS's e-mail subscription or forwarded as a
# message body or a .json attachment by anybody.
_JSON_EVENT = SES_EVENT


def match(mail: Mail) -> bool:
    """SES/WorkMail senders or wording, or an SES event in JSON from any sender."""
    lc = mail.lc_head
    return (
        "amazonses.com" in mail.lc_from
        or "x-ses-outgoing" in mail.headers
        or "was undeliverable" in lc and "the following message to <" in lc
        or "error occurred while trying to deliver the mail to the following recipients" in lc
        or ("notificationtype" in lc or "eventtype" in lc) and _JSON_EVENT.search(mail.body[:20000]) is not None
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Unwrap SES diagnostics; read JSON notifications and WorkMail's inline DSN."""
    if _JSON_EVENT.search(mail.body[:20000]):
        recs = _json(mail.body)
        if recs:
            return recs
    if not dsn:
        text = region(mail.body, _WORKMAIL)
        if text:
            from ..rfc3464 import records_from_text

            _, dsn = records_from_text(text)
    for r in dsn:
        m = _WRAPPED.match(r.diagnostic)
        if m:
            inner = clean_smtp_reply(m.group(3))
            r.replycode = m.group(2)
            st = find_status(inner)
            r.status = st or r.status or m.group(1)
            r.diagnostic = inner
        elif not r.replycode:
            r.replycode = find_replycode(r.diagnostic)
    if not dsn:
        m = _INTRO.search(mail.body)
        if m:
            reason = region(mail.body, r"The reason for the problem:\s*\n")
            rec = Rec(recipient=norm_address(m.group(1)), action="failed", diagnostic=clean_smtp_reply(reason[:500]))
            rec.status = find_status(rec.diagnostic)
            return [rec]
    return merge_dsn(dsn, [])


def _json(body: str) -> list[Rec]:
    data = None
    start = body.find("{")
    tries = 0
    while start >= 0 and data is None and tries < 8:
        # SNS-by-mail wraps long lines; try the text as is, then with the line breaks
        # removed; a forwarded notice has other text (and braces) before the JSON
        tries += 1
        for text in (body[start:], body[start:].replace("\n ", "").replace("\n", "")):
            try:
                found, _ = json.JSONDecoder().raw_decode(text)
            except ValueError:
                continue
            if isinstance(found, dict) and ("Message" in found or "notificationType" in found or "eventType" in found):
                data = found
                break
        start = body.find("{", start + 1)
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("Message"), str):  # wrapped in an SNS envelope
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return []
    recs: list[Rec] = []
    ntype = str(data.get("notificationType") or data.get("eventType") or "")
    if ntype == "Bounce" and isinstance(data.get("bounce"), dict):
        b = data["bounce"]
        for r in b.get("bouncedRecipients") or []:
            if not isinstance(r, dict):
                continue
            diag = str(r.get("diagnosticCode") or "")
            rec = Rec(
                recipient=norm_address(str(r.get("emailAddress") or "")),
                action=str(r.get("action") or "failed").lower(),
                status=norm_status(str(r.get("status") or "")) or find_status(diag),
                diagnostic=clean_smtp_reply(re.sub(r"^smtp;\s*", "", diag, flags=re.I)),
            )
            rec.replycode = find_replycode(rec.diagnostic)
            recs.append(rec)
    elif ntype == "Complaint" and isinstance(data.get("complaint"), dict):
        c = data["complaint"]
        for r in c.get("complainedRecipients") or []:
            if isinstance(r, dict):
                recs.append(Rec(recipient=norm_address(str(r.get("emailAddress") or "")), reason="feedback",
                                feedback_type=str(c.get("complaintFeedbackType") or "abuse")))
    elif ntype == "Delivery" and isinstance(data.get("delivery"), dict):
        d = data["delivery"]
        for a in d.get("recipients") or []:
            recs.append(Rec(recipient=norm_address(str(a)), action="delivered", status="2.6.0",
                            diagnostic=str(d.get("smtpResponse") or ""), replycode="250"))
    return recs
