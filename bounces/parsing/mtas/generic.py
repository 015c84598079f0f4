"""Last-resort detector for plain-text bounces that no family claims.

It looks, before the copy of the original message, for lines that name an address on its own
(optionally in <> and followed by ":" or a reason) and takes the lines that follow as that
recipient's diagnostic. X-Failed-Recipients is used when the text names nobody.
"""

from __future__ import annotations

import re

from .. import recognise
from ..common import ADDR_RE, Rec, find_status, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec, is_daemon, own_addresses

NAME = "generic"

_FROM_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|mail administrator|daemon|mailer|mail server at", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery (?:status notification|failure|failed|has failed|problem|report)"
    r"|mail delivery status"
    r"|failure notice|mail delivery failed|could not be delivered|non[- ]?delivery|rejected|bounce|"
    r"delivery (?:notification|incomplete)|not delivered|unable to deliver|mail system error|warning: could not send"
    r"|nondeliverable|returned to sender|error sending (?:your )?(?:mail|message)|trouble delivering|delayed mail|message delayed|delivery delayed|error sending message"
    r"|失敗|エラー|不能|未送達|zustellung|unzustellbar|non remis|no entregado|non consegnato",
    re.I,
)


_DAEMON_FROM = re.compile(r"(?:^|[<\s\"])(?:mailer-daemon|postmaster|mail-daemon|maildaemon)(?:@|>|\s|$)", re.I)


def looks_like_bounce(mail: Mail) -> bool:
    """Evidence that ``mail`` is a delivery report of some kind, whoever sent it."""
    return recognise.evidence(mail) >= 2


_LINE_ADDR = re.compile(
    r"^\s*(?:[\w.+-]{1,64}:\d{1,8}:(?=<))?"  # SendGrid's "local:00000:<a@b> : reason"
    r"(?:(?:to|recipient|address|rcpt to|original-recipient|final-recipient|for|an"
    r"|宛先|送信先|受信者|empf[äa]nger|destinataire|destinatario|destinat[áa]rio|получатель|адресат)(?:\s*:\s*|\s+))?"
    # quoted only in pairs: 'a@b"' is the end of a quotation wrapped onto its own line
    r"(?P<q>[\"'])?<?(?P<addr>[^\s<>\"':;,()]+@[\w-]+(?:\.[\w-]+)+)(?![\w.-]*\w)>?(?(q)[\"']|)"
    r"(?:\s*<[^<>\s]+@[^<>\s]+>)?"  # '"a@b" <a@b>': the address again as display name
    r"\s*(?P<rest>(?:[:.,;]|\.\.\.|\(|\[|--|-\s|on\s).*)?$",
    re.I,
)
_BANNER = re.compile(r"^[-=*|_ ]{3,}[^-=*|]{3,60}[-=*|_ ]{3,}$")  # "------ Failed Recipients ------"
_HEADER_LINE = re.compile(r"^\s*(?:to|from|cc|bcc|date|subject|sender|reply-to|message-id)\s*:", re.I)


_ADDR_LIST = re.compile(r"(?:<?[^\s<>\"':;,()]+@[\w.-]+>?[\s,;]*)+")


# A delivery report is about a message: it returns it, quotes the server's reply, or says
# "message"/"mail" in its language. A parcel service's "could not be delivered" does not.
_MAIL_WORD = re.compile(
    r"\b(?:e-?)?mails?\b|\bmessages?\b|nachricht|courriel|courrier|correo|mensaje|mensagem|messaggi"
    r"|\bbericht|wiadomo|zpr[áa]v|сообщени|письм|邮件|郵件|メール|メッセージ|메일|ileti",
    re.I,
)
_SMTP_REPLY = re.compile(r"(?<![\d.])[45]\d\d[ -]|#?[45]\.\d{1,3}\.\d{1,3}\b")


_SUCCESS = re.compile(
    r"success(?:fully)? (?:delivered|relayed|sent|expanded|forwarded)|delivery (?:to .{0,80})?(?:has )?succeeded"
    r"|(?:was|has been) (?:successfully )?(?:delivered|relayed) to\b",
    re.I,
)


def _about_mail(mail: Mail, text: str) -> bool:
    if mail.returned or len(text) < len(mail.body) or _SMTP_REPLY.search(text):
        return True  # a returned copy (cut_returned found its start) or an SMTP reply
    # not in what a gateway added ("This email has been scanned", a list's footer)
    return bool(_MAIL_WORD.search(ADDR_RE.sub(" ", mail.subject + "\n" + recognise.without_boilerplate(text[:3000]))))


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipients named on their own lines, with the following lines as diagnostic."""
    if not looks_like_bounce(mail):
        return []
    own = own_addresses(mail)
    text = cut_returned(mail.body)
    if _SUCCESS.search(text[:3000]) and not recognise.FAILURE_SENTENCE.search(recognise.own_text(mail)[:8000]):
        return []  # a success notice without its DSN part ("successfully delivered to a@b")
    lines = text.split("\n")
    # A notice from an ordinary-looking sender (a gateway, a virus scanner, a person) names
    # a recipient only in recipient position: on a line of its own after a sentence that
    # says delivery failed, or right after such a sentence on the same line.
    strict = not recognise.daemon_sender(mail)
    if strict and not recognise.announces_failure(mail):
        return []
    if strict and not dsn and "list-unsubscribe" in mail.headers:
        return []  # a newsletter that quotes a bounce: reports carry no RFC 2369 list headers
    if strict and not dsn and not _about_mail(mail, text):
        return []  # "your parcel could not be delivered": a failure, but not of a message
    found: list[tuple[int, str, str]] = []
    for i, line in enumerate(lines[:400]):
        if "@" not in line:
            continue
        m = _LINE_ADDR.match(line)
        if not m:
            continue
        if strict and not _after_failure(lines, i):
            continue
        a = norm_address(m.group("addr"))
        if not a or a.lower() in own:
            continue
        if is_daemon(a) and (strict or not _after_failure(lines, i)):
            # postmaster@ and friends are mailed too; in recipient position they bounced
            continue
        rest = (m.group("rest") or "").lstrip(":.;, ")
        if rest and "@" in rest and _ADDR_LIST.fullmatch(rest):
            # "a@x, b@y": a list of failed recipients on one line (Apache James), each one a
            # recipient; the reason is printed apart from the list
            found.append((i, a, ""))
            for extra in ADDR_RE.findall(rest):
                b = norm_address(extra)
                if b and b.lower() not in own and not is_daemon(b):
                    found.append((i, b, ""))
            continue
        found.append((i, a, rest))
    recs: list[Rec] = []
    seen: set[str] = set()
    for n, (i, a, rest) in enumerate(found):
        if a.lower() in seen:
            continue
        seen.add(a.lower())
        end = found[n + 1][0] if n + 1 < len(found) else min(len(lines), i + 12)
        block = [rest] if rest else []
        indent = len(lines[i]) - len(lines[i].lstrip())
        for line in lines[i + 1 : end]:
            if not line.strip():
                if block:
                    break
                continue
            if not block and len(line) - len(line.lstrip()) <= indent and i + 1 < len(lines) and not lines[i + 1].strip():
                break  # the next paragraph is not this address's: it is not indented under it
            block.append(line.strip())
        rec = diag_rec(a, " ".join(block))
        if needs_reason(rec.diagnostic):
            extra = transcript_reply(lines[i + 1 : end], a) or reason_text(text)
            if extra:
                rec = diag_rec(a, f"{rec.diagnostic} {extra}".strip())
        recs.append(rec)
    if not recs:
        recs = _phrase_scan(lines[:400], own, strict)
        seen.update((r.recipient or "").lower() for r in recs)
    if not recs:
        for v in mail.header_all("x-failed-recipients"):
            for a in ADDR_RE.findall(v):
                na = norm_address(a)
                if na and na.lower() not in seen:
                    seen.add(na.lower())
                    recs.append(diag_rec(na, _reason_paragraph(text)))
    notice = mail.subject + "\n" + text[:3000]
    if recs and _DELAY_NOTICE.search(notice) and not _GAVE_UP.search(notice):
        # a warning that the MTA is still trying (Sendmail's "could not send message for
        # past 4 hours", "will keep trying"): a delay, not a failure
        for r in recs:
            r.action = r.action or "delayed"
    if not recs and not strict:
        recs = _bare_locals(lines[:400], mail)
    if not recs and not strict:
        rcpt = _returned_to(mail, own)
        if rcpt:
            diag = _reason_paragraph(text)
            if _FAIL_WORDS.search(diag):
                recs.append(diag_rec(rcpt, diag))
    return recs


_BARE_LOCAL = re.compile(r"^[ \t]+([A-Za-z0-9][\w.+-]{0,63})[ \t]*$")
_DOMAIN = re.compile(r"@([\w-]+(?:\.[\w-]+)+)")


def _bare_locals(lines: list[str], mail: Mail) -> list[Rec]:
    """Local users listed without a domain under a failure sentence ("...could not be
    delivered ...:" then an indented "jsmith"): old MTAs name their own users so. They
    belong to the domain of the system that reports them (the From address)."""
    m = _DOMAIN.search(mail.from_)
    if not m:
        return []
    domain = m.group(1).lower()
    recs: list[Rec] = []
    for i, line in enumerate(lines):
        b = _BARE_LOCAL.match(line)
        if not b or b.group(1).lower() in ("postmaster", "mailer-daemon"):
            continue
        above = next((lines[j].strip() for j in range(i - 1, max(-1, i - 3), -1) if lines[j].strip()), "")
        if above.endswith(":") and recognise.FAILURE_SENTENCE.search(" ".join(lines[max(0, i - 3) : i])):
            recs.append(diag_rec(f"{b.group(1)}@{domain}", " ".join(lines[max(0, i - 3) : i])))
    return recs


_DELAY_NOTICE = re.compile(
    r"this is a warning message only|could not send message for past|will keep trying|will retry for"
    r"|still being retried|delivery (?:has been |is )?delayed|message delayed|delayed mail",
    re.I,
)
_GAVE_UP = re.compile(r"permanent|given up|giving up|gave up|no longer|will not|won'?t be|undeliverable", re.I)
_TO_LINE = re.compile(r"^to:[ \t]*(.*(?:\n[ \t]+.*)*)", re.I | re.M)


def _returned_to(mail: Mail, own: set[str]) -> str | None:
    """The one address in the returned copy's To, when the bounce text names nobody.

    Some providers only say "your message could not be delivered" and attach the message:
    with a single To address (no Cc) that is who bounced; with several we cannot tell.
    """
    if not mail.returned:
        return None
    raw = mail.returned[0]
    end = raw.find("\n\n")
    head = raw[:end] if end >= 0 else raw[:4000]
    if re.search(r"^cc:[ \t]*\S", head, re.I | re.M):
        return None
    m = _TO_LINE.search(head)
    if not m:
        return None
    found = {norm_address(a) for a in ADDR_RE.findall(m.group(1))}
    found.discard(None)
    found.discard("")
    if len(found) != 1:
        return None
    a = found.pop()
    if a.lower() in own or is_daemon(a):
        return None
    return a


_FAIL_WORDS = re.compile(
    r"deliver|user|mailbox|recipient|unknown|reject|fail|exceed|not a member|address|refused|quota"
    r"|invalid|not found|no such|unreachable|blocked|denied|full|error|宛先|存在|配信|送信|zustell",
    re.I,
)


def _after_failure(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is in recipient position for a notice from an ordinary sender.

    The address stands on a line of its own (not a header line of a quoted message), right
    under a line that announces it ("... could not be delivered to", "... recipients:"),
    and a failure sentence stands within a few lines around it.
    """
    if _HEADER_LINE.match(lines[i]):
        return False
    above = next((lines[j].strip() for j in range(i - 1, max(-1, i - 4), -1) if lines[j].strip()), "")
    if not (above.endswith(":") or above.lower().endswith(" to") or _BANNER.match(above)):
        return False
    window = lines[max(0, i - 8) : i + 4]
    return any(recognise.FAILURE_SENTENCE.search(ln) for ln in window)


_FAILED_TO = re.compile(
    r"(?:deliver|delivered|delivery|send|sent|rejected)\b[^@<>\n]{0,30}?\bto:?\s*(<?[^\s<>\"']+@[\w.-]+>?)", re.I
)


# Words of a refusal; "address" or "user" alone also occur in directory listings and advice.
_REFUSAL_WORDS = re.compile(
    r"unknown|no such|not found|invalid|reject|refuse|denied|full|quota|fail|undeliver|not (?:be )?deliver"
    r"|did not|does not exist|doesn't exist|unavailable|disabled|not match|blocked|not accept|no longer"
    r"|bad|illegal|unrouteable|not (?:a )?valid|expired|suspend|inactive|error|unable|could not|cannot"
    r"|can't|couldn't|exceed|violation|problem|abort|recipient\s*:|address\s*:"
    r"|宛先|存在|配信|送信|zustell|inconnu|desconocido|sconosciuto|не существует",
    re.I,
)
def _refusal_near(lines: list[str], i: int) -> bool:
    """Refusal words on line ``i``, on the line after it, or on the two lines before it."""
    if _REFUSAL_WORDS.search(lines[i]):
        return True
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    if "@" not in nxt and _REFUSAL_WORDS.search(nxt):
        return True
    return any(_REFUSAL_WORDS.search(lines[j]) for j in range(max(0, i - 2), i))


_ADVICE = re.compile(r"\btry\b|e\.g\.|for example|such as|instead\b|\bif\b.{0,40}\bfails?\b", re.I)
_SENDER_BEFORE = re.compile(r"\b(?:from|sender|by)\s*:?\s*<?$", re.I)


def _phrase_scan(lines: list[str], own: set[str], strict: bool = False) -> list[Rec]:
    """Addresses quoted inside a failure sentence ("Unknown user: a@b", "deliver to <a@b>")."""
    recs: list[Rec] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if "@" not in line or not _FAIL_WORDS.search(line):
            continue
        if re.match(r"^\s*(?:from|to|cc|reply-to|sender|return-path|received|message-id)\s*:", line, re.I):
            continue
        if strict:
            # only an address that the failure sentence names as its object ("unable to
            # deliver message to <a@b>"), not one a person's sentence happens to mention
            fm = _FAILED_TO.search(line)
            where = fm.group(1) if fm else ""
        else:
            where = line
        if _ADVICE.search(line):
            continue  # "if a@b fails, try c@d": advice, not the refusal
        if not _refusal_near(lines, i):
            continue  # "address", "user" alone: a directory entry, a sentence about formats
        for am in ADDR_RE.finditer(where):
            raw = am.group(0)
            if _SENDER_BEFORE.search(where, max(0, am.start() - 12), am.start()):
                continue  # "not accepting mail from a@b": the sender, not a recipient
            a = norm_address(raw)
            if not a or a.lower() in own or a.lower() in seen or is_daemon(a):
                continue
            seen.add(a.lower())
            diag = line.strip()
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if nxt and "@" not in nxt and len(diag) < 200:
                diag = f"{diag} {nxt}"
            if strict and not find_status(diag):
                # the summary sentence comes after the SMTP transcript that holds the reply
                diag = f"{transcript_reply(lines[max(0, i - 6) : i], a)} {diag}".strip()
            if needs_reason(diag):
                extra = transcript_reply(lines[i + 1 : i + 8], a) or reason_text(chr(10).join(lines[i + 1 :]))
                diag = f"{diag} {extra}".strip()
            recs.append(diag_rec(a, diag))
    return recs


# A remote reply quoted from an SMTP transcript in any language: "Received >>> 550 ...",
# "受信 <<< 550 5.1.1 User unknown", "<<< 552 mailbox full" (InterScan MSS, Sendmail-style logs).
_TRANSCRIPT_REPLY = re.compile(r"(?:<<<|>>>)\s*([245]\d\d(?:[ -].*)?)$")


def transcript_reply(lines: list[str], addr: str = "") -> str:
    """The first remote SMTP reply quoted in ``lines`` after a ``<<<``/``>>>`` arrow, or "".

    With ``addr``, the search stops at a line naming another address (the next recipient's
    transcript is not this one's).
    """
    low = addr.lower()
    for line in lines:
        if low and "@" in line and low not in line.lower():
            break
        if "<<<" in line or ">>>" in line:
            m = _TRANSCRIPT_REPLY.search(line.strip())
            if m:
                return m.group(1).strip()
    return ""


_HAS_REASON = re.compile(r"[245]\d\d\b|[245]\.\d{1,3}\.\d|[a-z]{3,} [a-z]{3,} [a-z]{3,}", re.I)


def needs_reason(diag: str) -> bool:
    """Whether ``diag`` is empty, says nothing, or only announces a reason that follows."""
    d = diag.rstrip()
    return not d or d.endswith(":") or not _HAS_REASON.search(d)
_REASON_INTRO = re.compile(
    r"^\s*(?:.*\b(?:because(?: of)?|for the following reasons?|the following reason|reasons?(?: for the problem)?"
    r"|error(?: message)?(?: below)?|details?|diagnostic)\s*:?"
    r"|-+ ?(?:failure reasons?|non-delivered information|error (?:message|details?|information)"
    r"|reasons?|diagnostics?|details?)\s*-*)\s*$",
    re.I | re.M,
)
_INLINE_REASON = re.compile(r"^\s*(?:reason|error|diagnostic|cause)\s*:\s*(\S.*)$", re.I | re.M)


def reason_text(text: str) -> str:
    """The reason a plain-text bounce gives apart from its recipient list, if it says one."""
    m = _REASON_INTRO.search(text)
    inline = _INLINE_REASON.search(text)
    if inline and m and inline.start() < m.start():
        # "Reason: 550 ... No such user" right under the list wins over a later "for more
        # details" (the list's reason, not a help line's)
        return inline.group(1).strip()
    if m:
        out = []
        for line in text[m.end() :].lstrip("\n").split("\n"):
            if not line.strip():
                if out:
                    break
                continue
            if ADDR_RE.fullmatch(line.strip().strip("<>")):
                continue
            if line.lstrip().startswith("---"):
                break
            if out and line.rstrip().endswith(":"):
                break
            out.append(line.strip())
            if len(out) >= 4:
                break
        if out:
            return " ".join(out)
    if inline:
        return inline.group(1).strip()
    return ""


def _reason_paragraph(text: str) -> str:
    """The paragraph of ``text`` most likely to hold the reason (one with a reply code)."""
    paras = [p.strip() for p in recognise.without_boilerplate(text).split("\n\n") if p.strip()]
    for p in paras:
        if re.search(r"\b[45]\d\d\b|[45]\.\d\.\d", p):
            return p
    return paras[-1] if paras else ""
