"""Celery tasks of the bounce pipeline: they take ids and call one service. An interface:
imports models, the intake and the pipeline; services send these tasks by name."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .incidents.guard import sweep_counts
from .intake.mailbox import TransientRunError, process_mailbox
from .intake.notices import process_notices, sweep_notices
from .intake.stored import CHUNK_TASK, process_chunk
from .models import Bounce, Mailbox, ProcessingRun
from .pipeline.actions import lift_after_accepted_sends


@shared_task(
    bind=True,
    acks_late=True,
    # A run streams in batches and refreshes its mailbox lock each batch; the hard limit
    # stays below the lock's lifetime plus a batch, so a killed run's lock has expired
    # by the time the retry comes.
    soft_time_limit=50 * 60,
    time_limit=55 * 60,
    autoretry_for=(TransientRunError,),
    retry_backoff=30,
    retry_backoff_max=15 * 60,
    retry_jitter=True,
    max_retries=5,
)
def process_mailbox_task(self, mailbox_id: int, run_id: int | None = None) -> dict:
    """Process one mailbox once (scheduled by beat, or queued by the admin button).

    Retries (a new run each time) on transient connection problems with exponential
    backoff; the failed attempt stays visible as its own run.
    """
    if not Mailbox.objects.filter(pk=mailbox_id).exists():
        return {"skipped": "mailbox deleted"}
    if self.request.retries and run_id is not None:
        # The first attempt's run records its failure; a retry gets a fresh one.
        run_id = None
    if run_id is not None:
        ProcessingRun.objects.filter(pk=run_id).update(task_id=self.request.id or "")
    run = process_mailbox(
        mailbox_id=mailbox_id,
        run_id=run_id,
        trigger=ProcessingRun.Trigger.SCHEDULE if run_id is None else ProcessingRun.Trigger.MANUAL,
    )
    return {"run": run.pk, "status": run.status, "summary": run.summary()}


# Contacts per recompute task: a contact's whole soft history is replayed, in order, inside one
# chunk (its row locked), so chunks of different contacts are independent and spread over the
# workers; a chunk delivered twice replays the same history again and changes nothing more.
RECOMPUTE_CHUNK = 2000


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def recompute_bounce_state_task(actor_label: str = "policy change") -> dict:
    """Replay stored soft bounces under the current policy (after a settings change): up to
    RECOMPUTE_CHUNK contacts here, more as one task per chunk of contacts."""
    from .pipeline.actions import recompute_bounce_state
    from .pipeline.runs import chunked

    ids = sorted(set(Bounce.objects.filter(kind=Bounce.Kind.SOFT, counted=True, contact__isnull=False)
                     .values_list("contact_id", flat=True)))
    if len(ids) <= RECOMPUTE_CHUNK:
        return {"contacts_changed": recompute_bounce_state(contact_ids=ids, actor_label=actor_label)}
    chunks = list(chunked(ids, RECOMPUTE_CHUNK))
    for chunk in chunks:
        recompute_bounce_state_chunk_task.delay(chunk, actor_label)
    return {"contacts": len(ids), "chunks": len(chunks)}


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def recompute_bounce_state_chunk_task(contact_ids: list[int], actor_label: str = "policy change") -> dict:
    """Replay the soft bounces of these contacts (one chunk of `recompute_bounce_state_task`)."""
    from .pipeline.actions import recompute_bounce_state

    return {"contacts_changed": recompute_bounce_state(contact_ids=[int(i) for i in contact_ids],
                                                       actor_label=actor_label)}


@shared_task(name="bounces.intake.process_notices", acks_late=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def process_notices_task(ids: list[int]) -> dict:
    """Process stored notices (queued when they were committed); safe to run twice: rows
    are claimed, so a row is processed once."""
    return process_notices(ids=[int(i) for i in ids][:5000], actor_label="intake")


@shared_task(name="bounces.intake.sweep_notices", acks_late=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def sweep_notices_task() -> dict:
    """Beat backstop: process pushed notices still waiting (a lost task, a dead worker) as one
    run whose chunks are spread over the workers; end chunked runs gone stale."""
    run = sweep_notices(spread=True)
    return {"run": run.pk if run else None}


@shared_task(name=CHUNK_TASK, acks_late=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def process_stored_chunk_task(chunk_id: int, batch_size: int = 500) -> dict:
    """One chunk of a run over stored messages (PROCESSING_CHUNK_SIZE rows). Safe to run twice:
    rows are claimed per batch and the chunk counts once; a chunk delivered again after its
    worker died processes what is left."""
    chunk = process_chunk(chunk_id=int(chunk_id), batch_size=int(batch_size))
    if chunk is None:
        return {"chunk": chunk_id, "state": "done before"}
    return {"chunk": chunk.pk, "run": chunk.run_id, "state": chunk.state, "processed": chunk.processed}


@shared_task(name="bounces.lift_after_accepted_sends", acks_late=True, soft_time_limit=300, time_limit=330)
def lift_after_accepted_sends_task() -> int:
    """Lift soft / blocked suppressions an accepted send with no bounce since has disproved."""
    return lift_after_accepted_sends()


@shared_task(name="bounces.incidents.sweep_counts", acks_late=True, soft_time_limit=300, time_limit=330)
def sweep_incident_counts_task() -> int:
    """Delete the incident guard's per-minute counts older than its baseline period."""
    return sweep_counts(now=timezone.now())
