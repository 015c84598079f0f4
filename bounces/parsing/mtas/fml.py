"""fml mailing-list manager: refusals of posts from non-members (the list address bounced)."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import diag_rec

NAME = "fml"
_NOT_MEMBER = re.compile(r"not a member of this mailing list <([^<>\s]+@[^<>\s]+)>", re.I)
_SUBJECT = re.compile(r"are not member|not a member|rejected|deny|forbidden", re.I)


def match(mail: Mail) -> bool:
    """fml's headers (X-MLServer / X-ML-Name) or its fixed refusal wording."""
    if mail.header("x-mlserver") and "fml" in mail.header("x-mlserver").lower():
        return True
    return "not a member of this mailing list" in mail.lc_head and bool(_SUBJECT.search(mail.subject))


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """The list address refused the post."""
    m = _NOT_MEMBER.search(mail.body)
    if not m:
        return []
    rec = diag_rec(norm_address(m.group(1)), " ".join(mail.body[m.start() : m.start() + 300].split()))
    rec.action = "failed"
    rec.reason = "rejected"
    return [rec]
