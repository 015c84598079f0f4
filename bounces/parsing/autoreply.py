"""RFC 3834 automatic replies (vacation, out of office) and challenge-response messages."""

from __future__ import annotations

import re

from .common import Rec, norm_address
from .message import Mail

# Subjects of auto-replies in the languages we meet most; anchored at the start so a bounce
# that merely quotes such a subject later on is not taken for one. A "strong" subject names
# itself an automatic answer; a "weak" one (a holiday, "thank you for your message") is
# also what people write, and counts only with an auto-reply header or wording beside it.
_STRONG_SUBJECT = re.compile(
    r"^\s*(?:re:\s*)?(?:"
    r"auto(?:matic|matische)?[ -]?(?:reply|response|respond|antwort|r[ée]ponse|risposta|respuesta|resposta)"
    r"|auto:|autoreply|autoresponder|auto-reply|auto reply|abwesenheitsnotiz|abwesend"
    r"|out of (?:the )?office|ooo\b|away from (?:the|my) (?:office|desk)"
    r"|r[ée]ponse automatique|message d'absence|risposta automatica|respuesta autom[aá]tica"
    r"|resposta autom[aá]tica|automatisch antwoord|automatyczna odpowied[zź]"
    r"|autosvar|automaattinen vastaus|不在|自動応答|自动回复|自動回覆|자동 응답"
    # Outlook's "Automatic reply:" prefix in its other interface languages
    r"|odpowied[zź] automatyczna|automatick[áa] odpov[ěe]ď|автоматический ответ|автоответ"
    r"|automatiskt? svar|automatikus v[áa]lasz|otomatik yan[ıi]t|αυτόματη απάντηση|自动答复|자동 회신"
    r"|automatick[áa] odpoveď|automatsko obavijest|automatski odgovor"
    r")",
    re.I,
)
_WEAK_SUBJECT = re.compile(
    r"^\s*(?:re:\s*)?(?:i am away|i'm away|away until|on vacation|vacation|on leave|holiday|absence|absent"
    r"|fuori sede|fuera de la oficina|afwezig"
    r"|thank you for (?:your (?:e-?mail|message)|contacting)|we have received your)",
    re.I,
)
_SUBJECT = re.compile(f"{_STRONG_SUBJECT.pattern}|{_WEAK_SUBJECT.pattern}", re.I)
_BODY = re.compile(
    r"out of (?:the )?office|on (?:annual |parental |sick )?leave|on vacation|away from (?:the|my) office"
    r"|(?:will be|i'?m|i am) (?:back|away|out|returning)|limited access to (?:my )?e-?mail"
    r"|automatic(?:ally generated)? (?:reply|response)|this is an auto(?:matic|mated)?[ -]?(?:reply|response)",
    re.I,
)
_NO = ("no", "false", "0", "off")


def auto_headers(mail: Mail) -> bool:
    """A header saying a program answered (RFC 3834 Auto-Submitted: auto-replied, vendor ones).

    X-Auto-Response-Suppress is not one: it asks others not to answer automatically and
    rides on calendar invitations, NDRs and ordinary Outlook mail alike.
    """
    h = mail.header
    if h("auto-submitted").strip().lower().startswith("auto-replied"):
        return True
    for name in ("x-autoreply", "x-autorespond", "x-mailautoreply"):
        value = h(name).strip().lower()
        if value and value not in _NO:
            return True
    return h("precedence").strip().lower() == "auto_reply"


_CHALLENGE_SUBJECT = re.compile(
    r"(please confirm|confirm your (?:e-?mail|message)|verification required|sender verification"
    r"|challenge|spam ?arrest|boxbe|mailblocks|are you human|awaiting your confirmation"
    r"|best[äa]tigen sie|absenderbest[äa]tigung|confirmez|confirmation d'envoi|verificaci[óo]n de remitente"
    r"|confirme su|conferma il tuo|verifica del mittente)",
    re.I,
)
_CHALLENGE_BODY = re.compile(
    r"(verify (?:that )?you are (?:a )?(?:human|real person)|spam ?arrest|boxbe"
    r"|click (?:on )?the (?:link|following link) below to (?:confirm|verify|deliver)"
    r"|please confirm (?:that )?you (?:sent|are)|confirm (?:that )?you are a (?:person|human)|to have your (?:message|e-?mail) delivered, please"
    r"|best[äa]tigen sie,? dass sie|confirmer que vous [eê]tes|confirme que (?:es|eres) una persona"
    r"|confermare di essere|confirme que voc[êe] [ée])",
    re.I,
)


def is_autoreply(mail: Mail) -> bool:
    """Header and subject evidence of an RFC 3834 automatic reply (not a delivery failure).

    Each rule is one parenthesised condition: a strong subject alone, or an auto-reply
    header, or a weak subject together with auto-reply wording in the body.
    """
    subject = mail.subject
    if _STRONG_SUBJECT.search(subject):
        return True
    if auto_headers(mail):
        return True
    return bool(_WEAK_SUBJECT.search(subject) and _BODY.search(mail.body[:4000]))


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
