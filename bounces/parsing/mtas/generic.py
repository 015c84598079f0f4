"""Last-resort detector for plain-text bounces that no family claims.

It looks, before the copy of the original message, for lines that name an address on its own
(optionally in <> and followed by ":" or a reason) and takes the lines that follow as that
recipient's diagnostic. X-Failed-Recipients is used when the text names nobody.
"""

from __future__ import annotations

import re

from ..common import ADDR_RE, Rec, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec, is_daemon, own_addresses

NAME = "generic"

_FROM_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|mail administrator|daemon|mailer", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery (?:status notification|failure|failed|has failed|problem|report)"
    r"|failure notice|mail delivery failed|could not be delivered|non[- ]?delivery|rejected|bounce|"
    r"delivery (?:notification|incomplete)|not delivered|unable to deliver|mail system error|warning: could not send"
    r"|nondeliverable|returned to sender|error sending (?:your )?(?:mail|message)|trouble delivering|delayed mail|message delayed|delivery delayed|error sending message"
    r"|失敗|エラー|不能|未送達|zustellung|unzustellbar|non remis|no entregado|non consegnato",
    re.I,
)


_DAEMON_FROM = re.compile(r"(?:^|[<\s\"])(?:mailer-daemon|postmaster|mail-daemon|maildaemon)(?:@|>|\s|$)", re.I)


def looks_like_bounce(mail: Mail) -> bool:
    """Cheap evidence that ``mail`` is a delivery report of some kind."""
    if mail.ds_texts or mail.report_type == "delivery-status":
        return True
    if mail.header("x-failed-recipients"):
        return True
    frm = mail.from_
    if _DAEMON_FROM.search(frm) or _DAEMON_FROM.search(mail.header("return-path")) and not frm:
        return True
    if _FROM_DAEMON.search(frm) and _BOUNCE_SUBJECT.search(mail.subject):
        return True
    return bool(_BOUNCE_SUBJECT.search(mail.subject) and re.search(r"^\s*<?>?\s*$", mail.header("return-path")))


_LINE_ADDR = re.compile(
    r"^\s*(?:(?:to|recipient|address|rcpt to|original-recipient|final-recipient|for|an)\s*:?\s*)?"
    r"[\"']?<?(?P<addr>[^\s<>\"':;,()]+@[\w-]+(?:\.[\w-]+)+)(?![\w.-]*\w)>?[\"']?"
    r"\s*(?P<rest>(?:[:.,;]|\.\.\.|\(|\[|--|-\s|on\s).*)?$",
    re.I,
)


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipients named on their own lines, with the following lines as diagnostic."""
    if not looks_like_bounce(mail):
        return []
    own = own_addresses(mail)
    text = cut_returned(mail.body)
    lines = text.split("\n")
    found: list[tuple[int, str, str]] = []
    for i, line in enumerate(lines[:400]):
        if "@" not in line:
            continue
        m = _LINE_ADDR.match(line)
        if not m:
            continue
        a = norm_address(m.group("addr"))
        if not a or a.lower() in own or is_daemon(a):
            continue
        found.append((i, a, (m.group("rest") or "").lstrip(":.;, ")))
    recs: list[Rec] = []
    seen: set[str] = set()
    for n, (i, a, rest) in enumerate(found):
        if a.lower() in seen:
            continue
        seen.add(a.lower())
        end = found[n + 1][0] if n + 1 < len(found) else min(len(lines), i + 12)
        block = [rest] if rest else []
        for line in lines[i + 1 : end]:
            if not line.strip():
                if block:
                    break
                continue
            block.append(line.strip())
        recs.append(diag_rec(a, " ".join(block)))
    if not recs:
        recs = _phrase_scan(lines[:400], own)
        seen.update((r.recipient or "").lower() for r in recs)
    if not recs:
        for v in mail.header_all("x-failed-recipients"):
            for a in ADDR_RE.findall(v):
                na = norm_address(a)
                if na and na.lower() not in seen:
                    seen.add(na.lower())
                    recs.append(diag_rec(na, _reason_paragraph(text)))
    return recs


_FAIL_WORDS = re.compile(
    r"deliver|user|mailbox|recipient|unknown|reject|fail|exceed|not a member|address|refused|quota"
    r"|invalid|not found|no such|unreachable|blocked|denied|full|error|宛先|存在|配信|送信|zustell",
    re.I,
)


def _phrase_scan(lines: list[str], own: set[str]) -> list[Rec]:
    """Addresses quoted inside a failure sentence ("Unknown user: a@b", "deliver to <a@b>")."""
    recs: list[Rec] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if "@" not in line or not _FAIL_WORDS.search(line):
            continue
        if re.match(r"^\s*(?:from|to|cc|reply-to|sender|return-path|received|message-id)\s*:", line, re.I):
            continue
        for raw in ADDR_RE.findall(line):
            a = norm_address(raw)
            if not a or a.lower() in own or a.lower() in seen or is_daemon(a):
                continue
            seen.add(a.lower())
            diag = line.strip()
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if nxt and "@" not in nxt and len(diag) < 200:
                diag = f"{diag} {nxt}"
            recs.append(diag_rec(a, diag))
    return recs


def _reason_paragraph(text: str) -> str:
    """The paragraph of ``text`` most likely to hold the reason (one with a reply code)."""
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    for p in paras:
        if re.search(r"\b[45]\d\d\b|[45]\.\d\.\d", p):
            return p
    return paras[-1] if paras else ""
