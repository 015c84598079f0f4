"""Minimal stand-in for classify.classify, used only while classify.py is missing.

The real classification lives in classify.py (owned by the classification work); this exists
so the structure half can be run and scored on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import find_status
from .types import Category

_BY_STATUS = {
    "5.1.1": "userunknown",
    "5.1.0": "userunknown",
    "5.1.2": "hostunknown",
    "5.2.2": "mailboxfull",
    "4.2.2": "mailboxfull",
    "5.2.1": "suspend",
    "5.7.1": "rejected",
    "5.3.4": "mesgtoobig",
    "5.4.4": "hostunknown",
}
_PHRASES = [
    ("userunknown", re.compile(r"user unknown|unknown user|no such user|does not exist|not exist|invalid recipient|recipient rejected|mailbox unavailable", re.I)),
    ("mailboxfull", re.compile(r"mailbox (?:is )?full|over ?quota|quota exceeded|insufficient", re.I)),
    ("expired", re.compile(r"retry time|too long|expired|giving up", re.I)),
    ("hostunknown", re.compile(r"host unknown|domain not found|no mx", re.I)),
    ("blocked", re.compile(r"blocked|blacklist|block ?list|spamhaus", re.I)),
]
_HARD = {"userunknown", "hostunknown", "hasmoved", "notaccept"}


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: str
    status: str | None
    hard: bool | None
    permanent: bool | None
    category: Category


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
    """Tiny status/phrase table: good enough to exercise the structure half."""
    st = status or find_status(diagnostic)
    if not st and replycode and replycode[0] in "45":
        st = f"{replycode[0]}.0.0"
    reason = _BY_STATUS.get(st or "", "")
    if not reason:
        for name, rx in _PHRASES:
            if rx.search(diagnostic):
                reason = name
                break
    reason = reason or ("expired" if action == "delayed" else "onhold")
    permanent = True if st and st[0] == "5" else False if st and st[0] == "4" else None
    hard = reason in _HARD and permanent is not False
    cat = Category.HARD if hard else Category.SOFT if permanent is False else Category.UNKNOWN
    return Verdict(reason=reason, status=st, hard=hard, permanent=permanent, category=cat)


def category_for(reason: str, permanent: bool | None, action: str | None) -> Category:
    """Rough category mapping for the fallback only."""
    if reason == "feedback":
        return Category.COMPLAINT
    if reason == "vacation":
        return Category.AUTOREPLY
    if reason == "delivered":
        return Category.DELIVERED
    if reason in _HARD and permanent:
        return Category.HARD
    return Category.SOFT if permanent is False else Category.UNKNOWN
