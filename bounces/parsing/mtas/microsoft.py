"""Microsoft Exchange 2007+ / Exchange Online (Office 365) / Outlook.com non-delivery reports.

Human part: "Delivery has failed to these recipients or groups:" with "Name<mailto:addr>"
lines, and "Diagnostic information for administrators:" where each recipient is followed by
"Remote Server returned '550 5.1.1 ...'" or "#550 5.1.1 RESOLVER.ADR.RecipNotFound ##".
"""

from __future__ import annotations

import re

from ..common import Rec, clean_smtp_reply, find_command, find_replycode, find_status, norm_address
from ..message import Mail
from ._text import merge_dsn, region

NAME = "microsoft"
_ADMIN_NEEDLES = (
    "diagnostic information for administrators",
    "diagnoseinformationen für administratoren",
    "informations de diagnostic pour les administrateurs",
    "información de diagnóstico para administradores",
    "informações de diagnóstico para administradores",
    "informazioni di diagnostica per gli amministratori",
    "diagnostische gegevens voor beheerders",
    "管理者向けの診断情報",
)
_USER_NEEDLES = (
    "delivery has failed to these recipients or",
    "the following recipient(s) cannot be reached",
    "die zustellung an folgende empfänger oder gruppen",
    "la remise a échoué pour ces destinataires",
    "error en la entrega a estos destinatarios",
    "falha na entrega para estes destinatários",
    "recapito non riuscito per i destinatari",
    "de bezorging is mislukt voor deze ontvangers",
    "次の受信者またはグループへの配信に失敗しました",
)
_NEEDLES = (
    "delivery has failed to these recipients or",
    "diagnostic information for administrators",
    "diagnoseinformationen für administratoren",
    "informations de diagnostic pour les administrateurs",
    "información de diagnóstico para administradores",
    "informações de diagnóstico para administradores",
    "informazioni di diagnostica per gli amministratori",
    "diagnostische gegevens voor beheerders",
    "管理者向けの診断情報",
    "microsoft exchange server",
    "the following recipient(s) cannot be reached",
    "la remise à ces destinataires",
    "die zustellung an folgende empfänger",
)
# Exchange localises its NDR headings; "Remote Server returned '...'" stays English.
_ADMIN = re.compile(
    r"(?:Diagnostic information for administrators|Diagnoseinformationen für Administratoren"
    r"|Informations de diagnostic pour les administrateurs|Información de diagnóstico para administradores"
    r"|Informações de diagnóstico para administradores|Informazioni di diagnostica per gli amministratori"
    r"|Diagnostische gegevens voor beheerders|管理者向けの診断情報)\s*[:：]\s*\n",
    re.I,
)
_ADMIN_END = re.compile(
    r"\n\s*(?:Original message headers|Original Message Headers|Ursprüngliche Nachrichtenheader"
    r"|En-têtes de message d'origine|Encabezados de mensajes originales|Cabeçalhos da mensagem original"
    r"|Intestazioni originali del messaggio|Oorspronkelijke berichtkoppen|元のメッセージ ヘッダー|-{4,})",
    re.I,
)
_USER = re.compile(
    r"(?:Delivery has failed to these recipients or (?:groups|distribution lists)"
    r"|The following recipient\(s\) cannot be reached"
    r"|Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen"
    r"|La remise a échoué pour ces destinataires ou groupes|Error en la entrega a estos destinatarios o grupos"
    r"|Falha na entrega para estes destinatários ou grupos|Recapito non riuscito per i destinatari o gruppi seguenti"
    r"|De bezorging is mislukt voor deze ontvangers of groepen|次の受信者またはグループへの配信に失敗しました)\s*[:：]?\s*\n",
    re.I,
)
_MAILTO = re.compile(r"<mailto:([^<>\s]+@[^<>\s]+)>|^\s*([^\s<>]+@[\w.-]+\.\w+)\s*(?:<mailto:[^>]*>)?\s*$", re.I)
_REMOTE_SAID = re.compile(r"Remote Server (?:at [^\n]*? )?returned '([^']*)'|#(\d{3} [245]\.\d+\.\d+[^#]*)##?|^\s*#?(\d{3} [245]\.\d+\.\d+.*)$", re.I | re.M)
_GEN_SERVER = re.compile(r"Generating server:\s*(\S+)", re.I)


# In every language the administrators' section lists each recipient on a line of its own,
# followed by "Remote Server returned '...'" (never translated) or "#550 5.1.1 ...##": the
# structure finds the section when its heading is in a language not listed above.
_ADMIN_BY_LAYOUT = re.compile(
    r"^[ \t]*[^\s@<>]+@[^\s@<>]+[ \t]*\n(?:[ \t]*[^\n@]{1,80}\n){0,2}?[ \t]*"
    r"(?:Remote Server (?:at [^\n]{1,120}? )?returned '|(?:[\w.-]+ )?#\d{3}[ -][245]\.\d)",
    re.I | re.M,
)


def match(mail: Mail) -> bool:
    """Exchange/Office 365 wording, or an Exchange diagnostic in the DSN."""
    lc = mail.lc_head
    return (
        any(s in lc for s in _NEEDLES)
        or ("couldn't be delivered" in lc and "your message to" in lc)
        or (("remote server returned '" in lc or "##" in lc) and _ADMIN_BY_LAYOUT.search(mail.body[:8000]) is not None)
    )


def _from_heading(low: str, needles: tuple[str, ...]) -> int:
    """Where the first of the headings starts: a literal search on the lower-cased body (a
    case-insensitive alternation over a whole body is slow); -1 if there is none."""
    hits = [i for i in (low.find(n) for n in needles) if i >= 0]
    if not hits:
        return -1
    return min(hits)


def _admin(body: str, low: str) -> dict[str, str]:
    start = _from_heading(low, _ADMIN_NEEDLES)
    if start >= 0:
        text = region(body[start:], _ADMIN, _ADMIN_END)
    elif "returned '" in low or "##" in low:
        m = _ADMIN_BY_LAYOUT.search(body)
        if not m:
            return {}
        text = body[m.start() :]
        e = _ADMIN_END.search(text)
        text = text[: e.start()] if e else text
    else:
        return {}
    out: dict[str, str] = {}
    cur: str | None = None
    for line in text.split("\n"):
        s = line.strip()
        if not s or ("server" in s.lower() and ":" in s and "@" not in s and "returned" not in s.lower()):
            continue  # "Generating server: X" and its translations
        a = norm_address(s) if re.fullmatch(r"\S+@\S+", s) else None
        if a:
            cur = a.lower()
            out.setdefault(cur, "")
            continue
        if cur is not None:
            out[cur] = (out[cur] + " " + s).strip()
    return out


def _user(body: str, low: str) -> dict[str, str]:
    start = _from_heading(low, _USER_NEEDLES)
    if start < 0:
        return {}
    text = region(body[start:], _USER)
    out: dict[str, str] = {}
    cur: str | None = None
    for line in text.split("\n")[:40]:
        s = line.strip()
        if not s:
            continue
        if s.startswith("____") or s.lower().startswith(("diagnostic information", "sent by microsoft")):
            break
        m = _MAILTO.search(s)
        if m and "@" in s.split("<mailto:")[0] + (m.group(2) or "") and (m.group(1) or m.group(2)):
            a = norm_address(m.group(1) or m.group(2))
            if a:
                cur = a.lower()
                out.setdefault(cur, "")
                continue
        if cur is not None and len(out[cur]) < 400:
            out[cur] = (out[cur] + " " + s).strip()
    return out


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """DSN records with the administrators' diagnostic; the text alone without a DSN."""
    low = mail.body.lower()
    admin = _admin(mail.body, low)
    user = _user(mail.body, low)
    gen = _GEN_SERVER.search(mail.body)
    if dsn:
        recs = dsn
        # a DSN whose Final-Recipient is empty ("rfc822;"): the recipients the text lists, in order
        named = {(r.recipient or "").lower() for r in recs}
        spare = [a for a in dict.fromkeys([*user.keys(), *admin.keys()]) if a not in named]
        for r in recs:
            if not r.recipient and spare:
                r.recipient = spare.pop(0)
    else:
        addrs = list(dict.fromkeys([*admin.keys(), *user.keys()]))
        recs = [Rec(recipient=a, action="failed") for a in addrs]
    for r in recs:
        key = (r.recipient or "").lower()
        a = admin.get(key, "")
        said = _REMOTE_SAID.search(a)
        text = clean_smtp_reply(next(g for g in said.groups() if g)) if said else ""
        if not text:
            text = a or user.get(key, "")
        if text and (not r.diagnostic or len(r.diagnostic) < 12 or (find_status(text) and not find_status(r.diagnostic))):
            r.diagnostic = clean_smtp_reply(text)
        if not r.diagnostic and user.get(key):
            r.diagnostic = user[key]
        st = find_status(r.diagnostic)
        if st and (not r.status or (r.status.endswith(".0.0") and st[0] == r.status[0])):
            r.status = st
        r.replycode = r.replycode or find_replycode(r.diagnostic)
        r.command = find_command(r.diagnostic)
        if not r.remote_mta and gen:
            r.remote_mta = None
    return merge_dsn(recs, [])
