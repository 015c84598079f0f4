"""Recognition: is this message a delivery report at all, before any decoder reads it?

Two questions, in this order:

1. **Not a bounce** (`not_a_bounce`): a challenge-response or whitelist request (even when it
   is dressed as a DSN), a bounce that a person forwards or quotes in a reply, or an ordinary
   reply in a thread. These are decided on the message's own headers (sender, subject
   prefix, In-Reply-To, the report type) before any DSN wrapper or MTA wording is trusted:
   a person who forwards a Postfix bounce sends Postfix's wording too.
2. **How strongly it looks like one** (`evidence`): points from independent witnesses, none
   of which is required and none of which depends on who sent it: a delivery-status part or
   report type, X-Failed-Recipients, a daemon sender or empty return path, a failure
   subject, a failure sentence in the notice's own text (not in quoted or returned text), an
   SMTP reply with an enhanced status code. A gateway that sends from an ordinary-looking
   address ("imss@...", "Symantec_AntiVirus@...") is still recognised by what it says.
"""

from __future__ import annotations

import re

from . import fastmime
from .autoreply import auto_headers
from .message import Mail

# "mailer-daemon", "postmaster", "Mail Delivery System", "MDaemon@", "Mail Administrator"
_DAEMON_FROM = re.compile(
    r"mailer-daemon|mail-daemon|maildaemon|mdaemon|postmaster|mail delivery|delivery (?:sub)?system"
    r"|mail administrator|mail system|mailer\b|daemon@|mail server at|system administrator",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (?:status notification|failure|failed|has failed|problem|report"
    r"|notification|incomplete|delayed|error|warning)|mail delivery status|failure notice|delivery failed"
    r"|could not be delivered|non[- ]?delivery|not delivered|unable to deliver|mail system error"
    r"|could not send|nondeliverable|returned to sender|error sending|trouble delivering|delayed mail"
    r"|message delayed|user unknown|unknown user|no such user|mailbox (?:full|unavailable)|over ?quota"
    r"|失敗|エラー|不能|未送達|zustellung|unzustellbar|non remis|non recapitabile|no entregado|non consegnato"
    r"|不達|退信|недоставлен|(?:mail|message|delivery) (?:failed|failure|rejected)|rejected mail|failed mail"
    r"|not (?:yet )?(?:been )?delivered|returning to sender"
    r"|onbestelbaar|niet bezorgd|niedostarcz|nedoru[čc]iteln|n[ãa]o entregue|n[ãa]o [ée] poss[íi]vel entregar"
    r"|ej levererbar|kan inte levereras|kan ikke leveres|ikke levert|ei voitu toimittaa|nem k[ée]zbes[íi]thet"
    r"|non recapitat|no se puede entregar|недоставля|не доставлен|无法投递|投递失败|退信|配信不能|teslim edilemedi",
    re.I,
)
# The sentences a delivery report says about itself (any MTA, several languages).
FAILURE_SENTENCE = re.compile(
    r"(?:could not|couldn't|cannot|can not|can't|was not|wasn't|were not|has not|hasn't|have not|is not"
    r"|will not)\s+(?:yet\s+)?(?:been\s+|be\s+)?(?:deliver|sent\b)"
    r"|undeliver|unable to deliver|delivery (?:to the following .{0,40})?(?:has )?failed|failed permanently"
    r"|permanent (?:error|failure|fatal)|did not reach the following|message not delivered|not delivered to"
    r"|delivery .{0,40}(?:postponed|delayed)|following address(?:es|\(es\))? failed|failed (?:addresses|recipients)"
    r"|not able to (?:be\s+)?deliver|following address(?:es)? ha(?:d|ve) (?:permanent fatal errors|delivery problems)"
    r"|mail failed|(?:was|were|been) (?:automatically )?rejected|no such user|user unknown|unknown user"
    r"|recipient address rejected|mailbox (?:is )?(?:full|unavailable)|over ?quota|quota exceeded"
    r"|returned mail|delivery status notification|message (?:could not|couldn't) be sent"
    r"|nicht zugestellt|unzustellbar|n'a pas pu [eê]tre (?:d[eé]livr|remis|distribu)|non remis"
    r"|no (?:se )?(?:ha )?pudo (?:ser )?entreg|non [eè] stat[oa] (?:possibile )?(?:consegnat|recapitat)"
    r"|配信できません|送信できません|届きませんでした|未送達|无法投递|не (?:может быть )?доставлен"
    # the same in the other languages local MTAs and Exchange localisations write
    r"|не (?:было |будет )?доставлен|не удалось доставить|доставка .{0,40}не выполнена"
    r"|nie (?:zosta[łl][oa]? |mo[żz]na by[łl]o )?dostarczon|nie uda[łl]o si[ęe] dostarczy[ćc]|dostarczenie .{0,40}nie powiod"
    r"|nebylo mo[žz]n[ée] doru[čc]it|nepoda[řr]ilo se doru[čc]it|doru[čc]en[íi] .{0,40}nezda[řr]ilo"
    r"|kon niet (?:worden )?(?:afgeleverd|bezorgd)|niet (?:kunnen )?(?:afleveren|bezorgen)|bezorging is mislukt"
    r"|n[ãa]o (?:foi poss[íi]vel entregar|p[ôo]de ser entregue|foi entregue)|falha na entrega"
    r"|non (?:[èe] stato|è stato possibile) (?:consegnat|recapitat)|recapito non riuscito|impossibile recapitare"
    r"|error en la entrega|no se (?:ha )?podido entregar|la remise a [ée]chou[ée]|impossible de (?:remettre|distribuer)"
    r"|zustellung .{0,40}fehlgeschlagen|konnte nicht zugestellt|无法送达|投递失败|传递.{0,20}失败|發送失敗|无法传递"
    r"|配信に失敗|配信不能|전달되지 않|전송 실패|teslim edilemedi"
    r"|kunde inte levereras|kunne ikke leveres|toimitus ep[äa]onnistui|nem siker[üu]lt k[ée]zbes[íi]teni",
    re.I,
)
_REPLY_WITH_STATUS = re.compile(r"(?<![\d.])[45]\d\d[ -]#?[45]\.\d{1,3}\.\d{1,3}\b|\bRCPT TO:?\s*<", re.I)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]{1,40}\]\s*)?(?:fwd?|fw|wg|tr|rv|vs|i|doorst|enc|rif)\s*:", re.I)
_REPLY_SUBJECT = re.compile(r"^\s*(?:\[[^\]]{1,40}\]\s*)?(?:re|aw|sv|antw|odp|vs)\s*:", re.I)
_QUOTED = re.compile(r"^[ \t]*>.*$", re.M)
_FORWARD_MARK = re.compile(
    r"^-{2,}\s*(?:forwarded message|original message|mensaje original|message d'origine|urspr[üu]ngliche nachricht)"
    r"|^begin forwarded message:",
    re.I | re.M,
)
# What relays and gateways add to a message's text (an antivirus stamp at the top or the
# bottom, a list's footer, a legal disclaimer, a signature): never the notice's own words.
# Not "virus" alone: a virus scanner's own notice says "virus" in its failure sentence.
BOILERPLATE = re.compile(
    r"scanned (?:by|for)|no (?:threats|viruses|malware) (?:were )?(?:found|detected)|virus[- ]free"
    r"|\bunsubscribe|mailing list|-leave@|confidential|disclaimer|intended (?:only )?for|intended recipient"
    r"|privileged",
    re.I,
)
_FOOTER_START = re.compile(r"^(?:-- ?|_{20,})[ \t]*$", re.M)


def without_boilerplate(text: str) -> str:
    """``text`` without what gateways add: lines of banners and disclaimers, and everything
    after a signature or footer separator ("-- ", a row of underscores)."""
    m = _FOOTER_START.search(text)
    if m:
        text = text[: m.start()]
    if not BOILERPLATE.search(text):
        return text
    return "\n".join(ln for ln in text.split("\n") if not BOILERPLATE.search(ln))


_EMPTY_PATH = re.compile(r"^\s*<?\s*>?\s*$")
# An Amazon SES event in JSON, bare or in an SNS envelope with escaped quotes: structured
# data that says itself what happened, whoever forwards it.
SES_EVENT = re.compile(r'\\?"(?:notificationType|eventType)\\?"\s*:\s*\\?"(?:Bounce|Complaint|Delivery)\\?"')


def daemon_sender(mail: Mail) -> bool:
    """The notice comes from a mail system (by its From), or its return path is empty."""
    if _DAEMON_FROM.search(mail.from_) or not mail.from_.strip():
        return True
    rp = mail.headers.get("return-path")
    return rp is not None and bool(_EMPTY_PATH.match(rp))


def own_text(mail: Mail) -> str:
    """The notice's own words: its body without quoted ("> ") lines and forwarded parts."""
    cached = mail.memo.get("own_text")
    if cached is None:
        body = mail.body[:20000]
        m = _FORWARD_MARK.search(body)
        if m:
            body = body[: m.start()]
        cached = mail.memo["own_text"] = _QUOTED.sub("", body) if ">" in body else body
    return cached  # type: ignore[return-value]


def person_sent(mail: Mail) -> bool:
    """A person forwarded or answered something: not a report by a mail system.

    Forward prefix in the subject (Fwd:, FW:, WG:, TR: ...), or a reply prefix together with
    In-Reply-To/References, from a sender that is no mail system, without a
    multipart/report of its own and without Auto-Submitted (other than "no"). (Mail systems do set In-Reply-To on their reports, but
    never a "Re:" prefix together with a personal sender.)
    """
    if mail.content_type == "multipart/report" or daemon_sender(mail) or auto_headers(mail):
        return False
    if mail.header("auto-submitted").strip().lower() not in ("", "no"):
        return False  # RFC 3834: a program sent it (a gateway's auto-forwarded copy), not a person
    if ("notificationtype" in mail.lc_head or "eventtype" in mail.lc_head) and SES_EVENT.search(mail.body[:20000]):
        return False
    subject = mail.subject
    if _FORWARD_SUBJECT.match(subject):
        return True
    threaded = "in-reply-to" in mail.headers or "references" in mail.headers
    return threaded and bool(_REPLY_SUBJECT.match(subject)) and not mail.ds_texts


def evidence(mail: Mail) -> int:
    """Points for "this is a delivery report"; 2 or more is a bounce for the text decoders."""
    cached = mail.memo.get("evidence")
    if cached is None:
        cached = mail.memo["evidence"] = _evidence(mail)
    return cached  # type: ignore[return-value]


def _evidence(mail: Mail) -> int:
    if mail.ds_texts or mail.report_type == "delivery-status":
        return 3
    if "x-failed-recipients" in mail.headers:
        return 3
    score = 0
    if daemon_sender(mail):
        score += 1
    if _BOUNCE_SUBJECT.search(mail.subject):
        score += 1
    own = own_text(mail)
    if FAILURE_SENTENCE.search(own[:8000]):
        score += 2
    if _REPLY_WITH_STATUS.search(own[:8000]):
        score += 1
    return score


def says_failure(mail: Mail) -> bool:
    """Strong enough to call the message a bounce even when no recipient can be found."""
    if mail.ds_texts or "x-failed-recipients" in mail.headers:
        return True
    if not daemon_sender(mail):
        return False
    return bool(FAILURE_SENTENCE.search(own_text(mail)[:8000])) and evidence(mail) >= 3


def announces_failure(mail: Mail) -> bool:
    """The notice says what it is up front: in its subject, or in its first lines."""
    if _BOUNCE_SUBJECT.search(mail.subject):
        return True
    head = [ln for ln in own_text(mail)[:3000].split("\n") if ln.strip() and not BOILERPLATE.search(ln)][:2]
    return any(FAILURE_SENTENCE.search(ln) for ln in head)


def wrapped_notice(mail: Mail) -> bytes | None:
    """The notice inside a wrapper that only carries it: the raw attached message, or None.

    A gateway, a quarantine release or a mailbox rule can pass a delivery report on as a
    message/rfc822 attachment of a new message that says nothing of its own ("The attached
    message was forwarded automatically"). The attachment is then the notice and is read
    as if it had come directly; the wrapper adds nothing. Not when a person forwards it
    (`person_sent`: checked first by the engine), when the wrapper has delivery-status,
    feedback or X-Failed-Recipients of its own, when it states a failure itself (then the
    attachment is the returned original of a bounce), or when the attachment is no report
    (our own returned message): the engine decides that after reading it.
    """
    root = mail.msg
    if not isinstance(root, fastmime.Part) or not root.ctype.startswith("multipart/") or root.ctype == "multipart/report":
        return None
    if mail.ds_texts or mail.feedback_texts or "x-failed-recipients" in mail.headers or len(mail.returned) != 1:
        return None
    attached = [p for p in root.children if p.ctype in ("message/rfc822", "message/global")]
    if len(attached) != 1:
        return None
    own = own_text(mail)[:8000]
    if FAILURE_SENTENCE.search(own) or _REPLY_WITH_STATUS.search(own):
        return None
    return attached[0].decoded().lstrip(b"\r\n")

