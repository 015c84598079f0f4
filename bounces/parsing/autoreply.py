"""RFC 3834 automatic replies (vacation, out of office) and challenge-response messages."""

from __future__ import annotations

import re

from .common import Rec, norm_address
from .message import Mail

# Subjects of auto-replies in the languages we meet most; anchored at the start so a bounce
# that merely quotes such a subject later on is not taken for one.
_SUBJECT = re.compile(
    r"^\s*(?:re:\s*)?(?:"
    r"auto(?:matic|matische)?[ -]?(?:reply|response|respond|antwort|r[ée]ponse|risposta|respuesta|resposta)"
    r"|auto:|autoreply|autoresponder|auto-reply|auto reply|abwesenheitsnotiz|abwesend"
    r"|out of (?:the )?office|ooo\b|away from (?:the|my) (?:office|desk)|i am away|i'm away|away until"
    r"|on vacation|vacation|on leave|holiday|absence|absent|fuori sede|fuera de la oficina"
    r"|r[ée]ponse automatique|message d'absence|risposta automatica|respuesta autom[aá]tica"
    r"|resposta autom[aá]tica|automatisch antwoord|afwezig|automatyczna odpowied[zź]"
    r"|autosvar|automaattinen vastaus|不在|自動応答|自动回复|自動回覆|자동 응답"
    r"|thank you for (?:your (?:e-?mail|message)|contacting)|we have received your"
    r")",
    re.I,
)
_CHALLENGE_SUBJECT = re.compile(
    r"(please confirm|confirm your (?:e-?mail|message)|verification required|sender verification"
    r"|challenge|spam ?arrest|boxbe|mailblocks|are you human|awaiting your confirmation)",
    re.I,
)
_CHALLENGE_BODY = re.compile(
    r"(verify (?:that )?you are (?:a )?(?:human|real person)|spam ?arrest|boxbe"
    r"|click (?:on )?the (?:link|following link) below to (?:confirm|verify|deliver)"
    r"|please confirm (?:that )?you (?:sent|are)|to have your (?:message|e-?mail) delivered, please)",
    re.I,
)


def is_autoreply(mail: Mail) -> bool:
    """Header and subject evidence of an RFC 3834 automatic reply (not a delivery failure)."""
    h = mail.header
    auto = h("auto-submitted").strip().lower()
    if auto.startswith("auto-replied") and _SUBJECT.search(mail.subject):
        return True
    if h("x-autoreply") or h("x-autorespond") or h("x-auto-response-suppress").lower() == "all" and _SUBJECT.search(mail.subject):
        return True
    if h("precedence").strip().lower() == "auto_reply":
        return True
    if h("x-autoreply").lower() == "yes" or h("x-mailautoreply"):
        return True
    if auto.startswith("auto-replied"):
        return True
    return bool(_SUBJECT.search(mail.subject))


def is_challenge(mail: Mail) -> bool:
    """Challenge-response systems asking the sender to prove they are human."""
    if mail.header("x-challenge") or mail.header("x-boxbe-challenge"):
        return True
    return bool(_CHALLENGE_SUBJECT.search(mail.subject) and _CHALLENGE_BODY.search(mail.body[:4000]))


def parse(mail: Mail) -> list[Rec]:
    """The auto-replying address is the From of the reply."""
    rcpt = norm_address(mail.header("from")) or norm_address(mail.header("reply-to"))
    return [Rec(recipient=rcpt, reason="vacation", diagnostic=_first_lines(mail.body))]


def _first_lines(text: str) -> str:
    return " ".join(text.strip().split()[:60])
