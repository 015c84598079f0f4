"""Small shared pieces of the engine: the mutable per-recipient record and text helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(slots=True)
class Rec:
    """What a detector found about one recipient, before classification."""

    recipient: str | None = None
    action: str | None = None
    status: str | None = None
    replycode: str | None = None
    diagnostic: str = ""
    remote_mta: str | None = None
    reason: str | None = None  # set only by detectors that know it structurally (rare)
    feedback_type: str | None = None
    command: str | None = None  # SMTP command that failed (RCPT, DATA, ...), when known
    original: str | None = None  # DSN Original-Recipient when it differs from the recipient
    diag_type: str | None = None  # Diagnostic-Code type, lower-case ("smtp", "x-unix" ...)


# Enhanced status code (RFC 3463). Guarded so version numbers and IP addresses don't match.
STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_VERSION_BEFORE = re.compile(r"(?:version|release|ver\.?|\bv)\s*[:=]?\s*\(?$", re.I)
_CODE_WITH_STATUS = re.compile(r"(?<![\d.])([245]\d\d)[ -]+\(?#?[245]\.\d{1,3}\.\d{1,3}")
_CODE_LEAD = re.compile(r"(?:^|[\n;:>\]\)]|said|said:|error|reply)\s*\(?([245][0-5]\d)(?:[ -]|$|\)|:)", re.I)
ADDR_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.A)


def fold(text: str) -> str:
    """Collapse whitespace runs into one space and strip."""
    # str.split() splits on exactly the characters ``\s`` matches in a str pattern
    # (str.isspace), so this equals re.sub(r"\s+", " ", text).strip(), three times faster.
    return " ".join(text.split())


def find_status(text: str) -> str | None:
    """First plausible enhanced status code in ``text``, e.g. ``"5.1.1"``."""
    if not text:
        return None
    success = None
    for m in STATUS_RE.finditer(text):
        before = text[max(0, m.start() - 24) : m.start()]
        if ("v" in before or "V" in before or "ase" in before) and _VERSION_BEFORE.search(before):
            continue  # "X-Mailman-Version: 2.1.39", "v2.0.1": a version, not a status
        code = f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"
        if m.group(1) != "2":
            return code
        # a transcript answers MAIL FROM with "250 2.1.0 Ok" before it refuses RCPT TO: a
        # success code counts only when no failure code follows it
        success = success or code
    return success


def find_replycode(text: str) -> str | None:
    """First plausible SMTP reply code in ``text``, e.g. ``"550"``."""
    if not text:
        return None
    for pattern in (_CODE_WITH_STATUS, _CODE_LEAD):
        success = None
        for m in pattern.finditer(text):
            if m.group(1)[0] != "2":
                return m.group(1)
            success = success or m.group(1)  # "250 Ok" of an earlier command in a transcript
        if success:
            return success
    return None


def norm_status(value: str | None) -> str | None:
    """Normalise a Status field ("5.1.1 (user unknown)" -> "5.1.1"); None if not a code."""
    if not value:
        return None
    m = STATUS_RE.search(value)
    if not m:
        return None
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"


_ANGLE_ADDR = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")
_QUOTED_ADDR = re.compile(r'"[^"\s]+"@[\w-]+(?:\.[\w-]+)+')
_ADDR_CLEAN = re.compile(r"^(?:rfc822|rfc-822|smtp|x400|utf-8|unknown)\s*;\s*", re.I)


def norm_address(value: str | None) -> str | None:
    """Clean an address: no type prefix, no <>, quotes or trailing dots; domain lower-cased."""
    if not value:
        return None
    v = _ADDR_CLEAN.sub("", value.strip())
    m = _ANGLE_ADDR.search(v) if "<" in v else None
    q = _QUOTED_ADDR.search(v) if '"' in v else None
    if q:
        v = q.group(0)
    elif m:
        v = m.group(1)
    else:
        m = ADDR_RE.search(v)
        if m:
            v = m.group(0)
        elif v.count("@") == 1 and " " not in v.strip() and len(v) < 256:
            v = v.strip()  # malformed but still the address the bounce is about ("a@b..org")
        else:
            return None
    v = v.strip().strip("<>'()[]").rstrip(".,;:")
    if v.lower().startswith("mailto:"):
        v = v[7:]
    if "@" not in v:
        return None
    local, _, domain = v.rpartition("@")
    if local.startswith('"') and local.endswith('"') and len(local) > 2 and (
        ".." in local or local[1] == "." or local[-2] == "." or " " in local
    ):
        pass  # a quoted local part that needs its quotes (RFC 5321 4.1.2)
    else:
        local = local.strip("\"'<")
        if local.endswith("..."):
            return None  # "david...@gmail.com": an address elided by an archive, not one
    domain = domain.strip().rstrip(".>").lower()
    if not local or not domain or "." not in domain and domain != "localhost":
        return None
    return f"{local}@{domain}"


_ACTIONS = {
    "failed": "failed",
    "failure": "failed",
    "fail": "failed",
    "delayed": "delayed",
    "delay": "delayed",
    "delivered": "delivered",
    "relayed": "relayed",
    "expanded": "expanded",
    "deliverable": "delivered",
}


def norm_action(value: str | None) -> str | None:
    """Normalise an Action field value to the RFC 3464 words."""
    if not value:
        return None
    v = value.strip().lower().split()[0] if value.strip() else ""
    v = v.strip(";:.()")
    return _ACTIONS.get(v, v or None)


_MULTILINE_PREFIX = re.compile(r"(?m)^\s*([245]\d\d)-(?:([245]\.\d{1,3}\.\d{1,3})\s)?")


def clean_smtp_reply(text: str) -> str:
    """Join a multi-line SMTP reply (RFC 5321 4.2.1): one "550 5.7.1" in front, the repeated
    "550-5.7.1 " / "550 5.7.1 " prefixes of the following lines dropped."""
    if "-" not in text:
        return fold(text)
    first = _MULTILINE_PREFIX.search(text)
    if first is None:
        return fold(text)
    code, status = first.group(1), first.group(2)
    again = re.compile(rf"(?m)^\s*{code}[ -](?:{re.escape(status)}\s)?" if status else rf"(?m)^\s*{code}[ -]")
    lead = f"{code} {status} " if status else f"{code} "
    return fold(text[: first.start()] + " " + lead + again.sub(" ", text[first.end() :]))


# (needles, pattern, fixed command): the pattern can only match when one of the lower-case
# needles occurs in the lower-cased text, so a substring test skips most patterns cheaply.
_COMMAND_RES: tuple[tuple[tuple[str, ...], re.Pattern[str], str | None], ...] = (
    (("in reply to",), re.compile(r"in reply to (?:the )?(rcpt to|mail from|end of data|data|helo|ehlo|lhlo|starttls|auth|xforward|connect|greeting)", re.I), None),
    (("after ",), re.compile(r"after (?:the )?(rcpt to|mail from|end of data|data|initial connection|helo|ehlo|lhlo|starttls|auth|sending data block|pipelined (?:rcpt to|mail from|data))", re.I), None),
    # GMX and others: "after RCPT command", "after MAIL command"
    (("after ",), re.compile(r"after (rcpt|mail|data|helo|ehlo) command", re.I), None),
    (("did not like our ",), re.compile(r"did not like our (rcpt to|mail from|final data|data|helo|ehlo)", re.I), None),
    (("smtp:",), re.compile(r"smtp:(rcpt|mail|data|helo|ehlo|conn)\b", re.I), None),
    (("[rcpt_to]", "[mail_from]", "[data]", "[end_of_data]"),
     re.compile(r"\[(rcpt_to|mail_from|data|end_of_data)\]", re.I), None),
    ((">>>",), re.compile(r"(?m)^\s*>>> ?(rcpt|mail|data|helo|ehlo|lhlo|starttls|auth|quit|\.)\b", re.I), None),
    (("sender was rejected",), re.compile(r"\bsender was rejected", re.I), "MAIL"),
    (("my name was rejected",), re.compile(r"\bmy name was rejected", re.I), "HELO"),
    # qmail-remote's fixed phrases
    (("does not like recipient",), re.compile(r"\bdoes not like recipient", re.I), "RCPT"),
    (("failed on data command", "failed after i sent the message"),
     re.compile(r"\bfailed on DATA command|\bfailed after I sent the message", re.I), "DATA"),
    (("but greeting failed",), re.compile(r"\bbut greeting failed", re.I), "CONN"),
    (("while talking to ", "connecting to ", "greeting from "),
     re.compile(r"\b(?:while talking to|connecting to|greeting from) ", re.I), None),
)
_COMMAND_WORD = {
    "rcpt to": "RCPT", "rcpt": "RCPT", "rcpt_to": "RCPT", "pipelined rcpt to": "RCPT",
    "mail from": "MAIL", "mail": "MAIL", "mail_from": "MAIL", "pipelined mail from": "MAIL",
    "data": "DATA", "end of data": "DATA", "final data": "DATA", "end_of_data": "DATA",
    "sending data block": "DATA", "pipelined data": "DATA", ".": "DATA",
    "helo": "HELO", "ehlo": "EHLO", "lhlo": "HELO", "starttls": "STARTTLS", "auth": "AUTH",
    "initial connection": "CONN", "connect": "CONN", "greeting": "CONN", "conn": "CONN",
    "xforward": "DATA", "quit": None,
}


def find_command(text: str) -> str | None:
    """The SMTP command the failure answered (RCPT, MAIL, DATA, HELO, EHLO, CONN ...), if stated."""
    if not text:
        return None
    # (for ASCII text, lower() and re.I agree exactly; other text runs every pattern, as
    # re.I also folds a few non-ASCII letters onto ASCII ones, e.g. the long s)
    lower = text.lower() if text.isascii() else None
    for needles, rx, fixed in _COMMAND_RES:
        if lower is not None and not any(n in lower for n in needles):
            continue
        ms = rx.findall(text)
        if not ms:
            continue
        if fixed:
            return fixed
        if rx.pattern.startswith(r"\b(?:while"):
            continue
        # the last command of a transcript is the one that was refused
        word = (ms[-1] if ">>>" in rx.pattern else ms[0]).lower()
        cmd = _COMMAND_WORD.get(word)
        if cmd:
            return cmd
    return None
