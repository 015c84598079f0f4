"""Text helpers shared by the MTA family detectors."""

from __future__ import annotations

import re
from functools import lru_cache

from ..common import ADDR_RE, Rec, clean_smtp_reply, find_replycode, find_status, norm_address
from ..message import Mail

# Lines that start the copy of the original message inside a plain-text bounce.
RETURNED_MARKER = re.compile(
    r"^\s*\|?(?:"  # Smail 3 / T-Online frame their banners with "|"
    r"-+ ?(?:This is a copy of the message|The header of the original message"
    r"|Original message|Below this line is a copy|original message follows|Original Message"
    r"|Returned message|Headers? of the original|Unsent Message below|Start of original message"
    r"|This is a copy of the headers|Message text follows|Message header follows|The original message was"
    # the same marker in other languages
    r"|元のメッセージ|元メッセージ|Originalnachricht|Urspr[üu]ngliche Nachricht|Message d.origine"
    r"|Message original|Mensaje original|Messaggio originale|Mensagem original|Исходное сообщение"
    r"|Оригинальное сообщение|原始邮件)"
    r"|Message headers follow|Original message follows|--- ?Below this line"
    r"|Original message headers:|The original message headers (?:are|were)"
    r"|------ This is a copy|Content-Type: message/rfc822"
    # any banner announcing the returned copy ("---- START OF RETURNED MESSAGE ----"), and
    # a heading line that introduces it ("Original message details:", "... as received ...:")
    r"|[-=*|]{2,}[ \t]*(?:start of |begin(?:ning)? of |copy of )?(?:the )?(?:returned|original|undelivered"
    r"|unsent|rejected|bounced) (?:message|mail|e-?mail)"
    r"|(?:the )?original message(?: details| as received| headers?)?\b[^\n]{0,40}:[ \t]*$"
    r")",
    re.I | re.M,
)
DAEMON_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|mail-daemon|maildaemon|mailerdaemon|mdaemon|double-bounce|noreply|no-reply|root|daemon|bounce[s]?|nobody)$",
    re.I,
)


@lru_cache(maxsize=8)
def cut_returned(text: str) -> str:
    """``text`` up to where the copy of the original message starts.

    Cached: several decoders cut the same body of one message (str hashes are cached).
    """
    m = RETURNED_MARKER.search(text)
    return text[: m.start()] if m else text


_MSGID_FIELD = re.compile(
    r"^[ \t>]*(?:message-id|in-reply-to|references|original-message-id|x-original-message-id|content-id)"
    r"[ \t]*:[ \t]*<([^<>\s]+@[^<>\s]+)>",
    re.I | re.M,
)


def own_addresses(mail: Mail) -> set[str]:
    """Strings that are never a failed recipient: the bounce's own addresses (From, To,
    Return-Path ...) and every Message-ID quoted in it ("<id@host>" looks like an address)."""
    out: set[str] = set()
    for name in ("from", "to", "return-path", "reply-to", "sender", "cc"):
        for v in mail.header_all(name):
            for a in ADDR_RE.findall(v):
                n = norm_address(a)
                if n:
                    out.add(n.lower())
    for name in ("message-id", "in-reply-to", "references"):
        for v in mail.header_all(name):
            out.update(m.lower() for m in re.findall(r"<([^<>\s]+@[^<>\s]+)>", v))
    for text in (mail.body, *mail.returned):
        out.update(m.group(1).lower() for m in _MSGID_FIELD.finditer(text))
    return out


def is_daemon(address: str) -> bool:
    """Whether ``address`` is a mailer daemon / postmaster mailbox."""
    return bool(DAEMON_LOCAL.match(address.split("@", 1)[0]))


def diag_rec(recipient: str | None, text: str, **kw: object) -> Rec:
    """A record whose status and reply code come from its diagnostic text."""
    diag = clean_smtp_reply(text)
    rec = Rec(recipient=recipient, diagnostic=diag, **kw)  # type: ignore[arg-type]
    if rec.status is None:
        rec.status = find_status(diag)
    if rec.replycode is None:
        rec.replycode = find_replycode(diag)
    return rec


def merge_dsn(recs: list[Rec], dsn: list[Rec]) -> list[Rec]:
    """Fill gaps of text-derived records from the DSN records of the same recipients."""
    by = {(r.recipient or "").lower(): r for r in dsn}
    for r in recs:
        d = by.get((r.recipient or "").lower())
        if d is None and len(dsn) == 1 and len(recs) == 1:
            d = dsn[0]
        if d is None:
            continue
        r.action = r.action or d.action
        r.remote_mta = r.remote_mta or d.remote_mta
        r.original = r.original or d.original
        r.diag_type = r.diag_type or d.diag_type
        if not r.status or (r.status.endswith(".0.0") and d.status and not d.status.endswith(".0.0")):
            r.status = d.status or r.status
        r.replycode = r.replycode or d.replycode
        if not r.diagnostic:
            r.diagnostic = d.diagnostic
    return recs


def prefer_text_diagnostic(dsn: list[Rec], texts: dict[str, str]) -> list[Rec]:
    """Use the human-readable diagnostic per recipient when the DSN has none or a thin one."""
    for r in dsn:
        t = texts.get((r.recipient or "").lower())
        if t is None and len(texts) == 1 and len(dsn) == 1:
            t = next(iter(texts.values()))
        if not t:
            continue
        t = clean_smtp_reply(t)
        if not r.diagnostic or len(r.diagnostic) < 8:
            r.diagnostic = t
        if not r.replycode:
            r.replycode = find_replycode(t)
        st = find_status(t)
        if st and (not r.status or (r.status.endswith(".0.0") and st[0] == r.status[0] and not st.endswith(".0.0"))):
            r.status = st
    return dsn


_ANGLE_LINE = re.compile(r"^\s*<([^<>\s]+@[^<>\s]+)>\s*:?\s*(.*)$")


def angle_blocks(text: str) -> list[tuple[str, list[str]]]:
    """qmail-style groups: a line "<addr>:" followed by the lines of its diagnostic."""
    out: list[tuple[str, list[str]]] = []
    cur: list[str] | None = None
    for line in text.split("\n"):
        m = _ANGLE_LINE.match(line)
        if m and cur and (m.group(2) == "" or not line.rstrip().endswith(":")) and out[-1][0] == norm_address(m.group(1)):
            # the block's own address again, inside the block: a sentence naming it that a
            # relay re-wrapped ("... RCPT:" / "<a@b> 192.0.2.1 failed after ..."), no new block
            cur.append(line.strip())
            continue
        if m and norm_address(m.group(1)):
            cur = [m.group(2)] if m.group(2).strip() else []
            out.append((norm_address(m.group(1)) or "", cur))
            continue
        if cur is None:
            continue
        if not line.strip():
            if cur:
                cur = None
            continue
        cur.append(line.strip())
    return out


def region(text: str, start: re.Pattern[str] | str, end: re.Pattern[str] | str | None = None) -> str:
    """The part of ``text`` after ``start`` (a regex) and before ``end``; "" if no start."""
    m = re.search(start, text) if isinstance(start, str) else start.search(text)
    if not m:
        return ""
    rest = text[m.end() :]
    if end is not None:
        e = re.search(end, rest) if isinstance(end, str) else end.search(rest)
        if e:
            rest = rest[: e.start()]
    return rest


def received_has(mail: Mail, needle: str) -> bool:
    """Whether any Received header of the bounce mentions ``needle`` (case-sensitive)."""
    return any(needle in v for v in mail.header_all("received"))
