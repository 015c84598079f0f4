"""Import contacts from CSV into a mailing list, with a report of every row not imported.

The file is read as a stream, a chunk of rows at a time (a few queries per chunk, not
per row), so a file of millions of rows runs in constant memory apart from the set of
addresses already seen (for duplicates within the file).

Each row ends in exactly one outcome (ImportOutcome): created, or already present and
then either updated (name filled in or changed), subscribed (added to the list) or kept
(nothing to do); or rejected: invalid address, duplicate of an earlier row, suppressed
address or domain, contact blacklisted/unsubscribed, unsubscribed from this list, or
an empty row. Nothing is silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from .models import Contact, ContactEvent, MailingList, Subscription

EMAIL_COLUMNS = ("email", "e-mail", "email address", "email_address", "address", "mail")
NAME_COLUMNS = ("name", "full name", "full_name", "fullname", "display name")
CHUNK_SIZE = 1000


class Outcome:
    """What happened to one row (the values appear in reports and CSV exports)."""

    CREATED = "created"
    UPDATED = "already present: updated"
    SUBSCRIBED = "already present: added to the list"
    KEPT = "already present: kept"
    INVALID = "rejected: invalid address"
    DUPLICATE = "rejected: duplicate of an earlier row"
    SUPPRESSED = "rejected: suppressed"
    CONTACT_BLOCKED = "rejected: contact is blacklisted or unsubscribed"
    LIST_UNSUBSCRIBED = "rejected: unsubscribed from this list"
    EMPTY = "rejected: empty row"

    REJECTED = (INVALID, DUPLICATE, SUPPRESSED, CONTACT_BLOCKED, LIST_UNSUBSCRIBED, EMPTY)
    ALL = (CREATED, UPDATED, SUBSCRIBED, KEPT, *REJECTED)


class ImportFileError(Exception):
    """The file cannot be read as CSV with an email column."""


@dataclass(frozen=True)
class RowResult:
    """The outcome of one data row (line = line number in the file, 1-based)."""

    line: int
    email: str
    outcome: str
    detail: str = ""


@dataclass
class ImportReport:
    """Counts per outcome and the rows that were not simply created."""

    mailing_list: str
    rows: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Outcome.ALL, 0))
    notable: list[RowResult] = field(default_factory=list)  # every row but "created", up to keep_rows
    notable_dropped: int = 0
    keep_rows: int = 10_000

    def add(self, result: RowResult) -> None:
        self.counts[result.outcome] += 1
        if result.outcome == Outcome.CREATED:
            return
        if len(self.notable) < self.keep_rows:
            self.notable.append(result)
        else:
            self.notable_dropped += 1

    @property
    def rejected(self) -> int:
        return sum(self.counts[o] for o in Outcome.REJECTED)

    @property
    def rejected_rows(self) -> list[RowResult]:
        return [r for r in self.notable if r.outcome in Outcome.REJECTED]

    def summary(self) -> str:
        """One line per non-zero outcome."""
        lines = [f"{self.rows} rows read for list {self.mailing_list!r}"]
        lines += [f"  {outcome}: {n}" for outcome, n in self.counts.items() if n]
        return "\n".join(lines)


def _norm_header(value: str) -> str:
    return value.strip().lower().replace("\ufeff", "")


def _read_rows(stream: IO[str]) -> Iterator[tuple[int, str, str]]:
    """(line, email, name) for each data row; the header is optional.

    With a header, the email column is the first named like EMAIL_COLUMNS, the name
    the first named like NAME_COLUMNS. Without one, column 1 is the email, column 2 the name.
    """
    reader = csv.reader(stream)
    try:
        first = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ImportFileError(f"Not a CSV file: {exc}") from exc
    header = [_norm_header(c) for c in first]
    email_col = next((header.index(c) for c in EMAIL_COLUMNS if c in header), None)
    if email_col is not None:
        name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
        pending: list[list[str]] = []
    else:
        if first and "@" not in "".join(first) and any(first):
            raise ImportFileError(
                f"No email column: the header {first!r} names none of {', '.join(EMAIL_COLUMNS)}."
            )
        email_col, name_col = 0, 1
        pending = [first]

    def cells() -> Iterator[list[str]]:
        yield from pending
        yield from reader

    try:
        for row in cells():
            line = reader.line_num
            email = row[email_col].strip() if len(row) > email_col else ""
            name = row[name_col].strip() if name_col is not None and len(row) > name_col else ""
            if not any(c.strip() for c in row):
                email = ""
            yield line, email, name[:200]
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num}: {exc}") from exc


def _fingerprint(address: str) -> bytes:
    # 8-byte digests keep the "seen" set small for files of millions of rows.
    return hashlib.blake2b(address.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _chunks(items: Iterable[tuple[int, str, str]], size: int) -> Iterator[list[tuple[int, str, str]]]:
    chunk: list[tuple[int, str, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_contacts(
    *,
    stream: IO[str],
    mailing_list: MailingList,
    update_names: bool = True,
    actor=None,
    actor_label: str = "",
    chunk_size: int = CHUNK_SIZE,
    on_row: Callable[[RowResult], None] | None = None,
    keep_rows: int = 10_000,
) -> ImportReport:
    """Import a CSV text stream into `mailing_list` and report what happened to each row.

    New valid addresses become active contacts subscribed to the list (ContactEvent
    "import"); an existing contact (matched regardless of case) is added to the list
    unless it unsubscribed from it, and its name is filled in or changed when
    `update_names`. The report keeps up to `keep_rows` notable rows (all are counted). Suppressed addresses and domains are rejected. One transaction per
    chunk: an import stopped half-way can simply be run again. `on_row` sees every row.
    """
    from campaigns.selectors import suppressed_among

    report = ImportReport(mailing_list=mailing_list.name, keep_rows=keep_rows)
    seen: set[bytes] = set()
    label = actor_label or "CSV import"
    for chunk in _chunks(_read_rows(stream), chunk_size):
        results = _import_chunk(
            chunk=chunk, mailing_list=mailing_list, seen=seen, update_names=update_names,
            actor=actor, actor_label=label, suppressed_among=suppressed_among,
        )
        for result in results:
            report.rows += 1
            report.add(result)
            if on_row is not None:
                on_row(result)
    return report


def _import_chunk(*, chunk, mailing_list, seen, update_names, actor, actor_label, suppressed_among
                  ) -> list[RowResult]:
    results: dict[int, RowResult] = {}
    valid: list[tuple[int, str, str]] = []
    for line, email, name in chunk:
        if not email:
            results[line] = RowResult(line, email, Outcome.EMPTY)
            continue
        try:
            if len(email) > 254:  # RFC 5321 path limit, and Contact.email's column
                raise ValidationError("too long")
            validate_email(email)
        except ValidationError:
            results[line] = RowResult(line, email, Outcome.INVALID)
            continue
        fp = _fingerprint(email.lower())
        if fp in seen:
            results[line] = RowResult(line, email, Outcome.DUPLICATE, "the address appears earlier in the file")
            continue
        seen.add(fp)
        valid.append((line, email, name))

    suppressed = suppressed_among(email for _, email, _ in valid)
    keep: list[tuple[int, str, str]] = []
    for line, email, name in valid:
        hit = suppressed.get(email.lower())
        if hit is not None:
            results[line] = RowResult(line, email, Outcome.SUPPRESSED, f"{hit.get_kind_display().lower()} "
                                      f"{hit.value} ({hit.get_reason_display().lower()})")
        else:
            keep.append((line, email, name))

    with transaction.atomic():
        lowered = [email.lower() for _, email, _ in keep]
        existing = {
            c.email_lower: c
            # email <> '' lets the partial index contact_email_ci_unique serve the lookup
            for c in Contact.objects.exclude(email="").annotate(email_lower=Lower("email"))
            .filter(email_lower__in=lowered)
        }
        subs = dict(
            Subscription.objects.filter(
                mailing_list=mailing_list, contact__in=list(existing.values())
            ).values_list("contact_id", "status")
        )
        new_contacts: list[tuple[int, Contact]] = []
        to_subscribe: list[Contact] = []
        renamed: list[Contact] = []
        for line, email, name in keep:
            contact = existing.get(email.lower())
            if contact is None:
                new_contacts.append((line, Contact(email=email, name=name)))
                continue
            if contact.status in (Contact.Status.BLACKLISTED, Contact.Status.UNSUBSCRIBED):
                results[line] = RowResult(line, email, Outcome.CONTACT_BLOCKED,
                                          f"contact #{contact.pk} is {contact.get_status_display().lower()}")
                continue
            sub_status = subs.get(contact.pk)
            if sub_status == Subscription.Status.UNSUBSCRIBED:
                results[line] = RowResult(line, email, Outcome.LIST_UNSUBSCRIBED, f"contact #{contact.pk}")
                continue
            changed = update_names and name and name != contact.name
            if changed:
                old = contact.name
                contact.name = name
                renamed.append(contact)
                outcome, detail = Outcome.UPDATED, f"contact #{contact.pk}: name {old!r} -> {name!r}"
            elif sub_status is None:
                outcome, detail = Outcome.SUBSCRIBED, f"contact #{contact.pk}"
            else:
                outcome, detail = Outcome.KEPT, f"contact #{contact.pk} is already on the list"
            if sub_status is None:
                to_subscribe.append(contact)
                if changed:
                    detail += "; added to the list"
            results[line] = RowResult(line, email, outcome, detail)

        created = Contact.objects.bulk_create([c for _, c in new_contacts])
        for (line, contact), saved in zip(new_contacts, created, strict=True):
            results[line] = RowResult(line, contact.email, Outcome.CREATED, f"contact #{saved.pk}")
        if renamed:
            now = timezone.now()
            for contact in renamed:
                contact.updated_at = now
            Contact.objects.bulk_update(renamed, ["name", "updated_at"])
        Subscription.objects.bulk_create(
            [Subscription(contact=c, mailing_list=mailing_list) for c in [*created, *to_subscribe]],
            ignore_conflicts=True,
        )
        ContactEvent.objects.bulk_create(
            [
                ContactEvent(
                    contact=c, email=c.email, kind=ContactEvent.Kind.IMPORT, actor=actor, actor_label=actor_label,
                    new_status=c.status, detail={"list": mailing_list.name},
                )
                for c in created
            ]
        )
    return [results[line] for line, _, _ in chunk]


def open_text(binary: IO[bytes]) -> io.TextIOWrapper:
    """A text stream over an uploaded or opened binary file (UTF-8, with or without BOM)."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")


def csv_cell(value: object) -> object:
    """A value safe to put in an exported CSV cell.

    Text that a spreadsheet would run as a formula (=, +, -, @, tab, CR first: remote MTA
    diagnostics and notes are outside input) gets a leading apostrophe (OWASP "CSV injection").
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_report_csv(rows: Iterable[RowResult], out: IO[str]) -> None:
    """Write row results as CSV: line, email, outcome, detail."""
    writer = csv.writer(out)
    writer.writerow(["line", "email", "outcome", "detail"])
    for row in rows:
        writer.writerow([row.line, csv_cell(row.email), row.outcome, csv_cell(row.detail)])
