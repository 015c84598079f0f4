"""One intake: a notice arrived. Store it durably first, then hand it to the pipeline.

Every way a bounce reaches us ends here:

==================  ====================  ==============================================
source              stored as             idempotency key (unique per source)
==================  ====================  ==============================================
mailbox             the message bytes     IMAP "<uidvalidity>:<uid>", POP3 UIDL, file key
SMTP receiver       the message bytes     "smtpd:" + SHA-256 of envelope and bytes
MTA accounting      structured notice     "pmta:" + record hash, "postfix:"/"exim:" + line hash
ESP webhook         structured notice     "esp:<ESP>:<event id>:<recipient>"
send-time refusal   structured notice     "smtp:<send token>:<reply code>"
==================  ====================  ==============================================

`store_notices` inserts the rows in one transaction (insert-ignore on the unique key: a
notice that arrives twice is stored once) and returns with them committed.
`process_notices` turns stored rows into pipeline items — mail through the engine,
structured notices through `structured.to_parse_result` (the engine's classifier) — and
runs the one `Processor` (rules, matching, decisions, contact actions, one transaction
per batch; its claim lets each row be processed, and counted, once). `receive_notices`
does both: store, then process now or queue a Celery task on commit. Rows that are
stored but never processed (a worker died, the queue was lost) are picked up by the
beat sweep (`sweep_notices_task`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from hashlib import sha256

from django.db import connection, transaction
from django.utils import timezone

from bouncemgr.queue import send_task

from ..models import Mailbox, ProcessingRun, RawMessage
from ..pipeline import policies
from ..pipeline.runs import add_counts, chunked, create_run
from .items import notice_items
from .stored import (
    MAX_ATTEMPTS,
    chunk_size,
    finish_stale_runs,
    new_processor,
    not_busy,
    start_chunked_run,
)
from .structured import StructuredNotice

log = logging.getLogger(__name__)

#: Sources whose rows the intake processes by itself (mailbox rows also need their
#: disposition on the server, so the mailbox run processes them).
PUSHED_SOURCES = ("smtpd", "mta_log", "webhook", "smtp", "upload")


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice to store: its source, its idempotency key and its bytes."""

    source: str
    key: str
    raw: bytes
    mailbox_id: int | None = None

    @classmethod
    def mail(cls, *, source: str, raw: bytes, key: str | None = None, mailbox_id: int | None = None) -> Notice:
        """Mail bytes; without a key, the SHA-256 of the bytes is the key."""
        return cls(source=source, key=(key or "sha256:" + sha256(raw).hexdigest())[:255], raw=raw,
                   mailbox_id=mailbox_id)

    @classmethod
    def structured(cls, *, source: str, key: str, notice: StructuredNotice) -> Notice:
        return cls(source=source, key=key[:255], raw=notice.to_payload())


@dataclass
class Stored:
    """What `store_notices` did: the row id of every key, and which rows are new."""

    ids: dict[str, int] = field(default_factory=dict)
    new_ids: list[int] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return len(self.ids) - len(self.new_ids)


def store_notices(*, notices: Sequence[Notice], run: ProcessingRun | None = None) -> Stored:
    """Store `notices` of one mailbox, or of none (insert-ignore on (mailbox, key)); committed when this returns,
    unless called inside the caller's transaction. A key already stored is not stored
    again; its existing row id is returned, and it is not in `new_ids`.

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING` per 200 rows (the SMTP receiver's
    answer waits for it: one round trip and the commit), then a look-up of the keys that
    were already there.
    """
    stored = Stored()
    if not notices:
        return stored
    if len({n.mailbox_id for n in notices}) > 1:
        raise ValueError("store_notices takes the notices of one mailbox (or of none) per call")
    unique: dict[str, Notice] = {}
    for n in notices:
        unique.setdefault(n.key, n)
    rows = list(unique.values())
    if len(rows) <= _CHUNK and not connection.in_atomic_block:
        # One statement is its own transaction: the insert and its commit in one round trip
        # (the SMTP receiver answers 250 after this returns).
        _store_chunk(rows, run, stored)
        return stored
    with transaction.atomic():
        for chunk in chunked(rows, _CHUNK):
            _store_chunk(chunk, run, stored)
    return stored


_CHUNK = 200


def _store_chunk(chunk: list[Notice], run: ProcessingRun | None, stored: Stored) -> None:
    got = _insert_returning(chunk, run)
    stored.new_ids += list(got.values())
    stored.ids.update(got)
    keys = [n.key for n in chunk if n.key not in got]
    if keys:
        stored.ids.update(_ids_of(chunk[0].mailbox_id, keys))


_INSERT_FIELDS = ("mailbox_id", "source", "dedupe_key", "sha256", "raw", "size", "state", "disposed", "outcome",
                  "delete_requested", "claim", "run_id", "error", "attempts", "received_at")


def _insert_returning(chunk: list[Notice], run: ProcessingRun | None) -> dict[str, int]:
    """INSERT the rows, skipping conflicts; key -> id of the rows inserted now."""
    if connection.vendor == "postgresql":
        return _insert_returning_pg(chunk, run)
    opts = RawMessage._meta
    quote = connection.ops.quote_name
    fields = [opts.get_field(name.removesuffix("_id")) if name.endswith("_id") else opts.get_field(name)
              for name in _INSERT_FIELDS]
    now = timezone.now()
    received = RawMessage._meta.get_field("received_at").get_db_prep_save(now, connection)
    raw_field = opts.get_field("raw")
    params: list = []
    for n in chunk:
        params += [n.mailbox_id, n.source, n.key, sha256(n.raw).hexdigest(),
                   raw_field.get_db_prep_save(n.raw, connection), len(n.raw), RawMessage.State.NEW.value, False, "",
                   False, "", run.pk if run else None, "", 0, received]
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES {', '.join([row] * len(chunk))} "
           f"ON CONFLICT DO NOTHING RETURNING {quote('id')}, {quote('dedupe_key')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: pk for pk, key in cursor.fetchall()}


_PG_INSERT_SQL: list[str] = []


def _pg_insert_sql() -> str:
    """One statement text for any number of rows (the varying columns come as arrays), so
    psycopg converts it once per process instead of parsing thousands of placeholders per
    call: most of the receiver's and the mailbox store's client CPU (issues 11, 16)."""
    if not _PG_INSERT_SQL:
        opts = RawMessage._meta
        quote = connection.ops.quote_name
        columns = ", ".join(quote(opts.get_field(name.removesuffix("_id") if name.endswith("_id") else name).column)
                            for name in _INSERT_FIELDS)
        _PG_INSERT_SQL.append(
            f"INSERT INTO {quote(opts.db_table)} ({columns}) "
            "SELECT %s::bigint, u.source, u.dedupe_key, u.sha256, u.raw, u.size, %s, false, '', false, '', "
            "%s::bigint, '', 0, %s::timestamptz "
            "FROM unnest(%s::text[], %s::text[], %s::text[], %b::bytea[], %s::integer[]) "
            "AS u(source, dedupe_key, sha256, raw, size), "
            # Durable whatever the server's synchronous_commit (raised from off only, for this
            # transaction): the receiver answers 250, a webhook 200, once this has committed.
            "(SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit') "
            "WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, true)) AS durable "
            f"ON CONFLICT DO NOTHING RETURNING {quote('id')}, {quote('dedupe_key')}")
    return _PG_INSERT_SQL[0]


def _insert_returning_pg(chunk: list[Notice], run: ProcessingRun | None) -> dict[str, int]:
    """PostgreSQL: the same INSERT ... ON CONFLICT DO NOTHING RETURNING, rows as arrays, with
    server-side binding (parameters, the raw bytes, adapted in C, not rendered into SQL text
    in Python by Django's client cursor; see contacts.services.executemany)."""
    import psycopg

    params = [chunk[0].mailbox_id, RawMessage.State.NEW.value, run.pk if run else None, timezone.now(),
              [n.source for n in chunk], [n.key for n in chunk], [sha256(n.raw).hexdigest() for n in chunk],
              [bytes(n.raw) for n in chunk], [len(n.raw) for n in chunk]]
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_pg_insert_sql(), params)
        return {key: pk for pk, key in cursor.fetchall()}


def _ids_of(mailbox_id: int | None, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunked(keys, 900):
        qs = RawMessage.objects.filter(dedupe_key__in=chunk)
        qs = qs.filter(mailbox_id=mailbox_id) if mailbox_id is not None else qs.filter(mailbox__isnull=True).exclude(
            source=RawMessage.Source.MAILBOX)
        found.update((key, pk) for pk, key in qs.values_list("id", "dedupe_key"))
    return found


def receive_notices(*, notices: Sequence[Notice], process: str = "queue", actor_label: str = "intake") -> Stored:
    """The entry point for notices pushed to us: store (committed), then process.

    `process`: "now" (in this call, e.g. a send-time refusal the caller waits for),
    "queue" (a Celery task queued when the storing transaction commits; the beat sweep
    catches what the queue loses) or "later" (the sweep only).
    """
    stored = store_notices(notices=notices)
    if stored.new_ids:
        if process == "now":
            process_notices(ids=stored.new_ids, actor_label=actor_label)
        elif process == "queue":
            queue_processing(stored.new_ids)
    return stored


def queue_processing(ids: list[int]) -> None:
    """Queue the processing of stored rows once the current transaction commits: one task
    `bounces.intake.process_notices` per PROCESSING_CHUNK_SIZE rows, so a large push (an
    accounting file, a webhook batch) is shared by the workers; if the broker is down, the
    beat sweep catches up."""
    transaction.on_commit(partial(_send, [int(i) for i in ids]))


def _send(ids: list[int]) -> None:
    for chunk in chunked(ids, chunk_size()):
        try:
            send_task("bounces.intake.process_notices", chunk)
        except Exception:  # the broker is down: the beat sweep processes the rows later
            log.exception("queueing the processing of %d stored notices failed", len(chunk))
            return


# --------------------------------------------------------------------------- processing
def process_notices(*, ids: Sequence[int] | None = None, mailbox: Mailbox | None = None,
                    run: ProcessingRun | None = None, batch_size: int = 500, limit: int | None = None,
                    sources: Sequence[str] | None = None, actor_label: str = "") -> dict:
    """Process stored rows that are new or failed, in batches (one transaction each).

    `ids` limits the work to those rows (a task queued by `receive_notices`); otherwise
    every pending row (of `mailbox`, or of `sources`) is taken, oldest first. Safe to run
    concurrently with anything: each batch claims its rows, and a row another processor
    claimed is skipped. Returns the counts.
    """
    qs = RawMessage.objects.filter(state__in=[RawMessage.State.NEW, RawMessage.State.FAILED],
                                   attempts__lt=MAX_ATTEMPTS)
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    if mailbox is not None:
        qs = qs.filter(mailbox=mailbox)
    if sources is not None:
        qs = qs.filter(source__in=list(sources))
    pending = list(qs.order_by("id").values_list("id", flat=True)[:limit])
    totals: dict = {"processed": 0, "errors": 0}
    if not pending:
        return totals
    processor = new_processor(run=run, mailbox=mailbox, policy=policies.effective_policy(mailbox),
                              actor_label=actor_label)
    for chunk in chunked(pending, batch_size):
        rows = RawMessage.objects.filter(id__in=chunk).order_by("id").values_list("id", "raw")
        items = notice_items(processor, rows)
        try:
            outcome = processor.process(items)
        except Exception as exc:
            log.exception("processing %d stored notices failed", len(items))
            processor.mark_failed(chunk, f"{type(exc).__name__}: {exc}")
            totals["errors"] += 1
            if run is not None:
                run.errors += 1
            continue
        for name, n in outcome.counts.items():
            totals[name] = totals.get(name, 0) + n
        totals["processed"] += len(outcome.processed_ids)
        if run is not None:
            add_counts(run, outcome.counts)
            run.processed += len(outcome.processed_ids)
    return totals


def sweep_notices(*, batch_size: int = 500, limit: int | None = 50_000, spread: bool = False,
                  size: int | None = None) -> ProcessingRun | None:
    """Process every pushed notice still waiting (the beat backstop) as one run in chunks
    (`stored.start_chunked_run`: spread over the workers, or here one after another); a run
    records it when there was anything to do. Rows in an open chunk of a running run are left
    to it; chunked runs gone stale are ended first (`stored.finish_stale_runs`)."""
    finish_stale_runs()
    waiting = RawMessage.objects.filter(state__in=[RawMessage.State.NEW, RawMessage.State.FAILED],
                                        attempts__lt=MAX_ATTEMPTS, source__in=PUSHED_SOURCES)
    if not waiting.exists():
        return None
    ids = not_busy(waiting, limit)
    if not ids:
        return None
    run = create_run(mailbox=None, trigger=ProcessingRun.Trigger.INTAKE)
    return start_chunked_run(run=run, ids=ids, batch_size=batch_size, spread=spread, size=size)
