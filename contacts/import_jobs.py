"""CSV imports from the upload page: the file is stored first, then imported by a job.

A job is three files in CONTACTS_IMPORT_DIR (default var/imports, private like the rest of
var/; web and worker must share it): `<id>.csv` the upload (deleted when the job ends),
`<id>.json` its state (status, bytes read of the size, counts, the first rejected rows;
rewritten after each chunk by an atomic rename, so the progress page always reads a whole
file) and `<id>.report.csv` every row not simply created, with its line number. Small
files are imported inside the request (run_import_job), larger ones by the Celery task
`contacts.import_contacts_file`, sent by name after commit. `<id>` is 32 random hex digits.
Jobs older than CONTACTS_IMPORT_KEEP_DAYS (7) are deleted when a new one starts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.utils import timezone

from bouncemgr.queue import send_task_on_commit

from .importing import (
    ImportFileError,
    ImportReport,
    Outcome,
    RowResult,
    csv_cell,
    import_contacts,
    open_text,
)
from .models import MailingList

logger = logging.getLogger(__name__)

DEFAULT_INLINE_MAX_BYTES = 256 * 1024  # about 6,000 rows of "address,name": ~2 s in the request
SHOWN_ROWS = 1000  # rejected rows kept in the state for the page; all are in the report file
STALE_AFTER = dt.timedelta(minutes=10)  # a running job not updated for this long was lost


class Status:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def import_dir() -> Path:
    path = Path(getattr(settings, "CONTACTS_IMPORT_DIR", "") or Path(settings.VAR_DIR) / "imports")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def inline_max_bytes() -> int:
    """CONTACTS_IMPORT_INLINE_MAX_BYTES: files up to this size are imported in the request."""
    return int(getattr(settings, "CONTACTS_IMPORT_INLINE_MAX_BYTES", DEFAULT_INLINE_MAX_BYTES))


def _valid_id(job_id: str) -> bool:
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)


def _paths(job_id: str) -> tuple[Path, Path, Path]:
    if not _valid_id(job_id):
        raise ValueError("not an import job id")
    base = import_dir()
    return base / f"{job_id}.csv", base / f"{job_id}.json", base / f"{job_id}.report.csv"


@dataclass
class ImportJob:
    """The state of one import, as stored in `<id>.json`."""

    id: str
    status: str
    user_id: int | None
    file_name: str
    size: int
    list_id: int | None
    new_list: str
    update_names: bool
    created_at: str
    updated_at: str = ""
    bytes_read: int = 0
    rows: int = 0
    counts: dict | None = None
    rejected: int = 0
    imported: int = 0
    shown: list | None = None  # [line, email, outcome, detail] of the first rejected rows
    list_name: str = ""
    list_created: bool = False
    delimiter: str = ""
    encoding: str = ""
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status in (Status.DONE, Status.FAILED)

    @property
    def percent(self) -> int:
        if self.status == Status.DONE:
            return 100
        return min(99, int(100 * self.bytes_read / self.size)) if self.size else 0

    @property
    def delimiter_label(self) -> str:
        return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(self.delimiter, self.delimiter)

    @property
    def nonzero_counts(self) -> list[tuple[str, int]]:
        return [(outcome, n) for outcome, n in (self.counts or {}).items() if n]


def _save(job: ImportJob) -> None:
    job.updated_at = timezone.now().isoformat()
    _, state, _ = _paths(job.id)
    tmp = state.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(job.__dict__, out)
    os.replace(tmp, state)


def load_job(job_id: str) -> ImportJob | None:
    """The job's state, or None for an unknown or malformed id."""
    if not _valid_id(job_id):
        return None
    try:
        data = json.loads(_paths(job_id)[1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ImportJob(**data)


def report_path(job: ImportJob) -> Path:
    return _paths(job.id)[2]


def start_import_job(*, upload, mailing_list: MailingList | None, new_list: str, update_names: bool,
                     user) -> ImportJob:
    """Store the uploaded file (chunk by chunk) and its job state; returns the queued job.

    Run it with run_import_job (small files, in the request) or queue_import_job.
    """
    _delete_old_jobs()
    job = ImportJob(
        id=secrets.token_hex(16), status=Status.QUEUED, user_id=getattr(user, "pk", None),
        file_name=os.path.basename(upload.name or "upload.csv")[:200], size=upload.size or 0,
        list_id=mailing_list.pk if mailing_list else None, new_list=new_list,
        update_names=update_names, created_at=timezone.now().isoformat(),
        list_name=mailing_list.name if mailing_list else new_list,
    )
    data, _, _ = _paths(job.id)
    fd = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for piece in upload.chunks():
            out.write(piece)
    _save(job)
    return job


def queue_import_job(job: ImportJob) -> None:
    """Import in the background: the task `contacts.import_contacts_file`, after commit."""
    send_task_on_commit("contacts.import_contacts_file", job.id)


class _Counting:
    """Counts the bytes the text layer has read from the stored file (the progress bar)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.bytes_read = 0

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.bytes_read += n or 0
        return n


def run_import_job(job_id: str, *, actor=None) -> ImportJob | None:
    """Import a stored upload; safe to run twice (a job already running, done or failed is
    left alone, unless it stopped being updated STALE_AFTER ago: its worker was lost).

    The job's state is rewritten after each chunk (bytes read, counts) for the progress
    page; every row not simply created goes to the report file with its line number. A
    new list is created only when a row is imported into it.
    """
    job = load_job(job_id)
    if job is None or job.status in (Status.DONE, Status.FAILED):
        return job
    if not _claim(job):
        return job  # another run has it
    try:
        return _run(job, actor=actor)
    finally:
        _lock(job.id).unlink(missing_ok=True)


def _lock(job_id: str) -> Path:
    return import_dir() / f"{job_id}.lock"


def _claim(job: ImportJob) -> bool:
    """Create the job's lock file (O_EXCL: one run at a time); a lock of a job whose state
    was not updated for STALE_AFTER is taken over (its worker was lost)."""
    lock = _lock(job.id)
    for _ in range(2):
        try:
            os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return True
        except FileExistsError:
            if not _stale(job):
                return False
            lock.unlink(missing_ok=True)
    return False


def _run(job: ImportJob, *, actor) -> ImportJob:
    data, _, report_file = _paths(job.id)
    if not data.exists():
        return _fail(job, "The uploaded file is gone (an earlier run ended); upload it again.")
    job.status = Status.RUNNING
    _save(job)
    mailing_list = None
    if job.list_id is not None:
        mailing_list = MailingList.objects.filter(pk=job.list_id).first()
        if mailing_list is None:
            return _fail(job, "The mailing list was deleted before the import ran.")
    else:
        mailing_list = MailingList.objects.filter(name=job.new_list).first() or MailingList(name=job.new_list)
    shown: list[list] = []
    started = time.monotonic()
    try:
        with open(data, "rb") as raw, open(report_file, "w", newline="", encoding="utf-8") as out:
            os.chmod(report_file, 0o600)
            writer = csv.writer(out)
            writer.writerow(["line", "email", "outcome", "detail"])
            counting = _Counting(raw)
            stream = open_text(counting)  # type: ignore[arg-type]
            counting.bytes_read = 0  # sniffing the encoding read the file once
            job.encoding = stream.encoding

            def on_row(row: RowResult) -> None:
                if row.outcome == Outcome.CREATED:
                    return
                writer.writerow([row.line, csv_cell(row.email), row.outcome, csv_cell(row.detail)])
                if row.outcome in Outcome.REJECTED and len(shown) < SHOWN_ROWS:
                    shown.append([row.line, row.email, row.outcome, row.detail])

            def on_chunk(report: ImportReport) -> None:
                _progress(job, report, counting.bytes_read, shown)
                _save(job)

            report = import_contacts(
                stream=stream, mailing_list=mailing_list, update_names=job.update_names, actor=actor,
                actor_label=f"CSV upload {job.file_name}"[:200], on_row=on_row, on_chunk=on_chunk, keep_rows=0,
            )
    except ImportFileError as exc:
        return _fail(job, f"{exc} Nothing was imported.")
    except Exception:
        logger.exception("contact import %s failed", job.id)
        _fail(job, "The import stopped on an internal error; what was imported before it stays "
                   "(run the same file again to finish: present rows show as kept).")
        raise
    finally:
        data.unlink(missing_ok=True)
    _progress(job, report, job.size, shown)
    job.list_id = mailing_list.pk
    job.list_created = report.list_created
    job.status = Status.DONE
    _save(job)
    logger.info("contact import %s: %s rows in %.1f s", job.id, report.rows, time.monotonic() - started)
    return job


def _progress(job: ImportJob, report: ImportReport, bytes_read: int, shown: list) -> None:
    job.bytes_read = min(bytes_read, job.size)
    job.rows = report.rows
    job.counts = dict(report.counts)
    job.rejected = report.rejected
    job.imported = report.imported
    job.shown = shown
    job.delimiter = report.delimiter


def _fail(job: ImportJob, error: str) -> ImportJob:
    job.status, job.error = Status.FAILED, error
    _save(job)
    return job


def _stale(job: ImportJob) -> bool:
    try:
        updated = dt.datetime.fromisoformat(job.updated_at)
    except ValueError:
        return True
    return timezone.now() - updated > STALE_AFTER


def _delete_old_jobs() -> None:
    keep = dt.timedelta(days=int(getattr(settings, "CONTACTS_IMPORT_KEEP_DAYS", 7)))
    cutoff = time.time() - keep.total_seconds()
    for path in import_dir().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue
