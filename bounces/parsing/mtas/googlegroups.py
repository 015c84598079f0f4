"""Google Groups: a post refused by a group (does not exist or no permission to post)."""

from __future__ import annotations

from ..common import ADDR_RE, Rec, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec

NAME = "googlegroups"


def match(mail: Mail) -> bool:
    """Google's mailer-daemon answering for a group (X-Failed-Recipients + Groups wording)."""
    return bool(
        mail.header("x-failed-recipients")
        and "googlemail.com" in mail.lc_from
        and any(s in mail.lc_head for s in ("google groups", "google グループ", "groups.google.com"))
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """The group address(es) from X-Failed-Recipients; the group refused the sender."""
    text = " ".join(cut_returned(mail.body).split())
    recs = []
    for v in mail.header_all("x-failed-recipients"):
        for a in ADDR_RE.findall(v):
            rec = diag_rec(norm_address(a), text[:600])
            rec.status = rec.status if rec.status and rec.status[0] in "45" else None
            rec.action = "failed"
            # the group refuses the poster: a rejection of the sender, not a bad address
            rec.reason = "rejected"
            recs.append(rec)
    return recs
