"""The engine: bytes in, `ParseResult` out. Orchestrates the detectors and classification.

Order of decisions (each step only runs when the earlier ones found nothing):

1. ARF feedback report (RFC 5965) -> complaint.
2. MTA family detectors (``mtas/``), which see the RFC 3464 records too and refine them with
   the human-readable text of their MTA; then plain RFC 3464 records.
3. RFC 3834 auto-reply, then challenge-response.
4. Generic text heuristics for bounces no family claims.
5. Otherwise: not a bounce.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from . import arf, autoreply, recognise, rfc3464, tokens
from .classify import category_for, classify  # reason tables: classify.py / reasons.py
from .common import Rec, find_replycode, fold, norm_address
from .message import Mail, load
from .mtas import DETECTORS, generic
from .mtas._text import cut_returned, merge_dsn
from .reasons import PSEUDO_STATUS as _PSEUDO  # Sisimai-style pseudo codes per reason
from .types import Category, Kind, ParseOptions, ParseResult, RecipientResult

_HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})
_GENERIC_REASONS = frozenset({"onhold", "undefined"})
_DEFAULT_OPTIONS = ParseOptions()
_HEADERISH = re.compile(r"^\s*(?:to|from|cc|received|final-recipient|original-recipient|x-[\w-]+)\s*:", re.I)
_FIXED_REASON = {Kind.COMPLAINT: "feedback", Kind.AUTOREPLY: "vacation", Kind.DELIVERED: "delivered"}


def parse_bounce(raw: bytes, options: ParseOptions | None = None) -> ParseResult:
    """Parse one raw message. Never raises: failures come back as kind UNKNOWN with `error`."""
    opts = options or _DEFAULT_OPTIONS
    try:
        mail = load(raw)
    except Exception as exc:  # the stdlib parser gave up: nothing to salvage
        return ParseResult(
            kind=Kind.UNKNOWN, recipients=(), message_id=None, token=None, subject=None,
            from_address=None, mta=None, error=f"unparseable message: {type(exc).__name__}: {exc}",
        )
    try:
        inner = _unwrapped(mail, opts)
        if inner is not None:
            return inner if inner.token is not None else replace(inner, token=tokens.find_token(mail, opts))
        return _parse(mail, opts)
    except Exception as exc:  # a detector bug must not lose the message
        return ParseResult(
            kind=Kind.UNKNOWN, recipients=(), message_id=_safe(tokens.find_message_id, mail),
            token=_safe(tokens.find_token, mail, opts), subject=mail.subject or None,
            from_address=norm_address(mail.from_), mta=None,
            error=f"internal error: {type(exc).__name__}: {exc}",
        )


def _unwrapped(mail: Mail, opts: ParseOptions) -> ParseResult | None:
    """The result for the notice a gateway passed on as an attachment
    (`recognise.wrapped_notice`), or None to read ``mail`` itself.

    The attachment is read when it is a report of any kind (a bounce, a complaint, an
    auto-reply, also a read receipt or a challenge: then not a bounce, as it would be
    directly); an ordinary attached message leaves the wrapper to the usual reading. A
    person's forward ("Fwd:") stays the person's message: not a bounce."""
    if recognise.person_sent(mail):
        return None
    raw = recognise.wrapped_notice(mail)
    if raw is None:
        return None
    inner = load(raw)
    result = _parse(inner, opts)
    if result.kind == Kind.NOT_BOUNCE and inner.content_type != "multipart/report":
        return None
    return result


def _safe(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except Exception:
        return None


def _detect(mail: Mail) -> tuple[Kind, str | None, list[Rec]]:
    if recognise.person_sent(mail):
        # a person forwards or answers a report (also a complaint): their message, no report
        return Kind.NOT_BOUNCE, None, []
    if arf.is_arf(mail):
        recs = arf.parse(mail)
        if all(r.feedback_type in arf.NOT_COMPLAINTS for r in recs):
            # a DMARC failure report (RFC 6591 auth-failure) or a "not-spam" report: about
            # authentication or a filter's mistake, nobody complained
            # (Sisimai counts them as feedback: the recipients stay named, as not_bounce)
            return Kind.NOT_BOUNCE, "arf", recs
        return Kind.COMPLAINT, "arf", recs
    # not-a-bounce before bounce: decided on the message's own headers, before a DSN wrapper
    # or an MTA's wording is trusted (a challenge may come as a DSN, a person may forward one)
    if autoreply.is_challenge(mail):
        return Kind.CHALLENGE, "challenge", [Rec(recipient=norm_address(mail.from_), reason="vacation")]
    if not mail.ds_texts and not recognise.daemon_sender(mail) and autoreply.is_autoreply(mail):
        return Kind.AUTOREPLY, "rfc3834", autoreply.parse(mail)
    _, dsn = rfc3464.parse(mail)
    for det in DETECTORS:
        if det.match(mail):
            recs = det.parse(mail, dsn)
            if recs:
                return _kind_of(recs), det.NAME, _fill_empty(mail, recs)
    if dsn and any(r.recipient for r in dsn):
        return _kind_of(dsn), "rfc3464", _fill_empty(mail, dsn)
    looks_bounce = generic.looks_like_bounce(mail)
    if not looks_bounce:
        if autoreply.is_challenge(mail):
            return Kind.CHALLENGE, "challenge", [Rec(recipient=norm_address(mail.from_), reason="vacation")]
        if autoreply.is_autoreply(mail):
            return Kind.AUTOREPLY, "rfc3834", autoreply.parse(mail)
    recs = generic.parse(mail, dsn)
    if recs and dsn:
        # a DSN whose Final-Recipient is broken or empty still holds the status and the
        # diagnostic of the recipient the text (or X-Failed-Recipients) names
        recs = merge_dsn(recs, dsn)
    if recs:
        return _kind_of(recs), "generic", _fill_empty(mail, recs)
    if dsn:
        return _kind_of(dsn), "rfc3464", dsn
    if looks_bounce and recognise.says_failure(mail):
        # the notice names nobody, but it was sent to a list's VERP address that does
        member = tokens.list_verp_recipient(mail)
        if member:
            body = cut_returned(mail.body)
            diag = fold(generic.reason_text(body) or body[:600])
            rec = Rec(recipient=member, action="failed", diagnostic=diag, replycode=find_replycode(diag))
            return Kind.FAILURE, "verp", [rec]
        return Kind.UNKNOWN, None, []
    return Kind.NOT_BOUNCE, None, []


def _reporting_mta(mail: Mail) -> str | None:
    """The Reporting-MTA of the DSN (the host that wrote the report), if it names one; from
    DSN fields printed in the text when there is no delivery-status part (a gateway that
    turned it into a text/plain attachment)."""
    for text in mail.ds_texts or ([mail.body[:20000]] if "reporting-mta:" in mail.lc_head else []):
        i = text.lower().find("reporting-mta:")
        if i >= 0:
            value = text[i + 14 : text.find("\n", i) if text.find("\n", i) > 0 else None].strip()
            value = re.sub(r"^\s*dns\s*;\s*", "", value, flags=re.I).strip()
            return value or None
    return None


def _fill_empty(mail: Mail, recs: list[Rec]) -> list[Rec]:
    """Give records without a diagnostic the human-readable sentence about them, if any."""
    if all(r.diagnostic for r in recs):
        return recs
    body = cut_returned(mail.body)
    titles = [ln.strip().strip("*").strip() for ln in body.split("\n") if ln.strip().startswith("** ")]
    for r in recs:
        if r.diagnostic or not r.recipient or r.action in ("delivered", "relayed", "expanded"):
            continue
        low = r.recipient.lower()
        all_lines = body.split("\n")
        lines: list[str] = []
        for i, ln in enumerate(all_lines):
            if low not in ln.lower() or _HEADERISH.match(ln):
                continue
            lines.append(ln.strip())
            if ln.rstrip().endswith(":"):
                # "SMTP error from remote mail server after RCPT TO:<a@b>:" announces the
                # reply on the next line ("host mx [ip]: 550 ...")
                nxt = all_lines[i + 1].strip() if i + 1 < len(all_lines) else ""
                if nxt and ("@" not in nxt or low in nxt.lower()):
                    lines.append(nxt)
        text = " ".join([*titles, *lines]).strip() or generic.reason_text(body)
        if text:
            r.diagnostic = fold(text)[:1000]
            r.replycode = r.replycode or find_replycode(r.diagnostic)
    return recs


def _kind_of(recs: list[Rec]) -> Kind:
    if all(r.reason == "feedback" for r in recs):
        return Kind.COMPLAINT
    actions = {r.action for r in recs}
    if actions and actions <= {"delivered", "relayed", "expanded"}:
        return Kind.DELIVERED
    if "failed" in actions:
        return Kind.FAILURE
    if actions and actions <= {"delayed"}:
        return Kind.DELAY
    statuses = {(r.status or "")[:1] for r in recs}
    if statuses == {"2"}:
        return Kind.DELIVERED
    if statuses == {"4"} and "delayed" in actions:
        return Kind.DELAY
    return Kind.FAILURE


def _parse(mail: Mail, opts: ParseOptions) -> ParseResult:
    kind, mta, recs = _detect(mail)
    reporting = _reporting_mta(mail)
    results: list[RecipientResult] = []
    seen: set[str] = set()
    for rec in recs:
        key = (rec.recipient or "").lower()
        if key and key in seen:
            continue
        seen.add(key)
        results.append(_finish(rec, kind, mta, mail.subject, reporting))
    if len(results) > 1 and kind in (Kind.FAILURE, Kind.DELAY):
        # a DSN listing delivered copies next to failed ones is still a failure report
        pass
    error = None
    if kind == Kind.UNKNOWN:
        error = "looks like a bounce but no recipient or status could be found"
    return ParseResult(
        kind=kind,
        recipients=tuple(results),
        message_id=tokens.find_message_id(mail),
        token=tokens.find_token(mail, opts),
        subject=mail.subject or None,
        from_address=norm_address(mail.from_),
        mta=mta,
        error=error,
        notice_time=notice_time(mail),
    )


_DSN_DATE = re.compile(r"^(last-attempt-date|arrival-date)[ \t]*:[ \t]*(.+)$", re.I | re.M)
_RECEIVED_DATE = re.compile(r";\s*([^;]+?)\s*$")


_DATE = re.compile(
    r"(?:[A-Za-z]{3},?\s*)?(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"(?:\.\d+)?\s*(?:([+-])(\d{2})(\d{2})|(UT|UTC|GMT|Z))?"
)
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def _when(value: str) -> datetime | None:
    """An RFC 5322 date as an aware UTC datetime; None if it does not parse."""
    m = _DATE.search(value)
    if m is not None and m.group(2).lower() in _MONTHS and (m.group(7) or m.group(10)):
        year = int(m.group(3))
        year += 2000 if year < 50 else 1900 if year < 100 else 0
        try:
            when = datetime(year, _MONTHS[m.group(2).lower()], int(m.group(1)), int(m.group(4)), int(m.group(5)),
                            int(m.group(6) or 0), tzinfo=UTC)
        except ValueError:
            return None
        if m.group(7):
            offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
            when = when - offset if m.group(7) == "+" else when + offset
        return when
    from email.utils import parsedate_to_datetime  # odd forms (zone names such as EST)

    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # RFC 5322 "-0000": time in UTC, zone unknown
    return parsed.astimezone(UTC)


def notice_time(mail: Mail) -> datetime | None:
    """When the notice says it gave up (see `ParseResult.notice_time`); None if no date parses."""
    found: dict[str, datetime] = {}
    for text in mail.ds_texts:
        for m in _DSN_DATE.finditer(text):
            when = _when(m.group(2))
            if when is not None:
                key = m.group(1).lower()
                found[key] = max(found[key], when) if key in found else when
    for key in ("last-attempt-date", "arrival-date"):
        if key in found:
            return found[key]
    when = _when(mail.header("date"))
    if when is not None:
        return when
    received = mail.header("received")  # the first Received is the newest hop
    m = _RECEIVED_DATE.search(" ".join(received.split()))
    return _when(m.group(1)) if m else None


def _finish(rec: Rec, kind: Kind, mta: str | None, subject: str, reporting_mta: str | None = None) -> RecipientResult:
    fixed = rec.reason if rec.reason in ("feedback", "vacation") else _FIXED_REASON.get(kind)
    if fixed is None and rec.action in ("delivered", "relayed", "expanded"):
        fixed = "delivered"
    diagnostic = fold(rec.diagnostic)[:2000]
    if fixed:
        permanent = None
        status = rec.status if fixed == "delivered" else None
        category = category_for(fixed, permanent, rec.action)
        if kind == Kind.NOT_BOUNCE:
            category = Category.NOT_BOUNCE  # an authentication failure report names no complainer
        return RecipientResult(
            recipient=rec.recipient, action=rec.action, status=status, replycode=rec.replycode,
            diagnostic=diagnostic, remote_mta=rec.remote_mta, reason=fixed, hard=None,
            permanent=permanent, category=category,
            feedback_type=rec.feedback_type, original_recipient=rec.original,
        )
    verdict = classify(
        status=rec.status, replycode=rec.replycode, diagnostic=diagnostic, action=rec.action,
        kind_hint=str(kind), mta=mta, subject=subject, command=rec.command, reason_hint=rec.reason,
        remote_mta=rec.remote_mta, reporting_mta=reporting_mta, recipient=rec.recipient,
        diagnostic_type=rec.diag_type,
    )
    reason, hard, category = verdict.reason, verdict.hard, verdict.category or Category.UNKNOWN
    status = verdict.status
    if rec.reason and reason in _GENERIC_REASONS:
        # the family detector knows what its fixed (often non-English) wording means, where
        # the phrase tables found nothing specific
        reason = rec.reason
        hard = reason in _HARD_REASONS and verdict.permanent is not False
        category = category_for(reason, verdict.permanent, rec.action)
        pseudo = _PSEUDO.get(reason) if isinstance(_PSEUDO, dict) else None
        if pseudo and (not rec.status or rec.status.endswith(".0.0")) and verdict.status:
            status = verdict.status[0] + str(pseudo)[1:]
    if rec.action == "delayed" and category != Category.DELAY and not (rec.status or "").startswith("5"):
        # a warning (the MTA is still trying) is never a failure, whatever pseudo code the
        # reason got (Sisimai keeps 5.0.947 for warnings without temporary wording)
        category = Category.DELAY
    return RecipientResult(
        recipient=rec.recipient, action=rec.action, status=status, replycode=rec.replycode,
        diagnostic=diagnostic, remote_mta=rec.remote_mta, reason=reason, hard=hard,
        permanent=verdict.permanent, category=category, feedback_type=rec.feedback_type,
        original_recipient=rec.original,
    )
