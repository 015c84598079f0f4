"""Sending into an open incident (issue 14 part 2): which messages wait, and resuming them when
the incident is resolved. campaigns/services.py pauses (marking the row); this module resumes
(the retry task is sent by name). Imports models and bouncemgr.queue."""

from __future__ import annotations

from django.utils import timezone

from bouncemgr.queue import send_task_on_commit
from campaigns.models import SentMessage

# last_reply of a message paused by an open incident: deferred with no due time until resolved.
PAUSE_MARK = "incident #{id}: paused while the incident is open"


def pause_mark(incident_id: int) -> str:
    return PAUSE_MARK.format(id=incident_id)


def resume_incident_sends(*, incident_id: int) -> int:
    """The messages this incident paused become due now; campaigns.retry_deferred is sent after
    the commit (it claims each one deferred -> sending, as any retry). Returns how many."""
    n = SentMessage.objects.filter(
        status=SentMessage.Status.DEFERRED, next_attempt_at__isnull=True, last_reply=pause_mark(incident_id),
    ).update(next_attempt_at=timezone.now())
    if n:
        send_task_on_commit("campaigns.retry_deferred")
    return n
