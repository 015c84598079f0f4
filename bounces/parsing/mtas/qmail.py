"""qmail (qmail-send) and the providers whose bounces are qmail-shaped.

Body: an introduction, then per recipient a line "<addr>:" and its diagnostic lines (often
"Remote host said: 550 ..."), then "--- Below this line is a copy of the message.".
"""

from __future__ import annotations

import re

from ..common import Rec, find_command
from ..message import Mail
from ._text import angle_blocks, cut_returned, diag_rec, merge_dsn

NAME = "qmail"

_NEEDLES = (
    "this is the qmail-send program",
    "i'm afraid i wasn't able to deliver your message",
    "i'm not going to try again",
    "below this line is a copy of the message",
    "this is a permanent error; i've given up",
    "unable to deliver message to the following address",
    "unable to deliver your message to the following addresses",
    "your mail was not delivered to the following address",
    "your mail message to the following address",
    "your message to the following addresses",
    "su mensaje no pudo ser entregado",
    "this is the machine generated message from mail service",
)
_DELAY = re.compile(r"I'm still trying|temporary (?:failure|error)|will (?:keep|continue) trying", re.I)


def match(mail: Mail) -> bool:
    """qmail markers in the body (or a qmail Received header)."""
    lc = mail.lc_head
    if any(s in lc for s in _NEEDLES):
        return True
    # qmail and its clones: "Received: (qmail 123 invoked for bounce)" with "<addr>:" groups;
    # qmail writes no DSN, so a message with one was written by the MTA behind it
    return not mail.ds_texts and any("invoked for bounce" in v or "invoked from network" in v for v in mail.all_headers.get("received", ())) and (
        "\n<" in mail.body[:4000] or mail.body.startswith("<")
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipient groups "<addr>:" with their diagnostics."""
    return parse_angle(mail, dsn)


def parse_angle(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Shared by the qmail-shaped families (qmail, Yahoo, X2 ...)."""
    text = cut_returned(mail.body)
    recs: list[Rec] = []
    delayed = bool(_DELAY.search(text)) and "I've given up" not in text
    for addr, lines in angle_blocks(text):
        diag = " ".join(lines)
        rec = diag_rec(addr, diag)
        rec.command = find_command(diag)
        if delayed:
            rec.action = "delayed"
        recs.append(rec)
    return merge_dsn(recs, dsn) if recs else []
