"""Hand stored messages to the pipeline: the processor with the operator's rules plugged in, and
processing what is stored but not yet processed. Imports the pipeline, rules and models.

A run over stored messages (reprocessing, the notice sweep) is split into chunks
(`PROCESSING_CHUNK_SIZE` messages, a `RunChunk` row each). Spread, each chunk is a Celery task
of its own (`bounces.process_stored_chunk`), so any number of workers share one run; in process
(tests, a command without workers) the same chunks run one after another. The run stays one
`ProcessingRun` for the operator:

* its outcome counts are added in each batch's own transaction, with the claim (a row is
  claimed once, so a chunk delivered again after a partial commit counts only what it claims
  now); `processed`, batch failures and the chunk's error lines are added when the chunk ends,
  by the conditional UPDATE that moves the chunk to *done* (once per chunk);
* `chunks_done` / `chunks_total` show its progress; the chunk that brings `chunks_done` to
  `chunks_total` ends the run (a conditional UPDATE on the locked run row: it ends once), no
  Celery chord or result backend involved;
* a run whose chunks show no activity for `PROCESSING_CHUNK_STALE_MINUTES` (a chunk lost with
  its queue) is ended by the notice sweep with what it has, and says so; its messages stay
  stored (new) for the sweep or the mailbox's next run.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bouncemgr.queue import send_task
from bounces.models import Mailbox, ProcessingRun, RawMessage, RunChunk
from bounces.pipeline import policies
from bounces.pipeline.policies import Policy
from bounces.pipeline.processing import Processor
from bounces.pipeline.runs import ERROR_LOG_LIMIT, chunked, create_run
from bounces.rules.selectors import load_ruleset
from bounces.rules.services import record_rule_hits
from campaigns.guardrails import note_recorded_bounces

from .items import notice_items

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5

#: A chunk delivered more often than this without finishing is given up (see process_chunk).
MAX_CHUNK_DELIVERIES = 3

#: The Celery task that processes one chunk (bounces.tasks.process_stored_chunk_task).
CHUNK_TASK = "bounces.process_stored_chunk"

_PENDING = (RawMessage.State.NEW, RawMessage.State.FAILED)
_OPEN_CHUNK = (RunChunk.State.QUEUED, RunChunk.State.RUNNING)


def new_processor(*, run: ProcessingRun | None, mailbox: Mailbox | None, policy: Policy,
                  actor_label: str = "") -> Processor:
    """A `Processor` with the enabled rules (none: the engine's verdict stands) and their hit counter."""
    ruleset = load_ruleset()
    return Processor(run=run, mailbox=mailbox, policy=policy, ruleset=ruleset if len(ruleset) else None,
                     record_hits=record_rule_hits, after_record=note_recorded_bounces, actor_label=actor_label)


def chunk_size() -> int:
    return max(1, int(getattr(settings, "PROCESSING_CHUNK_SIZE", 500)))


def stale_after() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "PROCESSING_CHUNK_STALE_MINUTES", 75)))


def process_stored_messages(*, mailbox: Mailbox | None = None, run: ProcessingRun | None = None,
                            batch_size: int = 500, limit: int | None = None, spread: bool = False,
                            size: int | None = None) -> ProcessingRun:
    """Process stored rows that are new or failed (no server involved; no disposition), as one
    run in chunks: spread over the workers (`spread`: one task per chunk, sent on commit; the
    run is returned running) or here one after another (the run is returned finished).

    Safe to run concurrently with anything: rows are claimed per batch, and rows already in an
    open chunk of another run are left to it.
    """
    run = run or create_run(mailbox=mailbox, trigger=ProcessingRun.Trigger.REPROCESS)
    qs = RawMessage.objects.filter(state__in=_PENDING, attempts__lt=MAX_ATTEMPTS)
    if mailbox is not None:
        qs = qs.filter(mailbox=mailbox)
    return start_chunked_run(run=run, ids=not_busy(qs, limit), batch_size=batch_size, spread=spread, size=size)


def not_busy(qs, limit: int | None) -> list[int]:
    """The ids of `qs`, oldest first, up to `limit`, without rows an open chunk holds (`busy_ids`)."""
    busy = busy_ids()
    ids = qs.order_by("id").values_list("id", flat=True)
    if limit is not None:
        ids = ids[: limit + len(busy)]
    return [i for i in ids if i not in busy][:limit]


def busy_ids() -> set[int]:
    """Rows in a chunk of a running run that has not ended: another run leaves them to it."""
    found: set[int] = set()
    for ids in RunChunk.objects.filter(run__status=ProcessingRun.Status.RUNNING, state__in=_OPEN_CHUNK
                                       ).values_list("ids", flat=True):
        found.update(ids)
    return found


def start_chunked_run(*, run: ProcessingRun, ids: Sequence[int], batch_size: int = 500, spread: bool = False,
                      size: int | None = None) -> ProcessingRun:
    """Split `ids` into chunks, mark `run` running with its totals, then send one task per
    chunk once this commits (`spread`, and more than one chunk) or process them here."""
    groups = list(chunked(list(ids), size or chunk_size()))
    with transaction.atomic():
        RunChunk.objects.bulk_create([RunChunk(run=run, number=n, ids=g) for n, g in enumerate(groups, 1)])
        run.status = ProcessingRun.Status.RUNNING
        run.started_at = timezone.now()
        run.total = len(ids)
        run.chunks_total = len(groups)
        run.save(update_fields=["status", "started_at", "total", "chunks_total"])
    chunk_ids = list(RunChunk.objects.filter(run=run).order_by("number").values_list("id", flat=True))
    if not chunk_ids:
        finish_run(run.pk)
    elif spread and len(chunk_ids) > 1:
        transaction.on_commit(partial(_send_chunks, chunk_ids, batch_size))
    else:
        for chunk_id in chunk_ids:
            process_chunk(chunk_id=chunk_id, batch_size=batch_size)
    run.refresh_from_db()
    return run


def _send_chunks(chunk_ids: list[int], batch_size: int) -> None:
    for chunk_id in chunk_ids:
        try:
            send_task(CHUNK_TASK, chunk_id, batch_size)
        except Exception:  # the broker is down: the stale check ends the run, the rows stay new
            log.exception("queueing chunk %s failed", chunk_id)


def worker_name() -> str:
    return f"{socket.gethostname().split('.')[0][:40]}:{os.getpid()}"


def process_chunk(*, chunk_id: int, batch_size: int = 500) -> RunChunk | None:
    """Process one chunk of a run (a Celery task each; safe to run twice).

    Its rows still new or failed are processed in batches (claimed, recorded and counted in one
    transaction each). The chunk then moves to *done* with one conditional UPDATE that also adds
    its processed rows, batch failures and error lines to the run, so a chunk counts once however
    often it is delivered; the last chunk ends the run. A chunk whose run has already ended (the
    sweep found it stale) does nothing: its rows stay for the next sweep or mailbox run.
    """
    now = timezone.now()
    started = RunChunk.objects.filter(pk=chunk_id, state__in=_OPEN_CHUNK).update(
        state=RunChunk.State.RUNNING, worker=worker_name(), attempts=F("attempts") + 1, started_at=now)
    if not started:
        return None  # done already (a redelivery), abandoned, or gone
    chunk = RunChunk.objects.select_related("run", "run__mailbox").get(pk=chunk_id)
    run = chunk.run
    if chunk.attempts > MAX_CHUNK_DELIVERIES and run.finished_at is None:
        # Its worker died every time (killed at the hard time limit, out of memory): give up
        # instead of being delivered forever; what is left stays stored for the next run.
        run.error_log = (f"chunk {chunk.number}: given up after {MAX_CHUNK_DELIVERIES} deliveries that did not "
                         "finish (the worker died each time); its remaining messages stay stored for the next run\n")
        _finish_chunk(chunk, run, 1)
        chunk.refresh_from_db()
        return chunk
    if run.finished_at is not None:
        RunChunk.objects.filter(pk=chunk_id, state=RunChunk.State.RUNNING).update(
            state=RunChunk.State.ABANDONED, finished_at=timezone.now(),
            error_log="The run had already ended; this chunk's messages were left for the next run.")
        return chunk
    label = f"intake run #{run.pk}" if run.trigger == ProcessingRun.Trigger.INTAKE else ""
    processor = new_processor(run=run, mailbox=run.mailbox, policy=policies.effective_policy(run.mailbox),
                              actor_label=label)
    run.error_log = ""  # the processor appends this chunk's per-message errors here
    failed_batches = 0
    pending = list(RawMessage.objects.filter(id__in=chunk.ids, state__in=_PENDING, attempts__lt=MAX_ATTEMPTS)
                   .order_by("id").values_list("id", flat=True))
    for batch in chunked(pending, batch_size):
        rows = RawMessage.objects.filter(id__in=batch).order_by("id").values_list("id", "raw")
        items = notice_items(processor, rows)  # mail and structured notices alike
        try:
            processor.process(items)
        except Exception as exc:
            log.exception("processing %d stored messages of run %s failed", len(batch), run.pk)
            processor.mark_failed(batch, f"{type(exc).__name__}: {exc}")
            failed_batches += 1
            run.error_log += f"chunk {chunk.number}: {len(batch)} messages failed: {type(exc).__name__}: {exc}\n"
    _finish_chunk(chunk, run, failed_batches)
    chunk.refresh_from_db()
    return chunk


def _finish_chunk(chunk: RunChunk, run: ProcessingRun, failed_batches: int) -> None:
    # Rows of this chunk the run claimed, in this delivery or an earlier one that died.
    processed = RawMessage.objects.filter(id__in=chunk.ids, run_id=run.pk, state=RawMessage.State.PROCESSED).count()
    with transaction.atomic():
        # the run row first, as finish_run locks it before the chunks: no lock-order deadlock
        ProcessingRun.objects.select_for_update().filter(pk=run.pk).values_list("pk", flat=True).first()
        done = RunChunk.objects.filter(pk=chunk.pk, state=RunChunk.State.RUNNING).update(
            state=RunChunk.State.DONE, finished_at=timezone.now(), processed=processed, errors=failed_batches,
            error_log=run.error_log[-ERROR_LOG_LIMIT:])
        if done:
            ProcessingRun.objects.filter(pk=run.pk).update(
                chunks_done=F("chunks_done") + 1, processed=F("processed") + processed,
                errors=F("errors") + failed_batches)
    if done:
        counts = ProcessingRun.objects.filter(pk=run.pk).values_list("chunks_done", "chunks_total").first()
        if counts and counts[0] >= counts[1]:
            finish_run(run.pk)


def finish_run(run_id: int, *, note: str = "") -> bool:
    """End a chunked run once (the locked row's `finished_at` decides): Succeeded, Finished with
    errors (errors, or `note` says chunks were lost), or Failed (nothing processed, only errors).
    The chunks' error lines become the run's error log. True when this call ended it."""
    with transaction.atomic():
        run = ProcessingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.finished_at is not None:
            return False
        if note:
            RunChunk.objects.filter(run_id=run_id, state__in=_OPEN_CHUNK).update(
                state=RunChunk.State.ABANDONED, finished_at=timezone.now(), error_log=note)
        lines = [log_ for log_ in RunChunk.objects.filter(run_id=run_id).exclude(error_log="").order_by("number")
                 .values_list("error_log", flat=True) if log_ != note]
        run.error_log = ("".join(lines) + (note + "\n" if note else ""))[-ERROR_LOG_LIMIT:]
        if run.errors and not run.processed:
            run.status = ProcessingRun.Status.FAILED
        elif run.errors or note:
            run.status = ProcessingRun.Status.PARTIAL
        else:
            run.status = ProcessingRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at", "error_log"])
    return True


def finish_stale_runs(*, now: datetime | None = None) -> list[int]:
    """End chunked runs with no chunk activity for `PROCESSING_CHUNK_STALE_MINUTES` (a chunk lost
    with the queue, or one whose every delivery died): they end with what they have, and say
    which chunks did not end. Called by the notice sweep (beat, every minute)."""
    now = now or timezone.now()
    wait = stale_after()
    ended = []
    for run in ProcessingRun.objects.filter(status=ProcessingRun.Status.RUNNING, chunks_total__gt=0,
                                            finished_at__isnull=True):
        times = [t for pair in RunChunk.objects.filter(run=run).values_list("started_at", "finished_at")
                 for t in pair if t is not None]
        last = max([run.started_at or run.created_at, *times])
        if now - last < wait:
            continue
        left = run.chunks_total - run.chunks_done
        minutes = int(wait.total_seconds() // 60)
        note = (f"Ended by the sweep: {left} of {run.chunks_total} chunks did not finish within {minutes} minutes "
                f"of the run's last activity (a worker or the queue lost them). Their messages stay stored and are "
                f"processed by the next sweep (pushed notices) or the mailbox's next run.")
        if finish_run(run.pk, note=note):
            ended.append(run.pk)
    return ended
