"""RFC 5965 Abuse Reporting Format (feedback loop) reports, and a few non-standard relatives."""

from __future__ import annotations

import re

from .common import Rec, norm_address
from .message import Mail

# Feedback-Types that are no complaint by the recipient: RFC 6591 authentication failure
# reports (DMARC "ruf"), RFC 5965 "not-spam" (a message wrongly filtered)
NOT_COMPLAINTS = frozenset({"auth-failure", "not-spam", "dkim", "spf"})
_FIELD = re.compile(r"^([A-Za-z][\w-]*)\s*:\s*(.*)$", re.M)
_HM_RECIPIENT = re.compile(r"^X-HmXmrOriginalRecipient\s*:\s*(\S+)", re.I | re.M)
_TO_LINE = re.compile(r"^To\s*:\s*(.+(?:\n[ \t].+)*)", re.I | re.M)


def is_arf(mail: Mail) -> bool:
    """A feedback report: report-type feedback-report, a feedback part, or Hotmail's old form."""
    if mail.feedback_texts or mail.report_type == "feedback-report":
        return True
    if mail.header("x-apple-unsubscribe").strip().lower() == "true":
        return True
    # Hotmail/Outlook.com JMRP: a complaint wrapping the original with its reporter headers
    return bool(
        mail.returned
        and "complaint about message from" in mail.subject.lower()
        and any(_HM_RECIPIENT.search(t) for t in mail.returned)
    )


def parse(mail: Mail) -> list[Rec]:
    """One record per complained-about recipient (one with no recipient if none is given)."""
    fields: dict[str, list[str]] = {}
    for text in mail.feedback_texts:
        for m in _FIELD.finditer(text):
            fields.setdefault(m.group(1).lower(), []).append(m.group(2).strip())
    ftype = (fields.get("feedback-type") or [""])[0].lower() or None
    if mail.header("x-apple-unsubscribe").strip().lower() == "true":
        ftype = ftype or "opt-out"
        rcpt = norm_address(mail.header("from"))
        return [Rec(recipient=rcpt, feedback_type=ftype, reason="feedback")]
    if not ftype:
        ftype = "abuse"
    rcpts: list[str] = []
    for name in ("original-rcpt-to", "removal-recipient"):
        for v in fields.get(name, []):
            a = norm_address(v)
            if a and a not in rcpts:
                rcpts.append(a)
    if not rcpts:
        for text in mail.returned:
            m = _HM_RECIPIENT.search(text)
            if m and norm_address(m.group(1)):
                rcpts.append(norm_address(m.group(1)) or "")
                break
            head = text.split("\n\n", 1)[0]
            m = _TO_LINE.search(head)
            if m:
                a = norm_address(m.group(1))
                if a:
                    rcpts.append(a)
                    break
    if not rcpts:
        return [Rec(recipient=None, feedback_type=ftype, reason="feedback")]
    return [Rec(recipient=a, feedback_type=ftype, reason="feedback") for a in rcpts]
