"""Dispositions: what happens on the mail server to a processed message (mark read, move, delete),
by its outcome and the mailbox's settings. Imports models and the connectors' types."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from bounces.mailboxes.base import Disposition, MailboxConnector, MessageRef
from bounces.models import Disposition as DispositionChoice
from bounces.models import Mailbox, ProcessingRun, RawMessage

from .runs import chunked

# When the recipients of one message matched rules asking for different things, the
# strongest wins: delete, then move, then mark read, then leave.
_STRENGTH = {"delete": 4, "move": 3, "mark_read": 2, "leave": 1}


def strongest(requests: Iterable[str]) -> str:
    """The one disposition a message gets from its rules' requests ("" = the mailbox's)."""
    best = ""
    for request in requests:
        if _STRENGTH.get(request.split(":", 1)[0], 0) > _STRENGTH.get(best.split(":", 1)[0], 0):
            best = request
    return best


def disposition_for(mailbox: Mailbox, outcome: str, delete_requested: bool, requested: str = "") -> Disposition:
    """The rule's request if any ("delete", "mark_read", "leave", "move:<folder>"), else the
    mailbox's processed (matched) or unmatched disposition."""
    if delete_requested or requested == "delete":
        return Disposition.delete()
    if requested.startswith("move:") and requested[5:]:
        return Disposition.move(requested[5:])
    if requested == "mark_read":
        return Disposition.mark_read()
    if requested == "leave":
        return Disposition.leave()
    if outcome == RawMessage.Outcome.MATCHED:
        action, folder = mailbox.processed_action, mailbox.processed_folder
    else:
        action, folder = mailbox.unmatched_action, mailbox.unmatched_folder
    if action == DispositionChoice.MOVE:
        if not folder:
            return Disposition.mark_read()  # no target: the safe choice
        return Disposition.move(folder)
    return Disposition(action)


def dispose(box: MailboxConnector, mailbox: Mailbox, rows: dict[MessageRef, tuple[int, str, bool]]) -> None:
    if not rows:
        return
    # One query for what rules asked for (most rows ask nothing: the mailbox's setting).
    requested: dict[int, str] = {}
    for chunk in chunked([i for i, _, _ in rows.values()], 900):
        requested.update(RawMessage.objects.filter(id__in=chunk).exclude(requested_disposition="")
                         .values_list("id", "requested_disposition"))
    box.apply({ref: disposition_for(mailbox, outcome, delete, requested.get(i, ""))
               for ref, (i, outcome, delete) in rows.items()})
    RawMessage.objects.filter(id__in=[i for i, _, _ in rows.values()]).update(disposed=True)


def settle_vanished(mailbox: Mailbox, run: ProcessingRun, listed: set[str]) -> None:
    """Flag as disposed the processed rows of recent failed runs that left the server.

    A worker killed after the server carried out a disposition but before the `disposed`
    flag was committed leaves rows that look undisposed while the message is gone (or
    seen); nothing is left to do for them.
    """
    since = timezone.now() - timedelta(days=7)
    failed_runs = (ProcessingRun.objects.filter(mailbox=mailbox, created_at__gte=since)
                   .exclude(status=ProcessingRun.Status.SUCCEEDED).exclude(pk=run.pk).values("id"))
    stale = [pk for pk, key in RawMessage.objects.filter(
        run_id__in=failed_runs, state=RawMessage.State.PROCESSED, disposed=False,
    ).values_list("id", "dedupe_key") if key not in listed]
    for chunk in chunked(stale, 900):
        RawMessage.objects.filter(id__in=chunk).update(disposed=True)
