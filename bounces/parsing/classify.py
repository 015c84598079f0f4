"""Classify one failed recipient: reason, status, hard, permanent and product category.

``classify`` takes what the structure parsers extracted for one recipient (enhanced status,
SMTP reply code, diagnostic text, DSN action) and decides:

* ``status``: the given enhanced status, else one found in the diagnostic text, else a
  Sisimai-style pseudo code (``5.0.911`` ...) derived from the reason and the reply code;
* ``reason``: the specific phrasing of the diagnostic decides first (ordered phrase
  tables in ``reasons.PHRASES``), then the enhanced status code (``reasons.STATUS_REASONS``);
* ``permanent``: status class 5 -> True, 4 -> False, otherwise None;
* ``hard``: the address itself is bad (Sisimai's hardbounce): userunknown, hostunknown,
  hasmoved, and notaccept unless temporary;
* ``category``: see ``category_for`` and docs/classification.md.

Pure Python, no Django. All regular expressions are compiled at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .reasons import (
    ADDRESS_BAD,
    NON_FAILURES,
    PHRASES,
    PSEUDO_STATUS,
    REASONS,
    STATUS_REASONS,
)
from .types import Category

__all__ = ["REASONS", "Verdict", "category_for", "classify"]

#: Only this much of the diagnostic text is scanned: the decisive wording comes first and
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


# "#5.1.1", "550-5.1.1", "5.1.1" in free text; not part of an IPv4 address or version.
_STATUS_IN_TEXT: Final = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_STATUS_EXACT: Final = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_REPLY_IN_TEXT: Final = re.compile(r"(?<![\d.])([245]\d\d)(?:[ -]|$)")

_DELIVERED_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded"})


def _normalise_status(status: str | None) -> str | None:
    if not status:
        return None
    status = status.strip()
    m = _STATUS_EXACT.match(status)
    if m is None:
        m = _STATUS_IN_TEXT.search(status)
        if m is None:
            return None
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"


def _status_reason(status: str | None) -> str | None:
    if status is None:
        return None
    if status[0] == "2":
        return "delivered"
    return STATUS_REASONS.get("x" + status[1:])


def _match_phrases(text: str) -> str | None:
    for name, regex in PHRASES:
        if regex.search(text):
            return name
    return None


def category_for(reason: str, permanent: bool | None, action: str | None) -> Category:
    """Map a reason, its permanence and the DSN action to the product category.

    | reason / situation                                 | category  |
    |----------------------------------------------------|-----------|
    | feedback                                           | complaint |
    | vacation                                           | autoreply |
    | delivered                                          | delivered |
    | action "delayed" (not a permanent failure)          | delay     |
    | undefined, onhold                                  | unknown   |
    | address-bad reason (userunknown, hostunknown,      | hard if permanent is not False, |
    | hasmoved, notaccept)                               | else soft |
    | sender-side reason (blocked, spamdetected, policy, | blocked if permanent is not False, |
    | auth, PTR, reputation, rate, virus, content ...)   | else soft |
    | any other reason (mailboxfull, expired, system...) | soft      |
    """
    info = REASONS.get(reason)
    if reason == "feedback":
        return Category.COMPLAINT
    if reason == "vacation":
        return Category.AUTOREPLY
    if reason == "delivered":
        return Category.DELIVERED
    if action is not None and action.lower() == "delayed" and permanent is not True:
        return Category.DELAY
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
) -> Verdict:
    """Decide reason, status, hard, permanent and category for one recipient.

    ``kind_hint`` is the message kind the structure parser found ("complaint",
    "autoreply", "delivered", "delay", ...). ``mta`` and ``subject`` may refine the
    decision. Never raises.
    """
    action_l = action.lower() if action else None
    hint = kind_hint.lower() if kind_hint else None
    if hint in ("complaint", "feedback"):
        return Verdict("feedback", None, None, None, Category.COMPLAINT)
    if hint in ("autoreply", "vacation"):
        return Verdict("vacation", None, None, None, Category.AUTOREPLY)

    text = diagnostic[:MAX_SCAN].lower() if diagnostic else ""
    code = _normalise_status(status)
    if code is None and text:
        m = _STATUS_IN_TEXT.search(text)
        if m is not None:
            code = f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"
    reply = replycode.strip() if replycode else None
    if not reply and text:
        m = _REPLY_IN_TEXT.search(text)
        if m is not None:
            reply = m.group(1)

    if (code is not None and code[0] == "2") or action_l in _DELIVERED_ACTIONS or hint == "delivered":
        return Verdict("delivered", code, None, None, Category.DELIVERED)

    reason = _match_phrases(text) if text else None
    if reason is None:
        reason = _status_reason(code)
    if reason is None:
        if action_l == "delayed":
            reason = "expired"
        elif text:
            reason = "onhold"
        else:
            reason = "undefined"

    # Permanence: the status class, else the reply code class, else the action.
    cls = code[0] if code else (reply[0] if reply and reply[0] in "45" else None)
    if cls is None and action_l == "delayed":
        cls = "4"
    permanent = True if cls == "5" else False if cls == "4" else None

    if code is None or code.endswith(".0.0"):
        pseudo = PSEUDO_STATUS.get(reason)
        if pseudo is not None:
            code = ("4" if permanent is False else "5") + pseudo[1:]

    if reason in NON_FAILURES:
        hard: bool | None = None
    elif reason in ADDRESS_BAD:
        hard = not (reason == "notaccept" and permanent is False)
    else:
        hard = False

    return Verdict(reason, code, hard, permanent, category_for(reason, permanent, action_l))
