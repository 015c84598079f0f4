"""MTA accounting into the intake: files read by `import_accounting`, records pushed over HTTP.

PowerMTA CSV accounting and Postfix / Exim log files are read from where the last import
stopped (`AccountingFile`: device, inode and byte offset, so a rotated file starts over);
every record becomes a structured notice keyed by its hash, so a record read twice — from
the file again, or once from the file and once pushed by Logstash — is stored and counted
once. Records pushed over HTTP come as CSV (the header line first, or remembered from an
earlier push of the same integration), JSON (an object, an array, or JSON lines) or
plain Postfix / Exim log lines.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import AccountingFile, Integration, ProcessingRun, RawMessage
from .mta_logs import (
    AccountingReader,
    MessageIds,
    accounting_notice,
    line_key,
    log_line_notice,
    record_hash,
)
from .notices import Notice, Stored, process_notices, receive_notices, store_notices

#: Records stored (and committed, with the file offset) per transaction.
IMPORT_BATCH = 1000
MAX_PUSH_RECORDS = 50_000


class BadPayload(ValueError):
    """A pushed body we cannot read (the message is safe to show to the sender)."""


@dataclass
class ImportReport:
    records: int = 0
    notices: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    counts: dict = field(default_factory=dict)

    def add(self, stored: Stored) -> None:
        self.stored += len(stored.new_ids)
        self.duplicates += stored.duplicates


def _options() -> dict:
    return {"tracking_header": settings.BOUNCE_TRACKING_HEADER, "verp_prefix": settings.BOUNCE_LOCAL_PART}


def record_notice(record: dict[str, str]) -> Notice | None:
    """The intake notice of one PowerMTA accounting record (None: a type we skip)."""
    notice = accounting_notice(record, **_options())
    if notice is None:
        return None
    return Notice.structured(source=RawMessage.Source.MTA_LOG, key="pmta:" + record_hash(record), notice=notice)


def line_notice(line: str, ids: MessageIds | None) -> Notice | None:
    """The intake notice of one Postfix / Exim log line (None: not a permanent failure)."""
    notice = log_line_notice(line, ids)
    if notice is None:
        return None
    return Notice.structured(source=RawMessage.Source.MTA_LOG, key=f"{notice.source}:{line_key(line)}", notice=notice)


# --------------------------------------------------------------------------- files
def _is_csv_header(first: bytes) -> bool:
    return first.startswith(b"type,") or first.startswith(b'"type",')


def import_accounting_file(*, path: str, run: ProcessingRun | None = None, process: bool = True,
                           batch_size: int = IMPORT_BATCH) -> ImportReport:
    """Read `path` from where the last import stopped; store its bounce records as notices
    (each batch committed together with the new offset) and process them."""
    report = ImportReport()
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        state, _ = AccountingFile.objects.get_or_create(device=st.st_dev, inode=st.st_ino, path=os.path.abspath(path))
        if st.st_size < state.offset:  # truncated in place: read it again (hashes dedupe)
            state.offset, state.header = 0, []
        first = fh.readline(4096)
        fh.seek(0)
        if state.header or _is_csv_header(first):
            batches = _csv_batches(fh, state, batch_size, report)
        else:
            batches = _log_batches(fh, state, batch_size, report)
        for notices, offset, header in batches:
            with transaction.atomic():
                stored = store_notices(notices=notices, run=run)
                AccountingFile.objects.filter(pk=state.pk).update(
                    offset=offset, header=header, records=F("records") + len(notices), updated_at=timezone.now())
            report.add(stored)
            if process and stored.new_ids:
                counts = process_notices(ids=stored.new_ids, run=run,
                                         actor_label=f"accounting import {os.path.basename(path)}")
                for k, v in counts.items():
                    report.counts[k] = report.counts.get(k, 0) + v
    return report


def _csv_batches(fh, state: AccountingFile, batch_size: int, report: ImportReport
                 ) -> Iterator[tuple[list[Notice], int, list[str]]]:
    reader = AccountingReader(header=list(state.header) or None)
    notices: list[Notice] = []
    offset = state.offset
    for offset, record in reader.records(fh, state.offset):
        report.records += 1
        notice = record_notice(record)
        if notice is None:
            report.skipped += 1
            continue
        notices.append(notice)
        report.notices += 1
        if len(notices) >= batch_size:
            yield notices, offset, reader.header or []
            notices = []
    if notices or offset != state.offset:
        yield notices, offset, reader.header or []


def _log_batches(fh, state: AccountingFile, batch_size: int, report: ImportReport
                 ) -> Iterator[tuple[list[Notice], int, list[str]]]:
    ids = MessageIds()
    fh.seek(state.offset)
    offset = state.offset
    notices: list[Notice] = []
    for raw in iter(fh.readline, b""):
        if not raw.endswith(b"\n"):
            break  # the MTA is still writing this line
        offset += len(raw)
        report.records += 1
        notice = line_notice(raw.decode("utf-8", "replace"), ids)
        if notice is None:
            report.skipped += 1
            continue
        notices.append(notice)
        report.notices += 1
        if len(notices) >= batch_size:
            yield notices, offset, []
            notices = []
    if notices or offset != state.offset:
        yield notices, offset, []


# --------------------------------------------------------------------------- HTTP push
def authenticate(token: str) -> Integration | None:
    """The enabled integration this token belongs to, or None."""
    from ..models import token_digest

    if not token or len(token) > 200:
        return None
    return Integration.objects.filter(token_digest=token_digest(token), enabled=True).first()


def receive_pushed(*, integration: Integration, body: bytes, content_type: str) -> ImportReport:
    """Store (and queue for processing) the records of one pushed body."""
    report = ImportReport()
    content_type = (content_type or "").split(";", 1)[0].strip().lower()
    text = body.decode("utf-8", "replace")
    notices: list[Notice] = []
    if content_type in ("text/csv", "application/csv"):
        notices = _pushed_csv(integration, text, report)
    elif content_type == "text/plain":
        ids = MessageIds()
        for line in text.splitlines():
            report.records += 1
            n = line_notice(line, ids)
            if n is None:
                report.skipped += 1
            else:
                notices.append(n)
    else:  # application/json, application/x-ndjson, ...
        for record in _json_records(text):
            report.records += 1
            n = record_notice(record)
            if n is None:
                report.skipped += 1
            else:
                notices.append(n)
    if report.records > MAX_PUSH_RECORDS:
        raise BadPayload(f"at most {MAX_PUSH_RECORDS} records per request")
    report.notices = len(notices)
    report.add(receive_notices(notices=notices, process="queue"))
    Integration.objects.filter(pk=integration.pk).update(
        records_received=F("records_received") + report.records, last_used_at=timezone.now())
    return report


def _pushed_csv(integration: Integration, text: str, report: ImportReport) -> list[Notice]:
    header = list(integration.csv_header) or None
    reader = AccountingReader(header=header)
    notices: list[Notice] = []
    data = text if text.endswith("\n") else text + "\n"
    for _, record in reader.records(io.BytesIO(data.encode("utf-8"))):
        report.records += 1
        n = record_notice(record)
        if n is None:
            report.skipped += 1
        else:
            notices.append(n)
    if reader.header is None and reader.orphans:
        raise BadPayload("CSV records without a header line: send the file's first line (type,...) first")
    if reader.header is not None and reader.header != header:
        Integration.objects.filter(pk=integration.pk).update(csv_header=reader.header)
    return notices


def _json_records(text: str) -> Iterable[dict[str, str]]:
    stripped = text.strip()
    if not stripped:
        return []
    try:
        doc = json.loads(stripped)
        docs = doc if isinstance(doc, list) else [doc]
    except ValueError:
        docs = []
        for n, line in enumerate(stripped.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except ValueError as exc:
                raise BadPayload(f"line {n} is not JSON") from exc
    records = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise BadPayload("each record must be a JSON object")
        # Logstash's csv filter may nest the fields; take a flat record either way.
        doc = doc.get("record", doc) if isinstance(doc.get("record"), dict) else doc
        records.append({str(k)[:200]: ("" if v is None else str(v))[:8000] for k, v in list(doc.items())[:200]
                        if not str(k).startswith("@")})
    return records
