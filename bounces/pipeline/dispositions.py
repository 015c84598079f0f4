"""Dispositions: what happens on the mail server to a processed message (mark read, move, delete),
by its outcome and the mailbox's settings. Imports models and the connectors' types."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from bounces.mailboxes.base import Disposition, MailboxConnector, MessageRef
from bounces.models import Disposition as DispositionChoice
from bounces.models import Mailbox, ProcessingRun, RawMessage

from .runs import chunked


def disposition_for(mailbox: Mailbox, outcome: str, delete_requested: bool) -> Disposition:
    if delete_requested:
        return Disposition.delete()
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
    box.apply({ref: disposition_for(mailbox, outcome, delete) for ref, (_, outcome, delete) in rows.items()})
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
