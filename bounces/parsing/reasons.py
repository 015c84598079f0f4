"""The fixed bounce-reason vocabulary and the tables that recognise each reason.

The names are Sisimai's (so results compare directly with Sisimai and with the labelled
corpus in ../shared/bounce-corpus). Three tables live here, all pure data:

* ``REASONS``: every reason with a description, whether it means the *address itself* is
  bad (``hard``) and its product category when the failure is permanent.
* ``PHRASES``: ordered phrase tables per reason. Each reason's phrases are joined into one
  regular expression, compiled once at import, and run over the lower-cased diagnostic text.
  The order of ``PHRASES`` is the priority: the first reason that matches wins.
* ``STATUS_REASONS``: RFC 3463 enhanced status code -> reason, used when no phrase decides.

The phrases are written from the wording real MTAs and providers use (Postfix, Exim,
Sendmail, qmail, Exchange/Office 365, Gmail, Yahoo, Outlook.com, AOL, mail.ru, Yandex, GMX,
Zoho, Amazon SES, Japanese carriers, ...). They are deliberately phrased as MTA wording,
never as text of one particular sample message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    """What one reason means.

    ``hard`` is Sisimai's "hardbounce": the recipient address itself is bad, so mailing it
    again is pointless. ``category`` is the product category when the failure is permanent
    (see ``classify.category_for`` for the full table, which also looks at permanence).
    """

    name: str
    description: str
    hard: bool
    category: str  # a Category value; kept as str so this module has no dependencies


def _r(name: str, description: str, hard: bool, category: str) -> tuple[str, ReasonInfo]:
    return name, ReasonInfo(name, description, hard, category)


# Category values (must match types.Category).
_HARD, _SOFT, _BLOCKED = "hard", "soft", "blocked"

REASONS: Final[dict[str, ReasonInfo]] = dict(
    [
        # -- the address itself is bad -------------------------------------------------
        _r("userunknown", "Mailbox does not exist at the destination (5.1.1).", True, _HARD),
        _r("hostunknown", "Recipient domain does not exist or has no usable MX (5.1.2).", True, _HARD),
        _r("hasmoved", "Recipient has moved and left no forwarding address (5.1.6).", True, _HARD),
        _r("notaccept", "Destination does not accept mail at all (null MX, 5.1.10, 5.3.2).", True, _HARD),
        # -- the recipient side refuses or cannot take it now ------------------------------
        _r("mailboxfull", "Recipient mailbox is full / over quota (5.2.2).", False, _SOFT),
        _r("suspend", "Recipient mailbox is disabled or suspended (5.2.1, 5.7.13).", False, _SOFT),
        _r("filtered", "Recipient or its filter refuses this mail (recipient-side rule).", False, _SOFT),
        _r("exceedlimit", "Message exceeds the recipient's size limit (5.2.3).", False, _SOFT),
        _r("mesgtoobig", "Message is too big for the destination system (5.3.4).", False, _SOFT),
        _r("systemerror", "Remote system error or misconfiguration (5.3.x, loops).", False, _SOFT),
        _r("systemfull", "Remote system disk is full (5.3.1).", False, _SOFT),
        _r("networkerror", "Network or DNS problem reaching the destination (5.4.x).", False, _SOFT),
        _r("expired", "Delivery time expired, the MTA gave up retrying (4.4.7).", False, _SOFT),
        _r("mailererror", "Local delivery program (procmail, pipe...) failed.", False, _SOFT),
        _r("syntaxerror", "SMTP command syntax error (5.5.x).", False, _SOFT),
        # -- sender-side problems: our IP, domain, authentication or content --------------
        _r("blocked", "Sending IP or host is blocked / blocklisted / refused.", False, _BLOCKED),
        _r("spamdetected", "Message content was judged to be spam.", False, _BLOCKED),
        _r("policyviolation", "Message breaks a site policy (e.g. attachments, DMARC reject policy).", False, _BLOCKED),
        _r("securityerror", "Security or authentication problem (5.7.x).", False, _BLOCKED),
        _r("authfailure", "SPF, DKIM or DMARC authentication failed (5.7.26, 5.7.23).", False, _BLOCKED),
        _r("badreputation", "Sending IP or domain has a poor reputation.", False, _BLOCKED),
        _r("requireptr", "Sending IP has no (matching) reverse DNS / PTR (5.7.25).", False, _BLOCKED),
        _r("notcompliantrfc", "Message is not compliant with RFC 5322 (duplicate headers...).", False, _BLOCKED),
        _r("failedstarttls", "STARTTLS negotiation failed or TLS is required.", False, _BLOCKED),
        _r("rejected", "Envelope sender address was rejected (5.1.7, 5.1.8).", False, _BLOCKED),
        _r("norelaying", "Relaying denied: the destination is not served there.", False, _BLOCKED),
        _r("toomanyconn", "Too many connections or recipients from the sender.", False, _BLOCKED),
        _r("speeding", "Sender exceeded a rate limit.", False, _BLOCKED),
        _r("virusdetected", "Message contains a virus.", False, _BLOCKED),
        _r("contenterror", "Message content or encoding was refused (5.6.x).", False, _BLOCKED),
        # -- not really known ------------------------------------------------------------
        _r("onhold", "A bounce whose reason could not be decided (kept on hold).", False, "unknown"),
        _r("undefined", "No reason could be decided at all.", False, "unknown"),
        # -- not failures ----------------------------------------------------------------
        _r("delivered", "Delivery succeeded (success DSN).", False, "delivered"),
        _r("feedback", "ARF feedback-loop report (a complaint).", False, "complaint"),
        _r("vacation", "Auto-reply / out of office.", False, "autoreply"),
    ]
)

#: Reasons for which a permanent failure means the address itself is bad.
ADDRESS_BAD: Final[frozenset[str]] = frozenset(n for n, r in REASONS.items() if r.hard)
#: Reasons that are not delivery failures; ``hard`` and ``permanent`` are None for these.
NON_FAILURES: Final[frozenset[str]] = frozenset({"delivered", "feedback", "vacation"})


# ---------------------------------------------------------------------------------------
# Phrase tables. Each entry is a regular expression over lower-cased, whitespace-folded
# text. Keep them specific: a phrase here overrides the status code.
# ---------------------------------------------------------------------------------------

_PHRASES: Final[list[tuple[str, tuple[str, ...]]]] = [
    (
        "mesgtoobig",
        (
            r"message (?:is )?too (?:big|large)",
            r"message size exceeds (?:fixed )?(?:maximum|limit)",
            r"exceeds? (?:the )?(?:maximum|fixed) message size",
            r"size (?:of message )?exceeds? (?:the )?(?:maximum|fixed|size) (?:allowed|limit|message)",
            r"message length exceeds administrative limit",
            r"message exceeds (?:the )?(?:maximum|local) size",
            r"mail data too large",
            r"message file too big",
            r"exceeded maximum message size",
        ),
    ),
    (
        "exceedlimit",
        (
            r"message (?:header )?size exceeds the recipient'?s? limit",
            r"mail file size exceeds the maximum",
            r"message too large for this recipient",
            r"5\.2\.3 ",
        ),
    ),
    (
        "mailboxfull",
        (
            r"mailbox (?:is )?full",
            r"mailbox (?:has )?exceeded",
            r"mailbox (?:size limit|quota usage) exceeded",
            r"mailbox (?:would exceed|over quota|quota exceeded)",
            r"(?:mail|disk|storage|box) quota (?:exceeded|violation|reached|full)",
            r"(?:over|exceeded?|exceeding) (?:the |their |its |his |her )?(?:allowed |mailbox |disk |storage )?quota",
            r"quota (?:exceeded|violation|full)",
            r"is over (?:disk )?quota",
            r"user (?:is )?over (?:the )?quota",
            r"over quota",
            r"full mailbox",
            r"mailfolder is full",
            r"maildir (?:over quota|delivery failed: (?:user|domain)disk quota)",
            r"(?:not enough|insufficient) (?:storage|disk) space",
            r"does not have enough space",
            r"exceeded storage allocation",
            r"recipient reached disk quota",
            r"user'?s? (?:space|mailbox) has been used up",
            r"too much mail data",
            r"too many messages (?:on the server|in (?:this|the) mailbox)",
            r"boite du destinataire pleine",
            r"casella (?:di posta )?piena",
            r"postfach (?:ist )?voll",
            r"buzon lleno",
            r"ящик переполнен",
            r"account is full",
            r"inbox (?:is )?full",
            r"mailbox (?:has )?(?:run out|no more) (?:of )?space",
            r"account disabled temporarly for exceeding receiving limits",
        ),
    ),
    (
        "hasmoved",
        (
            r"address (?:has )?(?:been )?changed",
            r"has (?:been )?moved",
            r"no forwarding address",
            r"recipient moved",
        ),
    ),
    (
        "suspend",
        (
            r"mailbox (?:is )?(?:disabled|suspended|inactive|frozen|locked)",
            r"account (?:has been |is )?(?:disabled|suspended|deactivated|inactive|frozen|blocked|locked|expired|closed)",
            r"(?:disabled|suspended|inactive|deactivated|expired) (?:mailbox|account|recipient|user)",
            r"user (?:account )?(?:is )?(?:disabled|suspended|inactive|deactivated)",
            r"recipient (?:is )?(?:disabled|suspended|inactive)",
            r"address (?:is )?(?:disabled|suspended|inactive)",
            r"temporarily (?:disabled|unavailable) (?:account|mailbox)",
            r"this account has been (?:disabled|suspended)",
            r"not an active (?:address|account)",
            r"(?:mailbox|account) (?:currently )?(?:not active|unavailable due to inactivity)",
            r"boite (?:aux lettres )?(?:desactivee|inactive)",
            r"delivery to this (?:mailbox|address) (?:is )?(?:disabled|suspended)",
            r"the email account that you tried to reach is (?:disabled|inactive)",
            r"service suspended",
            r"has been (?:disabled|suspended) due to inactivity",
            r"5\.2\.1 the email account that you tried to reach is disabled",
        ),
    ),
    (
        "userunknown",
        (
            r"user unknown",
            r"unknown (?:user|recipient|mailbox|local[- ]part|e-?mail address|address)",
            r"no such (?:user|mailbox|recipient|address|person|account|local user)",
            r"(?:user|recipient|mailbox|address|account|e-?mail address)(?: [^ ]+)? (?:does not|doesn'?t|did not) exist",
            r"(?:user|recipient|mailbox|address|account)(?: [^ ]+)? (?:was )?not (?:found|exist|present|known|listed)",
            r"(?:invalid|bad|unknown|non[- ]?existent|nonexisting) (?:recipient|mailbox|user|address|e-?mail address)",
            r"mailbox (?:is )?unavailable",
            r"mailbox not (?:found|available|present)",
            r"requested action not taken: mailbox unavailable",
            r"recipient (?:address )?rejected: (?:user unknown|undeliverable address|access denied|invalid user|unknown user|mailbox unavailable)",
            r"recipient not (?:ok|accepted|valid)",
            r"not a valid (?:recipient|user|mailbox|address)",
            r"is not a (?:known|valid) (?:user|mailbox|recipient)",
            r"no (?:mailbox|account|mail box) (?:here )?(?:by that name|available|for this user|found)",
            r"address(?: [^ ]+)? (?:is )?(?:unknown|invalid|not valid|no longer valid)",
            r"the email account that you tried to reach does not exist",
            r"this (?:address|user) (?:no longer )?(?:accepts mail|exists)",
            r"no longer (?:valid|active|exists|in use)",
            r"resolver\.adr\.recipientnotfound",
            r"recipientnotfound",
            r"unrouteable address",
            r"unknown or illegal alias",
            r"sorry, no mailbox here by that name",
            r"badrcptto",
            r"not our customer",
            r"that domain or user isn'?t in my list of allowed rcpthosts",
            r"there is no one at this address",
            r"destination addresses? (?:were|was) unknown",
            r"nonexistent (?:user|address|mailbox)",
            r"non-existent (?:user|address|mailbox|account)",
            r"dosn'?t have a [^ ]+ account",
            r"doesn'?t have a [^ ]+ account",
            r"user not found",
            r"mailbox does not exist",
            r"addressee unknown",
            r"unknown address",
            r"invalid address",
            r"address unknown",
            r"no mailbox",
            r"not a local address",
            r"email address could not be found",
            r"user doesn'?t exist",
            r"account (?:does not|doesn'?t) exist",
            r"utilisateur inconnu",
            r"destinataire inconnu",
            r"unbekannt",
            r"usuario (?:desconocido|no existe)",
            r"nessun utente",
            r"recipient address rejected: user .* does not exist",
        ),
    ),
    (
        "hostunknown",
        (
            r"host (?:or domain name )?not found",
            r"host unknown",
            r"unknown host",
            r"domain (?:name )?not found",
            r"(?:domain|host) (?:does not|doesn'?t) exist",
            r"no such domain",
            r"unrouteable mail domain",
            r"unknown domain",
            r"name or service not known",
            r"name server: [^ ]+: host not found",
            r"nxdomain",
            r"no mx (?:record|host|or a record)",
            r"domain (?:is )?(?:invalid|unknown)",
            r"invalid domain",
            r"recipient (?:address )?rejected: unknown domain",
            r"recipient domain (?:must exist|not found)",
            r"domain must exist",
            r"mail for [^ ]+ loops back to myself",
        ),
    ),
    (
        "notaccept",
        (
            r"null mx",
            r"does not accept mail",
            r"not accepting (?:any )?mail",
            r"accepts no mail",
            r"no mx and no a record",
            r"mail (?:is )?not accepted",
        ),
    ),
    (
        "norelaying",
        (
            r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited|refused)",
            r"(?:not|isn'?t) (?:permitted|allowed|authorized) to relay",
            r"unable to relay",
            r"we do not relay",
            r"no relaying",
            r"relay not (?:permitted|allowed)",
            r"not in my list of allowed rcpthosts",
            r"relaying mail to [^ ]+ is not allowed",
            r"not local host [^ ]+, not a gateway",
            r"that domain isn'?t in my list of allowed rcpthosts",
        ),
    ),
    (
        "toomanyconn",
        (
            r"too many (?:connections|concurrent|simultaneous|smtp sessions|sessions)",
            r"too many recipients",
            r"connection (?:count|limit) exceeded",
            r"exceeded the (?:max(?:imum)?|allowed) (?:number of )?connections",
            r"connection rate limit exceeded",
            r"too many hosts",
        ),
    ),
    (
        "speeding",
        (
            r"rate limit(?:ed|ing)?",
            r"(?:sending|message|receiving) rate",
            r"too many (?:messages|emails|mails)",
            r"exceeded (?:the )?(?:maximum )?(?:number|rate) of (?:messages|emails)",
            r"throttl",
            r"please slow down",
            r"try again later",
        ),
    ),
    (
        "virusdetected",
        (
            r"virus",
            r"malware",
            r"infected",
            r"malicious",
        ),
    ),
    (
        "authfailure",
        (
            r"\bspf\b",
            r"\bdkim\b",
            r"\bdmarc\b",
            r"sender policy framework",
            r"5\.7\.26",
            r"5\.7\.23",
            r"unauthenticated email",
            r"authentication (?:checks? )?fail",
        ),
    ),
    (
        "requireptr",
        (
            r"\bptr\b",
            r"reverse (?:dns|lookup|hostname|name)",
            r"rdns",
            r"(?:cannot|can'?t|could not|unable to) (?:find|resolve|lookup) your (?:host ?name|address|ip)",
            r"no (?:ptr|reverse)",
            r"hostname (?:lookup )?(?:failed|does not resolve)",
            r"client host rejected: cannot find your hostname",
            r"ip name lookup failed",
        ),
    ),
    (
        "badreputation",
        (
            r"reputation",
            r"poor email reputation",
        ),
    ),
    (
        "spamdetected",
        (
            r"spam",
            r"unsolicited",
            r"junk mail",
            r"bulk mail",
            r"content (?:rejected|filter)",
            r"message (?:content )?(?:was )?(?:rejected|refused|blocked) (?:as|by|due to) (?:content|spam)",
            r"considered (?:as )?(?:spam|unsolicited)",
            r"\buce\b",
            r"scored? too high",
        ),
    ),
    (
        "blocked",
        (
            r"blocked",
            r"block ?list",
            r"black ?list",
            r"deny ?list",
            r"listed (?:at|on|in|by)",
            r"\brbl\b",
            r"\bdnsbl\b",
            r"spamhaus",
            r"spamcop",
            r"barracuda",
            r"sorbs",
            r"not (?:currently )?accepting mail from your ip",
            r"access denied",
            r"connection refused",
            r"refused to talk to me",
            r"banned",
            r"client host rejected",
            r"helo command rejected",
            r"your ip",
            r"dynamic ip",
            r"go away",
        ),
    ),
    (
        "policyviolation",
        (
            r"policy",
            r"prohibited",
            r"not allowed",
            r"attachment",
            r"forbidden",
        ),
    ),
    (
        "securityerror",
        (
            r"authentication required",
            r"must (?:issue|use) (?:a )?starttls",
            r"tls",
            r"encryption",
            r"security",
            r"certificate",
            r"not authorized",
            r"unauthorized",
        ),
    ),
    (
        "rejected",
        (
            r"sender (?:address )?(?:rejected|refused|denied|blacklisted|invalid|verify failed)",
            r"(?:invalid|bad|unknown) sender",
            r"domain of sender address",
            r"sender domain",
            r"mail from",
            r"envelope sender",
            r"null sender",
            r"empty envelope",
            r"administrative prohibition",
            r"address rejected",
        ),
    ),
    (
        "filtered",
        (
            r"user reject",
            r"rejected by (?:the )?recipient",
            r"recipient (?:has )?(?:blocked|rejected|refused)",
            r"blocked by the recipient",
            r"refused due to recipient preferences",
            r"only accepting mail from specific",
            r"message rejected due to user rules",
            r"not accepting (?:any )?mail from",
            r"filter",
        ),
    ),
    (
        "expired",
        (
            r"retry time not reached",
            r"retry timeout exceeded",
            r"delivery time expired",
            r"(?:message|mail) (?:has )?expired",
            r"(?:has been |was )?(?:delayed|queued) (?:for )?too long",
            r"could not be delivered (?:within|for) ",
            r"giving up",
            r"timed? ?out",
            r"message expired",
            r"undeliverable within",
            r"deferred",
        ),
    ),
    (
        "networkerror",
        (
            r"network (?:is )?unreachable",
            r"no route to host",
            r"routing loop",
            r"mail (?:loop|loops)",
            r"too many hops",
            r"hop count exceeded",
            r"unable to connect",
            r"connection (?:timed out|reset|closed|lost|dropped)",
            r"lost connection",
            r"dns (?:error|failure|lookup)",
            r"temporary (?:dns|lookup) failure",
        ),
    ),
    (
        "systemfull",
        (
            r"system (?:is )?full",
            r"disk (?:is )?full",
            r"insufficient system storage",
            r"out of (?:disk )?space",
        ),
    ),
    (
        "systemerror",
        (
            r"system (?:error|failure|config)",
            r"internal (?:server )?error",
            r"server error",
            r"local error",
            r"temporar(?:y|ily) (?:failure|unavailable|error|problem)",
            r"service (?:is )?(?:temporarily )?unavailable",
            r"misconfigur",
            r"configuration error",
            r"too many recipients",
            r"unable to deliver",
        ),
    ),
    (
        "mailererror",
        (
            r"command (?:died|failed|output)",
            r"procmail",
            r"mailer error",
            r"pipe to ",
            r"x-unix;",
            r"exit (?:code|status)",
        ),
    ),
    (
        "contenterror",
        (
            r"content[- ]type",
            r"mime",
            r"8-?bit",
            r"encoding",
            r"utf-?8",
        ),
    ),
    (
        "notcompliantrfc",
        (
            r"rfc ?5322",
            r"rfc ?2822",
            r"rfc ?822",
            r"not (?:rfc[- ]?)?compliant",
            r"duplicate (?:header|message-id|from|subject|date)",
            r"multiple (?:from|to|subject|date|message-id|sender) (?:header|field)",
        ),
    ),
    (
        "syntaxerror",
        (
            r"syntax error",
            r"command unrecognized",
            r"unrecognized command",
            r"bad sequence of commands",
            r"command not (?:recognized|implemented)",
        ),
    ),
]


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # One alternation per reason: a single scan of the text per reason.
    return re.compile("|".join(f"(?:{p})" for p in patterns))


#: Ordered (reason, compiled regex). The first reason whose regex matches wins.
PHRASES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (name, _compile(pats)) for name, pats in _PHRASES
)


# ---------------------------------------------------------------------------------------
# RFC 3463 enhanced status code -> reason. Codes whose meaning depends on the text
# (x.0.0, x.7.1, x.5.0 ...) are absent; the phrase tables or the class fallback decide.
# ---------------------------------------------------------------------------------------

STATUS_REASONS: Final[dict[str, str]] = {
    "1.0.0": "delivered",
    "2.0.0": "delivered",
    "2.1.5": "delivered",
    "2.6.0": "delivered",
    # address status
    "x.1.0": "userunknown",
    "x.1.1": "userunknown",
    "x.1.2": "hostunknown",
    "x.1.3": "userunknown",
    "x.1.4": "userunknown",
    "x.1.6": "hasmoved",
    "x.1.7": "rejected",
    "x.1.8": "rejected",
    "x.1.9": "systemerror",
    "x.1.10": "notaccept",
    # mailbox status
    "x.2.0": "filtered",
    "x.2.1": "suspend",
    "x.2.2": "mailboxfull",
    "x.2.3": "exceedlimit",
    "x.2.4": "systemerror",
    # mail system status
    "x.3.0": "systemerror",
    "x.3.1": "systemfull",
    "x.3.2": "notaccept",
    "x.3.3": "systemerror",
    "x.3.4": "mesgtoobig",
    "x.3.5": "systemerror",
    # network and routing
    "x.4.0": "networkerror",
    "x.4.1": "networkerror",
    "x.4.2": "networkerror",
    "x.4.3": "systemerror",
    "x.4.4": "hostunknown",
    "x.4.5": "systemfull",
    "x.4.6": "networkerror",
    "x.4.7": "expired",
    # protocol
    "x.5.0": "syntaxerror",
    "x.5.1": "syntaxerror",
    "x.5.2": "syntaxerror",
    "x.5.3": "toomanyconn",
    "x.5.4": "syntaxerror",
    "x.5.5": "systemerror",
    "x.5.6": "securityerror",
    # content
    "x.6.0": "contenterror",
    "x.6.1": "contenterror",
    "x.6.2": "contenterror",
    "x.6.3": "contenterror",
    "x.6.4": "contenterror",
    "x.6.5": "contenterror",
    "x.6.6": "contenterror",
    "x.6.7": "contenterror",
    "x.6.8": "contenterror",
    "x.6.9": "contenterror",
    # security and policy
    "x.7.0": "securityerror",
    "x.7.1": "securityerror",
    "x.7.2": "securityerror",
    "x.7.3": "securityerror",
    "x.7.4": "securityerror",
    "x.7.5": "securityerror",
    "x.7.6": "securityerror",
    "x.7.7": "securityerror",
    "x.7.8": "securityerror",
    "x.7.9": "securityerror",
    "x.7.10": "securityerror",
    "x.7.11": "securityerror",
    "x.7.13": "suspend",
    "x.7.14": "securityerror",
    "x.7.15": "securityerror",
    "x.7.16": "mesgtoobig",
    "x.7.17": "hasmoved",
    "x.7.18": "hasmoved",
    "x.7.19": "securityerror",
    "x.7.20": "authfailure",
    "x.7.21": "authfailure",
    "x.7.22": "authfailure",
    "x.7.23": "authfailure",
    "x.7.24": "authfailure",
    "x.7.25": "requireptr",
    "x.7.26": "authfailure",
    "x.7.27": "notaccept",
    "x.7.28": "speeding",
    "x.7.29": "authfailure",
    "x.7.30": "securityerror",
}

#: Sisimai's pseudo status codes (x.0.9NN): used as the status when the bounce carries no
#: specific enhanced status, so results compare with Sisimai's. Permanent form shown.
PSEUDO_STATUS: Final[dict[str, str]] = {
    "undefined": "5.0.900",
    "onhold": "5.0.901",
    "syntaxerror": "5.0.902",
    "norelaying": "5.0.909",
    "filtered": "5.0.910",
    "userunknown": "5.0.911",
    "hostunknown": "5.0.912",
    "hasmoved": "5.0.916",
    "rejected": "5.0.918",
    "suspend": "5.0.921",
    "mailboxfull": "5.0.922",
    "exceedlimit": "5.0.923",
    "systemerror": "5.0.930",
    "systemfull": "5.0.931",
    "notaccept": "5.0.932",
    "mesgtoobig": "5.0.934",
    "mailererror": "5.0.939",
    "networkerror": "5.0.944",
    "toomanyconn": "5.0.945",
    "speeding": "5.0.946",
    "expired": "5.0.947",
    "contenterror": "5.0.960",
    "securityerror": "5.0.970",
    "blocked": "5.0.971",
    "virusdetected": "5.0.971",
    "policyviolation": "5.0.972",
    "requireptr": "5.0.973",
    "notcompliantrfc": "5.0.974",
    "authfailure": "5.0.975",
    "failedstarttls": "5.0.976",
    "spamdetected": "5.0.980",
    "badreputation": "5.0.981",
}
