"""Yahoo! Mail bounces: qmail-shaped ("Sorry, we were unable to deliver your message")."""

from __future__ import annotations

import re

from ..common import Rec
from ..message import Mail
from .qmail import parse_angle

NAME = "yahoo"
_MARK = re.compile(r"Sorry, we were unable to deliver your message to the following address", re.I)


def match(mail: Mail) -> bool:
    """Yahoo's introduction line, or a Yahoo bounce header."""
    return "sorry, we were unable to deliver your message to the following address" in mail.lc_head


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Same layout as qmail."""
    return parse_angle(mail, dsn)
