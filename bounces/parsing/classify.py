"""Classify one failed recipient: reason, status, hard, permanent and product category.

``classify`` takes what the structure parsers extracted for one recipient (enhanced status,
SMTP reply code, diagnostic text, DSN action, failed SMTP command) and decides:

* ``reason`` (vocabulary in ``reasons.REASONS``) in two passes:

  1. *Probes*, in ``_PROBE_ORDER``: each reason checks the status code's own meaning
     together with the wording and the SMTP command (a "user unknown" answered to RCPT
     is a dead mailbox; the same words after DATA come from a content filter, so they
     mean ``filtered``; a sender-address phrase counts at MAIL FROM, ...).
  2. When no probe fires and the status code is missing or vague (x.0.0, 5.7.x,
     5.3.0 ...), the wording alone (``_TEXT_ORDER``), then the status code's meaning,
     then the status class (5.6 content, 5.7 security), the DSN action (delayed ->
     expired) and the command (refused at EHLO -> blocked). Otherwise ``onhold``.

* ``status``: the given enhanced status, else one found in the text, else Sisimai's
  pseudo code for the reason (``5.0.911`` ...; ``4.0.9NN`` when the text says the
  failure is temporary), so results compare with Sisimai's.
* ``permanent``: status class 5 -> True, 4 -> False, else None.
* ``hard``: the address itself is bad (Sisimai's hardbounce): userunknown, hostunknown,
  hasmoved always; notaccept unless the failure is temporary.
* ``category``: ``category_for`` (table in docs/classification.md).

Pure Python, no Django. The regular expressions here are compiled at import (the phrase
tables in ``reasons`` on first use); only the first ``MAX_SCAN`` characters of the
diagnostic are scanned.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

try:
    import re2 as _re2
except ImportError:  # pragma: no cover
    _re2 = None

from .common import find_status
from .reasons import (
    ADDRESS_BAD,
    DECISIVE_ORDER,
    NEVER_TEMPORARY,
    NON_FAILURES,
    PSEUDO_STATUS,
    REASONS,
    STATUS_REASONS,
    VAGUE,
    lda_reason,
    matching_tables,
)
from .types import Category

__all__ = ["MAX_SCAN", "REASONS", "Verdict", "category_for", "classify"]

#: Only this much of the diagnostic text is scanned: the decisive wording comes first, and
#: a bounded scan keeps the engine fast on huge bodies.
MAX_SCAN: Final = 2000


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classification of one failed recipient."""

    reason: str
    status: str | None
    hard: bool | None
    permanent: bool | None
    category: Category


def _compile_fast(pattern: str) -> Any:
    """RE2 when available (linear, fast on long alternations), else stdlib re."""
    if _re2 is not None:
        return _re2.compile(pattern)
    return re.compile(pattern)


# -- status and reply code in free text -----------------------------------------------------
# "#5.1.1", "550-5.1.1", "5.1.1" but not an IPv4 address or a version number.
_REPLY_IN_TEXT: Final = re.compile(r"(?<![\d.\w-])([245][0-5]\d)(?=[ :-]|$)")
# Words that make a bounce without a status code temporary (its pseudo status is 4.0.9NN).
# Exim's "retry timeout exceeded": the last attempt failed temporarily and time ran out.
_TEMPORARY_WORDS: Final = re.compile(
    r" temporar| persistent|(?<!delivery )retry timeout exceeded|have been failing for a long time"
    r"|delay reason: |no action is required on your part"
)

# -- the SMTP command a reply answered, from the wording of common MTAs ---------------------
_COMMAND_IN_TEXT: Final = _compile_fast(
    r"in reply to (rcpt to|mail from|end of data|data|helo|ehlo|starttls) command"  # Postfix
    r"|after (rcpt to|mail from|end of data|data|initial connection|helo|ehlo|starttls)\b"  # Exim
    r"|(does not like recipient)|(sender was rejected)|(failed after i sent the message)"  # qmail
    r"|(my name was rejected)|(but greeting failed)|(failed on data command)"  # qmail
    r"|\[(rcpt_to|mail_from)\]"  # Yahoo
    r"|error following (rcpt|mail|data) command"
    r"|did not like our (rcpt to|mail from|data)"  # DragonFly
)
# Every branch of _COMMAND_IN_TEXT contains one of these (the text is lower-case).
_COMMAND_KEYS: Final = ("in reply to ", "after ", "does not like recipient", "sender was rejected",
                        "failed after i sent", "my name was rejected", "but greeting failed",
                        "failed on data command", "[rcpt_to]", "[mail_from]", "error following ",
                        "did not like our ")
_COMMAND_NAMES: Final[dict[str, str]] = {
    "rcpt to": "RCPT", "mail from": "MAIL", "end of data": "DATA", "data": "DATA",
    "helo": "HELO", "ehlo": "EHLO", "starttls": "STARTTLS", "initial connection": "CONN",
    "does not like recipient": "RCPT", "sender was rejected": "MAIL",
    "failed after i sent the message": "DATA", "my name was rejected": "EHLO",
    "but greeting failed": "CONN", "failed on data command": "DATA",
    "rcpt_to": "RCPT", "mail_from": "MAIL", "rcpt": "RCPT", "mail": "MAIL",
}
#: Commands sent before DATA: a rejection there cannot be about the message content.
_BEFORE_DATA: Final = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "MAIL", "RCPT"})

_INTERSCAN: Final = re.compile(r"unable to deliver message to <[^<> ]+@[^<> ]+>")
_DELIVERED_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded"})
_ADDRESS: Final = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
_WORDS: Final = re.compile(r"[^\W\d_]{2}")




@dataclass(slots=True)
class _Facts:
    text: str  # lower-cased, bounded diagnostic
    code: str | None  # enhanced status (given or found in the text)
    sname: str | None  # the status code's own meaning (STATUS_REASONS)
    command: str | None  # RCPT, MAIL, DATA, EHLO ...
    reply: str | None
    hits: frozenset[str]  # phrase tables that match the text (reasons.matching_tables)


# -- probes: does this reason apply, judged on status + wording + command --------------------


def _probe_default(reason: str) -> Callable[[_Facts], bool]:
    def probe(f: _Facts) -> bool:
        return f.sname == reason or (reason in f.hits)

    return probe


def _probe_mesgtoobig(f: _Facts) -> bool:
    if f.sname == "exceedlimit":
        return False
    return f.sname == "mesgtoobig" or "mesgtoobig" in f.hits


def _probe_contenterror(f: _Facts) -> bool:
    if _probe_spamdetected(f):
        return False
    return f.sname == "contenterror" or "contenterror" in f.hits


def _probe_exceedlimit(f: _Facts) -> bool:
    if f.sname == "mesgtoobig":
        return False
    return f.sname == "exceedlimit" or "exceedlimit" in f.hits


def _probe_suspend(f: _Facts) -> bool:
    # 525 is "user account disabled" in some MTAs (Sendmail 5.7.13).
    return f.sname == "suspend" or f.reply == "525" or "suspend" in f.hits


def _probe_norelaying(f: _Facts) -> bool:
    if f.command in ("CONN", "EHLO", "HELO"):
        return False
    return "norelaying" in f.hits


_NOT_A_DEAD_MAILBOX: Final = (
    "norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept", "speeding",
    "toomanyconn", "filtered_strong",
)


def _probe_userunknown(f: _Facts) -> bool:
    if f.sname == "suspend":
        return False
    if "userunknown_strong" in f.hits:
        return True
    if f.sname == "userunknown":
        # 5.1.1 unless the words say the refusal was about something else.
        return not any((r in f.hits) for r in _NOT_A_DEAD_MAILBOX)
    # Without a 5.1.x code, mailbox wording counts only as an answer to RCPT TO. With no
    # command known it may be a filter's answer after DATA (X1, X2, McAfee, Exchange 2003
    # without its error code): ``filtered``, as Sisimai decides. MTAs that report their own
    # directory lookup say so in fixed words (``userunknown_strong``: Exchange 2003
    # "(000C05A6)", IMail "Unknown user: <address>", Domino/Notes directory wording).
    return f.command == "RCPT" and "userunknown" in f.hits


def _probe_filtered(f: _Facts) -> bool:
    if f.sname == "suspend":
        return False
    if f.sname == "filtered":
        return "userunknown" in f.hits or "filtered" in f.hits
    # After DATA (or with no command known) "no such user" comes from a content filter.
    if f.command in _BEFORE_DATA:
        return False
    return "filtered" in f.hits or "userunknown" in f.hits


def _probe_rejected(f: _Facts) -> bool:
    if f.sname == "rejected":
        return True
    if f.command == "MAIL":
        return "rejected" in f.hits
    if f.command == "DATA" and f.sname != "userunknown":
        return "rejected" in f.hits
    if f.sname is None or f.sname in ("securityerror", "systemerror", "userunknown"):
        # (userunknown: the 5.1.x probe already declined, the words are about the sender)
        return "rejected" in f.hits
    return False


def _probe_hostunknown(f: _Facts) -> bool:
    if "dns_temporary" in f.hits or "notaccept" in f.hits:
        return False
    if f.sname == "hostunknown":
        return "networkerror" not in f.hits
    if f.code is not None and f.code[0] == "4":
        return False  # a temporary failure cannot prove the domain does not exist
    if "blocked" in f.hits or "rejected" in f.hits:
        return False  # "Helo command rejected: Host not found", "Sender address rejected: Domain not found"
    return "hostunknown" in f.hits


def _probe_spamdetected(f: _Facts) -> bool:
    if f.code is None:
        return False
    if f.sname == "spamdetected":
        return True
    if f.command in _BEFORE_DATA:
        return False
    if "spamdetected_strong" in f.hits:
        return True
    # "blocked for spamming", "IP listed as a spam source": about the sender, not content.
    return "blocked" not in f.hits and "spamdetected" in f.hits


def _probe_expired(f: _Facts) -> bool:
    # x.4.7 / x.4.1 together with give-up wording: the MTA ran out of time, whatever the
    # last attempt said.
    return f.sname == "expired" and "expired" in f.hits


def _probe_text(reason: str) -> Callable[[_Facts], bool]:
    def probe(f: _Facts) -> bool:
        return (reason in f.hits)

    return probe


#: Pass 1: reasons probed in this order; the first that fires wins.
_PROBE_ORDER: Final[tuple[tuple[str, Callable[[_Facts], bool]], ...]] = (
    ("expired", _probe_expired),
    ("mailboxfull", _probe_default("mailboxfull")),
    ("mesgtoobig", _probe_mesgtoobig),
    ("exceedlimit", _probe_exceedlimit),
    ("suspend", _probe_suspend),
    ("hasmoved", _probe_default("hasmoved")),
    ("norelaying", _probe_norelaying),
    ("authfailure", _probe_default("authfailure")),
    ("userunknown", _probe_userunknown),
    ("filtered", _probe_filtered),
    ("requireptr", _probe_default("requireptr")),
    ("notcompliantrfc", _probe_text("notcompliantrfc")),
    ("badreputation", _probe_default("badreputation")),
    ("contenterror", _probe_contenterror),
    ("rejected", _probe_rejected),
    ("hostunknown", _probe_hostunknown),
    ("spamdetected", _probe_spamdetected),
    ("speeding", _probe_text("speeding")),
    ("toomanyconn", _probe_default("toomanyconn")),
    ("blocked", _probe_default("blocked")),
)

#: Pass 2: wording alone, when the status code says nothing specific.
_TEXT_ORDER: Final[tuple[str, ...]] = (
    "mailboxfull", "authfailure", "badreputation", "speeding", "spamdetected", "virusdetected",
    "policyviolation", "norelaying", "notaccept", "systemerror", "networkerror", "suspend", "contenterror",
    "systemfull", "failedstarttls", "securityerror", "mailererror",
    # last: a give-up after retries is the reason only when the notice names no cause
    "expired",
)


#: Reasons about the recipient: impossible before the recipient was named (RCPT TO).
_RECIPIENT_REASONS: Final = frozenset({"userunknown", "filtered", "hostunknown", "suspend", "mailboxfull", "hasmoved"})
_BEFORE_RCPT: Final = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "MAIL"})


# Advice that follows a refusal ("Please check your SPF record", "For more information
# visit ...", "If you are the sender ...") names what the reader may do, not why the
# message was refused: its words must not pick the reason.
_ADVICE_START: Final = re.compile(
    r"\b(?:please\s+)?(?:check|verify|visit|see|refer to|contact|review|read|consult|go to|learn more"
    r"|for (?:more|further) (?:information|details|help)|to learn more|if you\s|you (?:can|may|should|might"
    r"|need to)\s|ask your|make sure)\b"
)
_SENTENCE_END: Final = re.compile(r"[.!](?=\s|$)")


def without_advice(text: str) -> str:
    """``text`` (lower-case) without its advice sentences; unchanged if nothing else is left.

    An advice sentence starts (at the start of the text or after ". ", "! ", "; ", ": ")
    with one of the _ADVICE_START words and runs to the next sentence end.
    """
    if not text:
        return text
    out: list[str] = []
    pos = 0
    for m in _ADVICE_START.finditer(text):
        if m.start() < pos:
            continue
        before = text[: m.start()].rstrip()
        if before and before[-1] not in ".!;:":
            continue
        end = _SENTENCE_END.search(text, m.end())
        out.append(text[pos : m.start()])
        pos = end.end() if end else len(text)
    if not out:
        return text
    out.append(text[pos:])
    cut = " ".join(out)
    return cut if cut.strip() else text


def _decide(f: _Facts, action: str | None, smtp_type: bool) -> str:
    if f.command in (None, "DATA"):
        # The last hop was a local delivery agent (procmail, maildrop, Dovecot LDA ...):
        # its own error text decides.
        local = lda_reason(f.text)
        if local is not None:
            return local
    if "mailererror_strong" in f.hits or not smtp_type:
        return "mailererror"
    for table in DECISIVE_ORDER:
        if table in f.hits:
            return table.split(":", 1)[1]
    if smtp_type:
        early = f.command in _BEFORE_RCPT
        for name, probe in _PROBE_ORDER:
            if early and name in _RECIPIENT_REASONS:
                continue
            if probe(f):
                return name
        if early:
            # Refused before any recipient was named: about us, not the address.
            for name in _TEXT_ORDER:
                # (qmail appends "in the queue too long" to every final failure)
                if name != "expired" and (name in f.hits):
                    return name
            if f.command == "STARTTLS":
                return "failedstarttls"
            if f.command == "MAIL":
                return "rejected"  # refused at MAIL FROM: the sender was refused
            if f.sname is not None and f.sname not in _RECIPIENT_REASONS:
                return f.sname  # a specific code at greeting/EHLO keeps its meaning (5.7.1 security)
            return "blocked"
    if f.sname is not None and f.sname not in VAGUE and smtp_type:
        return f.sname
    for name in _TEXT_ORDER:
        if (name in f.hits):
            return name
    if f.sname is not None:
        return f.sname
    if f.code is not None and f.code[1:3] == ".6":
        return "contenterror"
    if f.code is not None and f.code[1:3] == ".7":
        return "securityerror"
    if not smtp_type:
        return "mailererror"
    if "syntaxerror" in f.hits or (f.reply is not None and f.reply[1:2] == "0" and f.reply[0] in "45"
                                   and "1" <= f.reply[2] <= "7"):
        # 501-507 / 401-407: the remote host did not understand a command we sent
        return "syntaxerror"
    if action in ("delayed", "expired"):
        return "expired"
    if f.command in ("CONN", "EHLO", "HELO"):
        return "blocked"
    if _INTERSCAN.search(f.text):
        # Trend Micro InterScan MSS says only "Unable to deliver message to <address>" when
        # the address was refused (its transcript shows RCPT TO).
        return "userunknown"
    # onhold: the bounce says something we cannot place; undefined: it says nothing (an
    # empty diagnostic, or only the address itself).
    return "onhold" if _WORDS.search(_ADDRESS.sub(" ", f.text)) else "undefined"


# KDDI / au (ezweb.ne.jp, au.com) answer "550 <address>: User unknown" for a dead mailbox
# and "550 : User unknown" (no address) when the recipient's own filter refused us.
_KDDI_DOMAIN: Final = re.compile(r"@(?:ezweb\.ne\.jp|au\.com)>")
# Symantec / Broadcom Email Security.cloud (MessageLabs): the fixed refusals of its
# knowledge base, each meaning one reason whatever SMTP stage quoted it.
_MESSAGELABS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("userunknown", re.compile(r"no such user|invalid recipient|mailbox is not allowed")),
    ("rejected", re.compile(
        r"sender envelope domain not allowed|your (?:domain|email address) has been (?:blocked|blacklisted)"
        r"|your envelope sender is in my badmailfrom list")),
    ("blocked", re.compile(r"your ip is in the pbl|your ip address has been ")),
    ("badreputation", re.compile(r"connection rejected by policy")),
    ("authfailure", re.compile(r"domain authentication fail")),
    ("notcompliantrfc", re.compile(r"requested action aborted \[4\]|this message is not rfc 5322")),
    ("contenterror", re.compile(r"stray linefeeds in message")),
    ("failedstarttls", re.compile(r"tls/sslv3 connection required")),
    ("spamdetected", re.compile(r"message filtered|filtered by outbound scanning")),
    ("toomanyconn", re.compile(r"too many recipients received this hour|too many messages")),
)


_HOST_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
#: Detector names that stand for one provider's hosts (a detector knows the host family).
_MTA_HOSTS: Final[dict[str, str]] = {"messagelabs": "mail.messagelabs.com", "kddi": "msmx.au.com",
                                     "aol": "omr.mx.aol.com"}


# "host mx.example.jp[192.0.2.1] said:" (Postfix), "host mx.example.jp [192.0.2.1]:" (Exim),
# "... while talking to mx.example.jp.:" (Sendmail): the refusing host named in the reply text.
_TEXT_HOST: Final = re.compile(r"(?:\bhost |while talking to )([a-z0-9][a-z0-9.-]{2,250}\.[a-z]{2,24})\.?[\[ :]")


def _hosts(remote_mta: str | None, recipient: str | None, reporting_mta: str | None, mta: str | None,
           text: str = "") -> str:
    """The host names a host rule may key on, space-separated and lower-case: the host that
    refused, the recipient's domain and the reporting host (Sisimai checks the same three),
    and, when no refusing host is given, the one the reply text names."""
    names: list[str] = []
    if not remote_mta and text:
        m = _TEXT_HOST.search(text, 0, 600)
        if m is not None:
            names.append(m.group(1))
    for value in (remote_mta, recipient.rpartition("@")[2] if recipient else None, reporting_mta):
        if value:
            m = _HOST_NAME.search(value[:300].lower().rpartition(";")[2])  # "dns; host" -> host
            if m is not None:
                names.append(m.group(0))
    if mta and mta in _MTA_HOSTS:
        names.append(_MTA_HOSTS[mta])
    return " ".join(names)


# Tencent QQ Mail / Exmail (*.qq.com, replies link service.mail.qq.com): its help pages
# give one reason per refusal text.
_TENCENT: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("authfailure", re.compile(r"(?:spf|dmarc) check failed")),
    ("blocked", re.compile(r"suspected bounce attacks|suspected spam ip|connection denied")),
    ("mesgtoobig", re.compile(r"message too large")),
    ("spamdetected", re.compile(r"spam is embedded in the email|mail content denied")),
    ("rejected", re.compile(r"suspected spam|mail is rejected by recipients")),
    ("speeding", re.compile(r"mailbox unavailable or access deni(?:n)?ed|frequency of receiving messages is limited")),
    ("suspend", re.compile(r"is a deactivated mailbox")),
    ("syntaxerror", re.compile(r"bad address syntax")),
    ("toomanyconn", re.compile(r"(?:ip|domain|sender|connection) frequency limited")),
    ("userunknown", re.compile(r"mailbox not found")),
)


def _host_rule(f: _Facts, hosts: str) -> str | None:
    """Rules for hosts whose fixed wording means something the generic tables cannot tell.

    * NTT docomo (mfsmax.docomo.ne.jp) answers "550 Unknown user" both for a dead mailbox
      (at RCPT TO, or with Status 5.1.1) and for its per-user sender filter (after DATA,
      Status 5.0.0: the *sender* is refused) or domain filter (Status 5.2.0).
    * KDDI / au: "<address>: User unknown" is a dead mailbox at any stage, "550 : User
      unknown" the recipient's filter.
    * AOL outbound relays (X-Outbound-Mail-Relay): a broken MX answer means the domain
      takes no mail (``notaccept``).
    * MessageLabs (*.messagelabs.com): its documented refusals.
    * Tencent QQ Mail (*.qq.com): its documented refusals.
    """
    if "docomo.ne.jp" in hosts or "docomo.ne.jp[" in f.text:
        if f.code in ("5.1.1", "5.0.911"):
            return "userunknown"
        if f.code == "5.2.0":
            return "filtered"
        if f.code == "5.0.0" and "550 unknown user" in f.text:
            return "userunknown" if f.command == "RCPT" else "rejected" if f.command == "DATA" else None
    if "user unknown" in f.text and (
        _ends_with(hosts, _KDDI_HOSTS) or _KDDI_DOMAIN.search(f.text) is not None
    ):
        if ">: user unknown" in f.text:
            return "userunknown"
        if "550 : user unknown" in f.text:
            return "filtered"
    if _ends_with(hosts, _AOL_HOSTS) or f.text.startswith("x-outbound-mail-relay;"):
        # AOL's outbound relays give up on a domain whose MX lookup keeps returning a broken
        # answer: that domain takes no mail. (Elsewhere the same Postfix text is a network error.)
        if "type=mx: malformed or unexpected name server reply" in f.text:
            return "notaccept"
        if "host or domain name not found" in f.text:
            return "hostunknown"
    if _ends_with(hosts, _MESSAGELABS_HOSTS) or "messagelabs.com/support" in f.text:
        for reason, rx in _MESSAGELABS:
            if rx.search(f.text):
                return reason
    if _ends_with(hosts, _HOTMAIL_HOSTS) and "requested action not taken: mailbox unavailable" in f.text:
        return "userunknown"  # Outlook.com's fixed answer for a dead mailbox
    if _ends_with(hosts, _QQ_HOSTS) or "mail.qq.com" in f.text:
        for reason, rx in _TENCENT:
            if rx.search(f.text):
                return reason
    return None


class _Domains:
    """Domains a host may be or be inside (whole labels only), for host rules."""

    __slots__ = ("names", "rx")

    def __init__(self, *domains: str) -> None:
        self.names = tuple(d.lstrip(".") for d in domains)
        alts = "|".join(re.escape(d) for d in self.names)
        self.rx = re.compile(rf"(?:^|[ .])(?:{alts})(?= |$)")


_KDDI_HOSTS: Final = _Domains("ezweb.ne.jp", "au.com")
_AOL_HOSTS: Final = _Domains("mx.aol.com", "mail.aol.com")
_MESSAGELABS_HOSTS: Final = _Domains("messagelabs.com")
_HOTMAIL_HOSTS: Final = _Domains("hotmail.com")
_QQ_HOSTS: Final = _Domains("qq.com")


def _ends_with(hosts: str, domains: _Domains) -> bool:
    """Is one of the (space-separated) hosts one of the domains or inside one?"""
    # a plain substring test first: the pattern can only match where the name occurs
    return any(d in hosts for d in domains.names) and domains.rx.search(hosts) is not None


# Gmail's own NDRs end the remote answer with "(state N)": the SMTP stage it failed at.
_GMAIL_STATE: Final = re.compile(r"\(state (\d{1,2})\)")
_GMAIL_STAGE: Final[dict[str, str]] = {"6": "MAIL", "8": "AUTH", "9": "AUTH", "12": "AUTH", "13": "EHLO",
                                       "14": "RCPT", "15": "DATA", "17": "DATA", "18": "DATA"}
_GMAIL_REASON: Final[dict[str, str]] = {"6": "failedstarttls", "8": "systemerror", "9": "failedstarttls",
                                        "12": "norelaying", "15": "filtered", "17": "filtered", "18": "filtered"}


def _gmail_state(f: _Facts) -> str | None:
    """Gmail (as the sending MTA) names the stage; a refusal after DATA is the remote
    filter's, TLS/AUTH stages are about the connection. A specific status code wins."""
    if "(state " not in f.text or "google tried to deliver" not in f.text:
        return None
    m = _GMAIL_STATE.search(f.text)
    if m is None:
        return None
    state = m.group(1)
    if f.command is None and state in _GMAIL_STAGE:
        f.command = _GMAIL_STAGE[state]
    reason = _GMAIL_REASON.get(state)
    if reason is None:
        return None  # the stage alone (EHLO, RCPT) leaves the decision to the probes
    quoted = _status_from(f.text)
    if quoted is not None and ".0" not in quoted and quoted in STATUS_REASONS:
        return STATUS_REASONS[quoted]
    return reason


def _status_from(text: str) -> str | None:
    return find_status(text)  # skips version numbers ("X-Mailman-Version: 2.1.39")


def _prefer(field: str | None, in_text: str | None, reply: str | None) -> str | None:
    """Choose between the DSN's Status: field and the enhanced code quoted in the text.

    The quoted code is the remote server's own answer and usually the more precise one;
    the Status: field wins when it is as specific, or when the reply code's class sides
    with it. Generic codes (x.0.0, x.y.0, 4.4.7, 4.7.0, 5.3.z, x.5.z protocol codes) give
    way to the quoted one.
    """
    if not field or not in_text:
        return field or in_text
    if reply and field[0] != in_text[0]:
        if reply[0] == field[0]:
            return field
        if reply[0] == in_text[0]:
            return in_text
    if field == in_text:
        return field
    if ".0.0" in field:
        return field if ".0.0" in in_text else in_text
    if ".0" in field and ".0" not in in_text:
        return in_text
    if ".0.0" in in_text:
        return field
    if field in ("4.4.7", "4.7.0") or field.startswith("5.3.") or field[1:4] in (".5.1", ".5.2", ".5.4", ".5.5"):
        return in_text
    if field == "5.1.1":
        return field if ".0" in in_text or in_text.startswith("5.5.") else in_text
    if field == "5.1.3" and in_text.startswith("5.7."):
        return in_text
    return field


# An SMTP verb quoted in capitals ("RCPT TO:<a@example.jp>", ">>> DATA"): transcripts of
# Sendmail, InterScan, IMail ... The latest stage quoted wins (DATA > RCPT > MAIL > EHLO).
# (never a capability an EHLO reply lists: "250-STARTTLS", "250 STARTTLS")
_VERB: Final = re.compile(
    r"(?<![A-Za-z0-9@.-])(?<!250 )(RCPT T[Oo]|MAIL F(?:ROM|rom)|DATA|EHLO|HELO|STARTTLS)(?![A-Za-z0-9@])"
)
_VERB_RANK: Final[dict[str, tuple[int, str]]] = {
    "EHLO": (1, "EHLO"), "HELO": (1, "HELO"), "STARTTLS": (2, "STARTTLS"), "MAIL FROM": (3, "MAIL"),
    "MAIL From": (3, "MAIL"), "RCPT TO": (4, "RCPT"), "RCPT To": (4, "RCPT"), "DATA": (5, "DATA"),
}


def _verb_in(diagnostic: str) -> str | None:
    best: tuple[int, str] | None = None
    for m in _VERB.finditer(diagnostic):
        rank = _VERB_RANK[m.group(1)]
        if best is None or rank[0] > best[0]:
            best = rank
    return best[1] if best else None


def _command_from(text: str) -> str | None:
    if not any(k in text for k in _COMMAND_KEYS):
        return None  # most diagnostics name no command: skip the pattern
    m = _COMMAND_IN_TEXT.search(text)
    if m is None:
        return None
    word = next(g for g in m.groups() if g)
    return _COMMAND_NAMES.get(word)


def category_for(reason: str, permanent: bool | None, action: str | None) -> Category:
    """Map a reason, its permanence and the DSN action to the product category.

    ===========================================  ==========================================
    situation                                    category
    ===========================================  ==========================================
    feedback                                     complaint
    vacation                                     autoreply
    delivered                                    delivered
    action "delayed", not a permanent failure    delay
    undefined, onhold                            unknown
    address-bad reason (userunknown,             hard; soft when temporary (4.x.x)
    hostunknown, hasmoved, notaccept)
    sender-side reason (blocked, spamdetected,   blocked; soft when temporary (4.x.x)
    policyviolation, securityerror, authfailure,
    badreputation, requireptr, notcompliantrfc,
    failedstarttls, rejected, norelaying,
    toomanyconn, speeding, virusdetected,
    contenterror)
    anything else (mailboxfull, suspend,         soft
    filtered, expired, systemerror ...)
    ===========================================  ==========================================
    """
    if reason == "feedback":
        return Category.COMPLAINT
    if reason == "vacation":
        return Category.AUTOREPLY
    if reason == "delivered":
        return Category.DELIVERED
    if action is not None and action.lower() == "delayed" and permanent is not True:
        return Category.DELAY
    info = REASONS.get(reason)
    if info is None or info.category == "unknown":
        return Category.UNKNOWN
    if info.category in ("hard", "blocked"):
        return Category(info.category) if permanent is not False else Category.SOFT
    return Category.SOFT


def classify(
    *,
    status: str | None,
    replycode: str | None,
    diagnostic: str,
    action: str | None = None,
    kind_hint: str | None = None,
    mta: str | None = None,
    subject: str | None = None,
    command: str | None = None,
    reason_hint: str | None = None,
    remote_mta: str | None = None,
    reporting_mta: str | None = None,
    recipient: str | None = None,
    diagnostic_type: str | None = None,
) -> Verdict:
    """Decide reason, status, hard, permanent and category for one failed recipient.

    Verdicts are cached by their inputs: the diagnostic as the rules read it (its first
    MAX_SCAN characters) and the recipient's domain only (the one part of the address the
    rules read). Providers send the same refusal text to many recipients, so a mailbox's
    bounces repeat; a hit costs one dictionary look-up instead of ~100 pattern tests.
    """
    domain = recipient.rpartition("@")[2].lower() if recipient and "@" in recipient else None
    return _classify_cached(
        status, replycode, (diagnostic or "")[:MAX_SCAN], action, kind_hint, mta, command, reason_hint,
        remote_mta, reporting_mta, domain, (diagnostic_type or "").lower() or None,
    )


@lru_cache(maxsize=8192)
def _classify_cached(
    status: str | None, replycode: str | None, diagnostic: str, action: str | None, kind_hint: str | None,
    mta: str | None, command: str | None, reason_hint: str | None, remote_mta: str | None,
    reporting_mta: str | None, domain: str | None, diagnostic_type: str | None,
) -> Verdict:
    return _classify(
        status=status, replycode=replycode, diagnostic=diagnostic, action=action, kind_hint=kind_hint, mta=mta,
        command=command, reason_hint=reason_hint, remote_mta=remote_mta, reporting_mta=reporting_mta,
        recipient=f"postmaster@{domain}" if domain else None, diagnostic_type=diagnostic_type,
    )


def _classify(
    *,
    status: str | None,
    replycode: str | None,
    diagnostic: str,
    action: str | None = None,
    kind_hint: str | None = None,
    mta: str | None = None,
    subject: str | None = None,
    command: str | None = None,
    reason_hint: str | None = None,
    remote_mta: str | None = None,
    reporting_mta: str | None = None,
    recipient: str | None = None,
    diagnostic_type: str | None = None,
) -> Verdict:
    """Decide reason, status, hard, permanent and category for one failed recipient.

    ``status``/``replycode``/``diagnostic``/``action`` are what the bounce says about the
    recipient. ``kind_hint`` is the message kind the structure parser found ("failure",
    "delay", "complaint", "autoreply", "delivered" ...). ``command`` is the SMTP command
    the remote host answered (RCPT, MAIL, DATA, EHLO ...), when known; otherwise it is
    read from the wording. ``reason_hint`` is a reason a format detector knows
    structurally; it is kept unless it is one of the vague reasons. ``remote_mta`` (the
    host that refused), ``recipient`` (its domain) and ``reporting_mta`` (the host that
    wrote the bounce) enable the host rules (NTT docomo, KDDI/au, AOL, MessageLabs), as
    ``mta`` (the detector name) does for a few per-MTA conventions (Exim, Gmail).
    ``subject`` is accepted for future refinement. Never raises.
    """
    action_l = action.strip().lower() if action else None
    hint = kind_hint.lower() if kind_hint else None
    if hint in ("complaint", "feedback") or reason_hint == "feedback":
        return Verdict("feedback", None, None, None, Category.COMPLAINT)
    if hint in ("autoreply", "vacation") or reason_hint == "vacation":
        return Verdict("vacation", None, None, None, Category.AUTOREPLY)

    text = diagnostic[:MAX_SCAN].lower() if diagnostic else ""
    reply = replycode.strip() if replycode else None
    if reply is not None and not (len(reply) == 3 and reply.isdigit()):
        reply = None  # not an SMTP reply code ("\r", "5", "550-" ...)
    if not reply and text:
        m = _REPLY_IN_TEXT.search(text)
        reply = m.group(1) if m else None
    given = _status_from(status.strip()) if status else None
    if given is not None and ".0.9" in given and len(given) == 7:
        given = None  # a pseudo code from an earlier pass, not something the bounce said
    code = _prefer(given, _status_from(text) if text else None, reply)

    if (code is not None and code[0] == "2") or action_l in _DELIVERED_ACTIONS or hint == "delivered":
        # (a success with a failure code is contradictory: keep only a 2.x.x code)
        return Verdict("delivered", code if code and code[0] == "2" else None, None, None, Category.DELIVERED)

    cmd = command.strip().upper() if command else None
    if cmd is not None:
        cmd = {"RCPT TO": "RCPT", "MAIL FROM": "MAIL", "END OF DATA": "DATA", "BDAT": "DATA"}.get(cmd, cmd)
    else:
        cmd = _command_from(text) if text else None
        if cmd is None and diagnostic:
            cmd = _verb_in(diagnostic[:MAX_SCAN])
    smtp_type = not text.startswith(("x-unix", "x-postfix"))

    if reason_hint and reason_hint in REASONS and reason_hint not in VAGUE:
        reason = reason_hint
    else:
        sname = STATUS_REASONS.get(code) if code else None
        hits = matching_tables(without_advice(text))
        if "rejected_isnot" in hits:
            # "recipient address rejected" is about the recipient, not the sender
            hits = hits - {"rejected"}
        facts = _Facts(text, code, sname, cmd, reply, hits)
        reason = (
            _host_rule(facts, _hosts(remote_mta, recipient, reporting_mta, mta, text))
            or _gmail_state(facts)
            or _decide(facts, action_l, smtp_type)
        )
        if reason in ("onhold", "undefined") and diagnostic_type == "x-unix":
            # RFC 3464's X-Unix type: a local program failed, and its text named no cause
            reason = "mailererror"

    if code is None:
        temporary = (reply is not None and reply[0] == "4") or (
            # Exim: a full mailbox and a give-up after retries are reported with the
            # temporary pseudo code (Sisimai's Exim decoder does the same)
            mta == "exim" and reason in ("mailboxfull", "expired")
        ) or (
            # Gmail's delay notices give their reason under "Technical details of temporary
            # failure": any reason text in one is temporary (a notice without it is not).
            mta == "gmail" and action_l == "delayed" and _WORDS.search(_ADDRESS.sub(" ", text)) is not None
        ) or (
            # the bounce itself says the MTA is still trying (a warning with no code)
            action_l == "delayed" and mta in (None, "generic", "rfc3464")
        ) or (
            ("temporar" in text or "persistent" in text or "retry timeout" in text or "failing for a long" in text
             or "delay reason" in text or "no action is required" in text)
            and _TEMPORARY_WORDS.search(text) is not None
        )
        if mta == "exim" and cmd == "MAIL":
            # Exim refused at MAIL FROM: Sisimai's Exim decoder fixes the pseudo status to
            # "onhold" (x.0.901) before the reason is known; kept for comparable codes.
            pseudo = PSEUDO_STATUS["onhold"]
        else:
            pseudo = PSEUDO_STATUS.get(reason, "5.0.900")
        if temporary and reason not in NEVER_TEMPORARY:
            # Sisimai's temporary table differs in one place: filtered is 4.0.924
            code = "4.0.924" if reason == "filtered" else "4" + pseudo[1:]
        else:
            code = pseudo
    permanent = True if code[0] == "5" else False if code[0] == "4" else None

    if reason in NON_FAILURES:
        hard: bool | None = None
    elif reason == "notaccept":
        hard = permanent is not False
    else:
        hard = reason in ADDRESS_BAD

    category = category_for(reason, permanent, "delayed" if hint == "delay" else action_l)
    return Verdict(reason, code, hard, permanent, category)
