"""The mailbox poller: fetch, store and commit, hand over to the pipeline, dispose.
Imports the pipeline, intake.stored, the connectors and models; never tasks, views or admin.

Flow of one run of one mailbox (`process_mailbox`):

1. Take the mailbox's run lock (conditional UPDATE of `Mailbox.locked_until`; it expires
   by itself if the worker dies, and is refreshed every batch).
2. List the messages on the server. Keys already stored and disposed are skipped; keys
   stored but not yet disposed (a run died between commit and disposition) are disposed
   of now, according to their stored verdict, and counted as duplicates, never again as
   bounces; keys stored but not processed are processed from the stored bytes.
3. For each batch (mailbox batch size, default 200; 500 in the bench): fetch; store the
   raw bytes (insert ignoring conflicts on the unique (mailbox, dedupe_key)) and COMMIT;
   parse (outside any transaction; large runs in a helper process, one batch ahead);
   match, run the rules and decide (reads only); then in ONE transaction: claim the rows
   and mark them processed with their outcome (`UPDATE ... WHERE state IN (new, failed)
   RETURNING id`; only rows this run got are recorded, so two runs never process one
   message), insert the Bounce rows, apply contact actions set-based; COMMIT.
4. Dispose of the batch on the server (only rows whose results are committed), then flag
   them disposed. Disposition waits for the verdict because unmatched messages have their
   own disposition (default: mark read and leave) and a rule may ask for deletion.

A crash anywhere leaves every fetched message either not stored (still on the server, the
next run fetches it) or stored (the next run finds its key and finishes the job without
counting it twice). See docs/pipeline.md.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from bounces.mailboxes.base import MailboxConnector, MailboxError, MessageRef
from bounces.models import Mailbox, ProcessingRun, RawMessage
from bounces.pipeline import policies
from bounces.pipeline.background import BackgroundParser
from bounces.pipeline.dispositions import dispose, disposition_for, settle_vanished
from bounces.pipeline.processing import Item, Processor
from bounces.pipeline.runs import (
    ERROR_LOG_LIMIT,
    ProgressCallback,
    abandon_mailbox_lock,
    acquire_mailbox_lock,
    add_counts,
    chunked,
    create_run,
    describe_lock,
    new_lock_token,
    refresh_mailbox_lock,
    release_mailbox_lock,
    reset_database_limits,
    save_run,
    set_database_limits,
    writes_refused,
)

from .connections import mailbox_connection_settings, open_connector
from .notices import Notice, store_notices
from .stored import new_processor

log = logging.getLogger(__name__)


# Bytes of fetched mail held at once before a batch is cut short (memory bound).
MAX_BATCH_BYTES = 32 * 1024 * 1024


class MailboxBusyError(Exception):
    """Another run holds this mailbox's lock."""


class TransientRunError(Exception):
    """The run stopped on a temporary mailbox problem; worth retrying with backoff."""


class DatabaseUnavailableError(TransientRunError):
    """The database failed mid-run (stopped, restarted, read-only, full, a lock timeout)."""


# After a database failure, the run's end is recorded with these pauses between tries (the
# server may be restarting); then the failure is reported and the lock left to expire.
RECORD_RETRY_PAUSES = (1.0, 3.0, 6.0)
# ... and while the server does not even accept a connection (a restart, crash recovery after
# an immediate stop: seconds to minutes), tries go on every few seconds for this long.
RECORD_RECONNECT_SECONDS = 90.0
# ... and if the database never took the run's end (read-only, full, gone), it is kept here
# (mailbox id -> run id, errors, error log, finished at) for the next run of this process to
# write, instead of "Interrupted" (issue 12).
_UNRECORDED_FAILURES: dict[int, tuple[int, int, str, datetime]] = {}


# Runs with at least this many new messages parse in a helper process, overlapping the
# engine (the biggest CPU cost) with the database work and the IMAP traffic.
PARALLEL_PARSE_MIN = 2000


@dataclass
class _Fetched:
    ref: MessageRef
    raw: bytes


def process_mailbox(
    *,
    mailbox_id: int,
    run_id: int | None = None,
    trigger: str = ProcessingRun.Trigger.SCHEDULE,
    dry_run: bool = False,
    actor: Any = None,
    progress: ProgressCallback | None = None,
    batch_size: int | None = None,
    crash_after_commit: Callable[[list[int]], None] | None = None,
) -> ProcessingRun:
    """Run the pipeline once for one mailbox; returns the finished run.

    Raises `TransientRunError` (after recording it on the run and the mailbox) when the
    server could not be reached or dropped the connection, so the task can retry with
    backoff. `crash_after_commit` is a test hook called after a batch's results are
    committed and before its disposition.
    """
    try:
        set_database_limits()  # first: every later statement waits at most LOCK_TIMEOUT for a lock
        mailbox = Mailbox.objects.get(pk=mailbox_id)
        if run_id is not None:
            run = ProcessingRun.objects.get(pk=run_id)
        else:
            run = create_run(mailbox=mailbox, trigger=trigger, actor=actor, dry_run=dry_run)
    except DatabaseError as exc:
        # No run to record it on (the database refused even that): the same one line, and a
        # TransientRunError, so the task retries with backoff instead of failing for good.
        raise DatabaseUnavailableError(database_failure_text(exc)) from None
    dry_run = dry_run or run.dry_run
    token = new_lock_token()
    now = timezone.now()
    run.status = ProcessingRun.Status.RUNNING
    run.started_at = now
    try:
        run.save(update_fields=["status", "started_at"])
        acquired = acquire_mailbox_lock(mailbox.pk, token)
        if acquired:
            _record_earlier_failure(mailbox.pk)
    except DatabaseError as exc:
        message = database_failure_text(exc)
        _record_database_failure(run, mailbox, token, message, now)
        raise DatabaseUnavailableError(message) from None
    if not acquired:
        holder = describe_lock(mailbox.pk)
        run.status = ProcessingRun.Status.SKIPPED
        run.finished_at = timezone.now()
        run.error_log = ("Another run of this mailbox is in progress"
                         + (f" ({holder})" if holder else "") + "; this one did nothing.")
        run.save(update_fields=["status", "finished_at", "error_log"])
        reset_database_limits()
        return run
    # We hold the lock, so no other run of this mailbox is alive: one still marked running
    # was interrupted (worker killed, machine restarted). Say so instead of "running" forever.
    # (Reprocessing runs take no lock and may legitimately run alongside.)
    ProcessingRun.objects.filter(mailbox=mailbox, status=ProcessingRun.Status.RUNNING).exclude(
        pk=run.pk).exclude(trigger=ProcessingRun.Trigger.REPROCESS).update(
        status=ProcessingRun.Status.FAILED, finished_at=timezone.now(),
        error_log="Interrupted: the worker stopped before the run finished. What it stored was "
                  "picked up by a later run.",
    )
    transient = False
    database_error = ""
    try:
        skipped = _run_mailbox(run, mailbox, token, dry_run=dry_run, progress=progress,
                               batch_size=batch_size or mailbox.batch_size,
                               crash_after_commit=crash_after_commit)
        # Messages left unprocessed are never a plain "Succeeded" (issue 12, item 11).
        run.status = (ProcessingRun.Status.PARTIAL if run.errors or skipped
                      else ProcessingRun.Status.SUCCEEDED)
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_run_at=now, last_success_at=timezone.now(), last_error="",
        )
    except MailboxError as exc:
        transient = bool(exc.transient)
        _fail(run, mailbox, f"{exc.category}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), now)
    except DatabaseError as exc:
        database_error = database_failure_text(exc)
        log.error("run %s of mailbox %s stopped: %s", run.pk, mailbox.pk, database_error)
    except Exception as exc:
        log.exception("run %s of mailbox %s failed", run.pk, mailbox.pk)
        _fail(run, mailbox, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}", now)
        raise
    finally:
        if not database_error:
            run.finished_at = timezone.now()
            save_run(run, "status", "finished_at")
            release_mailbox_lock(mailbox.pk, token)
            reset_database_limits()
    if database_error:
        _record_database_failure(run, mailbox, token, database_error, now)
        raise DatabaseUnavailableError(database_error)
    if transient:
        raise TransientRunError(run.error_log.strip().splitlines()[-1] if run.error_log else "transient error")
    return run


def database_failure_text(exc: DatabaseError) -> str:
    """One line for the operator: what the database said, without a traceback."""
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    refused = writes_refused(detail)
    if refused:
        return (f"The database refused writes: {refused}. Run stopped ({detail}); everything committed "
                "before it is kept, nothing uncommitted left the mail server, and the next run continues "
                "once the database takes writes again.")
    if "lock timeout" in detail:
        hint = "another session held rows this run needed; it gave up instead of waiting"
    else:
        hint = "the database server stopped or the connection broke"
    return (f"Database error, run stopped ({hint}): {detail}. Everything committed before it is kept "
            "and the next run continues from there.")


def _record_database_failure(run: ProcessingRun, mailbox: Mailbox, token: str, message: str,
                             started: datetime) -> None:
    """Mark the run failed, set the mailbox's last error and release the lock, retrying while
    the database comes back; if it does not, the lock expires by itself (LOCK_TTL)."""
    run.status = ProcessingRun.Status.FAILED
    run.errors += 1
    run.error_log = (run.error_log + message + "\n")[-ERROR_LOG_LIMIT:]
    run.finished_at = timezone.now()
    writes = {
        "run": lambda: save_run(run, "status", "finished_at"),
        "mailbox": lambda: Mailbox.objects.filter(pk=mailbox.pk).update(
            last_run_at=started, last_error=message[:2000], last_error_at=timezone.now()),
        "lock": lambda: release_mailbox_lock(mailbox.pk, token),
    }
    pauses = list(RECORD_RETRY_PAUSES)
    reconnect_until = time.monotonic() + RECORD_RECONNECT_SECONDS
    pause = 0.0
    while True:
        if pause:
            time.sleep(pause)
        try:
            connection.close()  # a broken connection is replaced by a fresh one
        except DatabaseError:
            pass
        try:
            connection.ensure_connection()
            reachable = True
        except DatabaseError as exc:
            reachable = False
            log.warning("run %s: the database does not answer yet: %s", run.pk, " ".join(str(exc).split())[:200])
        for name, write in list(writes.items()) if reachable else ():
            try:
                set_database_limits()
                write()
                del writes[name]
            except DatabaseError as exc:
                log.warning("run %s: recording the failure (%s) failed: %s", run.pk, name, exc)
        if not writes:
            try:
                reset_database_limits()
            except DatabaseError:
                pass
            return
        if pauses:
            pause = pauses.pop(0)
        elif not reachable and time.monotonic() < reconnect_until:
            pause = 2.0  # still starting up: the run's end is worth the wait (the lock goes with it)
        else:
            break
    abandon_mailbox_lock(token)
    _UNRECORDED_FAILURES[mailbox.pk] = (run.pk, run.errors, run.error_log, run.finished_at)
    log.error("run %s: the database stayed unavailable; the run is left for the next one to close", run.pk)


def _record_earlier_failure(mailbox_id: int) -> None:
    """Write the end of this process's last run of the mailbox if the database refused it then
    (the run says why it failed, not just "Interrupted")."""
    earlier = _UNRECORDED_FAILURES.get(mailbox_id)
    if earlier is None:
        return
    run_id, errors, error_log, finished_at = earlier
    ProcessingRun.objects.filter(pk=run_id, status=ProcessingRun.Status.RUNNING).update(
        status=ProcessingRun.Status.FAILED, errors=errors, error_log=error_log, finished_at=finished_at)
    _UNRECORDED_FAILURES.pop(mailbox_id, None)


def _fail(run: ProcessingRun, mailbox: Mailbox, message: str, started: datetime) -> None:
    run.status = ProcessingRun.Status.FAILED
    run.errors += 1
    run.error_log = (run.error_log + message + "\n")[-ERROR_LOG_LIMIT:]
    Mailbox.objects.filter(pk=mailbox.pk).update(
        last_run_at=started, last_error=message[:2000], last_error_at=timezone.now()
    )
    from api.events import emit_event  # the run.failed webhook event

    try:
        emit_event("run.failed", {"run_id": run.pk, "mailbox_id": mailbox.pk, "mailbox": mailbox.name,
                                  "trigger": run.trigger,
                                  "error": message.strip().splitlines()[0][:300] if message.strip() else ""})
    except Exception:  # noqa: BLE001 - the run's own record of its failure must not be lost to this
        log.exception("could not record the run.failed event of run %s", run.pk)


def _run_mailbox(run: ProcessingRun, mailbox: Mailbox, token: str, *, dry_run: bool,
                 progress: ProgressCallback | None, batch_size: int,
                 crash_after_commit: Callable[[list[int]], None] | None) -> int:
    """Fetch, store, process and dispose; returns how many messages were left unprocessed
    because someone else had marked them read (fetch mode "unseen")."""
    processor = new_processor(run=run, mailbox=mailbox, policy=policies.effective_policy(mailbox))
    conn = mailbox_connection_settings(mailbox)
    box = open_connector(conn)
    try:
        state = box.open_folder(conn.folder, expected_uidvalidity=mailbox.uidvalidity)
        if state.uidvalidity != mailbox.uidvalidity and not dry_run:
            Mailbox.objects.filter(pk=mailbox.pk).update(uidvalidity=state.uidvalidity)
        # The folder was reset (restored, recreated): every stored key is void, so messages
        # we already processed come back under new keys. Recognise them by their bytes.
        by_content = bool(state.uidvalidity_changed and mailbox.uidvalidity is not None)
        if by_content:
            run.error_log += (f"UIDVALIDITY changed ({mailbox.uidvalidity} -> {state.uidvalidity}); "
                              "recognising known messages by their content this run.\n")
        unseen_only = mailbox.fetch_mode == Mailbox.FetchMode.UNSEEN
        refs = box.list_messages(unseen_only=unseen_only)
        skipped = 0
        if unseen_only and not by_content:
            skipped = _count_read_elsewhere(box, mailbox)
            if skipped:
                run.error_log += (
                    f"{skipped} messages in {state.name!r} were already marked read by someone else "
                    "and were not processed (fetch mode: unseen messages). Set the mailbox's fetch "
                    "mode to 'All messages' to process them (nothing is processed twice).\n")
        known = _known_rows(mailbox, [r.key for r in refs])
        if not dry_run:
            settle_vanished(mailbox, run, {r.key for r in refs})
        # 1. stored earlier, results committed, disposition not done: finish the job.
        pending_dispose = {r: known[r.key] for r in refs if r.key in known
                           and known[r.key]["state"] == RawMessage.State.PROCESSED
                           and not known[r.key]["disposed"]}
        # 2. stored earlier, not processed (crash or failure): process from the stored bytes.
        stored_unprocessed = [r for r in refs if r.key in known
                              and known[r.key]["state"] != RawMessage.State.PROCESSED]
        new_refs = [r for r in refs if r.key not in known]
        limit = mailbox.max_messages_per_run
        if limit:
            new_refs = new_refs[: max(0, limit - len(stored_unprocessed))]
        run.total = len(new_refs) + len(stored_unprocessed)
        run.duplicates += len(pending_dispose)
        save_run(run)
        if pending_dispose and not dry_run:
            dispose(box, mailbox, {ref: (row["id"], row["outcome"], row["delete_requested"])
                                    for ref, row in pending_dispose.items()})
        if stored_unprocessed:
            by_key = {r.key: r for r in stored_unprocessed}
            for chunk in chunked([known[r.key]["id"] for r in stored_unprocessed], batch_size):
                rows = list(RawMessage.objects.filter(id__in=chunk).values_list("id", "dedupe_key", "raw"))
                items = [processor.parse(i, bytes(raw)) for i, _, raw in rows]
                if dry_run:  # counts only: nothing claimed, recorded or disposed
                    _dry_process_items(run, processor, items)
                    _after_batch(run, mailbox, token, len(items), progress)
                    continue
                refs_by_id = {i: by_key[k] for i, k, _ in rows}
                _process_and_dispose(run, box, mailbox, processor, items, refs_by_id,
                                     crash_after_commit=crash_after_commit)
                _after_batch(run, mailbox, token, len(items), progress)
        parser = BackgroundParser.start(processor.options) if (
            not dry_run and len(new_refs) >= PARALLEL_PARSE_MIN) else None
        pending: tuple[dict[int, MessageRef], Any] | None = None

        def finish(entry: tuple[dict[int, MessageRef], Any]) -> None:
            refs_by_id, parsed = entry
            items = parsed.result() if parser is not None else parsed
            _process_and_dispose(run, box, mailbox, processor, items, refs_by_id,
                                 crash_after_commit=crash_after_commit)
            _after_batch(run, mailbox, token, len(items), progress)

        try:
            for batch in _fetch_batches(box, new_refs, batch_size):
                run.fetched += len(batch)
                if dry_run:
                    _dry_process(run, processor, mailbox, batch)
                    _after_batch(run, mailbox, token, len(batch), progress)
                    continue
                if by_content:
                    batch = _skip_known_content(box, mailbox, run, batch)
                    if not batch:
                        continue
                ids_by_key = _store(mailbox, run, batch)
                refs_by_id = {ids_by_key[f.ref.key]: f.ref for f in batch if f.ref.key in ids_by_key}
                pairs = [(ids_by_key[f.ref.key], f.raw) for f in batch if f.ref.key in ids_by_key]
                del batch
                if parser is None:
                    finish((refs_by_id, [processor.parse(i, raw) for i, raw in pairs]))
                    continue
                # Large runs: parse this batch in a worker process while the previous
                # batch is processed and disposed here (one batch of lookahead).
                entry = (refs_by_id, parser.submit(pairs))
                if pending is not None:
                    finish(pending)
                pending = entry
            if pending is not None:
                finish(pending)
                pending = None
        finally:
            if parser is not None:
                parser.close()
    finally:
        box.close()
        _report_rule_budget(run, processor)
    return skipped


def _report_rule_budget(run: ProcessingRun, processor: Processor) -> None:
    """Rules stopped for their cost (rules.ruleset.RULE_BUDGET) go into the run's log."""
    report = getattr(processor.ruleset, "budget_report", None)
    text = report() if report is not None else ""
    if text:
        log.warning("run %s: %s", run.pk, text)
        run.error_log = (run.error_log + text + "\n")[-ERROR_LOG_LIMIT:]


def _count_read_elsewhere(box: MailboxConnector, mailbox: Mailbox) -> int:
    """Messages the "unseen" listing leaves out that this installation never stored."""
    keys = box.seen_keys()
    stored = 0
    for chunk in chunked(keys, 900):
        stored += RawMessage.objects.filter(mailbox=mailbox, dedupe_key__in=chunk).count()
    return len(keys) - stored


def _after_batch(run: ProcessingRun, mailbox: Mailbox, token: str, n: int,
                 progress: ProgressCallback | None) -> None:
    run.processed += n
    save_run(run)
    if not refresh_mailbox_lock(mailbox.pk, token):
        raise RuntimeError("the mailbox lock expired and was taken by another run")
    if progress is not None:
        progress(run, n)


def _known_rows(mailbox: Mailbox, keys: list[str]) -> dict[str, dict]:
    known: dict[str, dict] = {}
    for chunk in chunked(keys, 900):
        for row in RawMessage.objects.filter(mailbox=mailbox, dedupe_key__in=chunk).values(
            "id", "dedupe_key", "state", "outcome", "delete_requested", "disposed"
        ):
            known[row["dedupe_key"]] = row
    return known


def _fetch_batches(box: MailboxConnector, refs: list[MessageRef], batch_size: int) -> Iterator[list[_Fetched]]:
    batch: list[_Fetched] = []
    size = 0
    for message in box.fetch(refs, batch_size=batch_size):
        batch.append(_Fetched(message.ref, message.raw))
        size += len(message.raw)
        if len(batch) >= batch_size or size >= MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def dedupe_key_for(ref: MessageRef | None, raw: bytes) -> str:
    """The stored identity of a message: the connector's key, else a hash of the bytes."""
    if ref is not None and ref.key:
        return ref.key[:255]
    return "sha256:" + sha256(raw).hexdigest()


def _skip_known_content(box: MailboxConnector, mailbox: Mailbox, run: ProcessingRun,
                        batch: list[_Fetched]) -> list[_Fetched]:
    """Drop (and dispose of) messages whose exact bytes this mailbox already processed."""
    hashes = {sha256(f.raw).hexdigest(): f for f in batch}
    known: dict[str, tuple[str, bool, str]] = {}
    for chunk in chunked(list(hashes), 500):
        for digest, outcome, delete, requested in RawMessage.objects.filter(
            mailbox=mailbox, sha256__in=chunk, state=RawMessage.State.PROCESSED
        ).values_list("sha256", "outcome", "delete_requested", "requested_disposition"):
            known[digest] = (outcome, delete, requested)
    if not known:
        return batch
    run.duplicates += len(known)
    # The same disposition as the first time: a rule's request ("move:Hard", "leave", ...) too.
    box.apply({hashes[d].ref: disposition_for(mailbox, outcome, delete, requested)
               for d, (outcome, delete, requested) in known.items()})
    return [f for d, f in hashes.items() if d not in known]


def _store(mailbox: Mailbox, run: ProcessingRun, batch: list[_Fetched]) -> dict[str, int]:
    """Store the fetched messages through the one intake (insert-ignore on (mailbox, key),
    committed); return key -> id. A key stored before is counted as a duplicate."""
    stored = store_notices(notices=[
        Notice.mail(source=RawMessage.Source.MAILBOX, raw=f.raw, key=dedupe_key_for(f.ref, f.raw),
                    mailbox_id=mailbox.pk)
        for f in batch
    ], run=run)
    run.duplicates += stored.duplicates
    return stored.ids


def _process_and_dispose(run: ProcessingRun, box: MailboxConnector, mailbox: Mailbox, processor: Processor,
                         items: list[Item], refs_by_id: dict[int, MessageRef], *,
                         crash_after_commit: Callable[[list[int]], None] | None) -> None:
    try:
        outcome = processor.process(items)
    except DatabaseError:
        raise  # the database, not the batch: the run stops (process_mailbox says why)
    except Exception as exc:
        log.exception("batch of %s messages failed", len(items))
        error = f"{type(exc).__name__}: {exc}"
        processor.mark_failed([i.raw_id for i in items], error)
        run.errors += 1
        run.error_log = (run.error_log + f"batch of {len(items)} failed: {error}\n")[-ERROR_LOG_LIMIT:]
        return
    add_counts(run, outcome.counts)
    if crash_after_commit is not None:
        crash_after_commit(outcome.processed_ids)
    # Dispose of every row of this batch whose results are committed (ours, or a
    # concurrent run's that claimed it first: the message is done either way).
    rows = RawMessage.objects.filter(id__in=list(refs_by_id), state=RawMessage.State.PROCESSED,
                                     disposed=False).values_list("id", "outcome", "delete_requested")
    dispose(box, mailbox, {refs_by_id[i]: (i, o, d) for i, o, d in rows})


def _dry_process(run: ProcessingRun, processor: Processor, mailbox: Mailbox, batch: list[_Fetched]) -> None:
    """Store and process in a transaction that is rolled back: counts only, no changes."""
    with transaction.atomic():
        ids = _store(mailbox, run, batch)
        items = [processor.parse(ids[f.ref.key], f.raw) for f in batch if f.ref.key in ids]
        _dry_process_items(run, processor, items)
        transaction.set_rollback(True)


def _dry_process_items(run: ProcessingRun, processor: Processor, items: list[Item]) -> None:
    """Process `items` in a transaction that is rolled back: counts only, no changes."""
    with transaction.atomic():
        outcome = processor.process(items)
        transaction.set_rollback(True)
    add_counts(run, outcome.counts)
