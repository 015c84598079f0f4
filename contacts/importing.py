"""Import contacts from CSV into a mailing list, with a report of every row not imported.

The file is read as a stream, a chunk of rows at a time (a few queries per chunk, not
per row), so a file of millions of rows runs in constant memory apart from the set of
addresses already seen (for duplicates within the file).

Each row ends in exactly one outcome (ImportOutcome): created, or already present and
then either updated (name filled in or changed), subscribed (added to the list) or kept
(nothing to do); or rejected: invalid address, duplicate of an earlier row, suppressed
address or domain, contact blacklisted/unsubscribed, unsubscribed from this list, or
an empty row, or a line that cannot be read as CSV. Nothing is silently dropped.

Reading (open_text, _read_rows): the encoding is sniffed (a UTF-8 or UTF-16 byte order
mark; UTF-16 without one from its zero bytes; UTF-8 when every byte decodes, else cp1252,
else latin-1), the delimiter too (`,` `;` tab `|`, from the first lines). Each physical
line is one record: a line that does not parse (an unbalanced quote, text after a closing
quote, an over-long line) is reported with its line number and the next line is read as
usual, so a stray quote never swallows the rows after it. A line break inside a quoted
field is therefore not supported (that row is reported).

A list that does not exist yet (an unsaved MailingList) is created only when the first
row is written to it: an import that imports nothing creates nothing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
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
    UNREADABLE = "rejected: unreadable line"

    REJECTED = (INVALID, DUPLICATE, SUPPRESSED, CONTACT_BLOCKED, LIST_UNSUBSCRIBED, EMPTY, UNREADABLE)
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
    list_created: bool = False  # the list did not exist and was created by this import
    delimiter: str = ","
    encoding: str = ""

    @property
    def imported(self) -> int:
        """Rows that put a contact on the list or changed one (created, updated, added)."""
        return sum(self.counts[o] for o in (Outcome.CREATED, Outcome.UPDATED, Outcome.SUBSCRIBED))

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


DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 20
MAX_LINE_CHARS = 64 * 1024  # a longer line is reported as unreadable (memory stays bounded)


def _norm_header(value: str) -> str:
    return value.strip().lower().replace("\ufeff", "")


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter of these first lines: of `,` `;` tab `|`, the one found the same number
    of times (at least once) on the most lines; `,` when none is (a one-column file)."""
    lines = [line for line in lines if line.strip()]
    best, best_score = ",", (0, 0)
    for char in DELIMITERS:
        counts = [_count_outside_quotes(line, char) for line in lines]
        present = [n for n in counts if n]
        if not present:
            continue
        mode = max(set(present), key=present.count)
        score = (counts.count(mode), mode)
        if score > best_score:
            best, best_score = char, score
    return best


def _physical_lines(stream: IO[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, text without its line ending, problem) per physical line; a line longer
    than MAX_LINE_CHARS is skipped to its end and reported (problem set)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (more := stream.readline(MAX_LINE_CHARS)) and not more.endswith(("\n", "\r")):
                pass
            yield number, "", f"line longer than {MAX_LINE_CHARS} characters"
            continue
        yield number, line.rstrip("\r\n"), ""


def _parse_line(text: str, delimiter: str) -> tuple[list[str], str]:
    """(cells, problem): one physical line as one CSV record, strictly."""
    if not text:
        return [], ""
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True)), ""
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            return [], "unbalanced quote (a quoted field is not closed on this line)"
        return [], f"not valid CSV: {exc}"
    except StopIteration:
        return [], ""


def _with_text(problem: str, text: str) -> str:
    """The problem, with the start of the line so the operator can find it."""
    if not problem or not text:
        return problem
    return f"{problem}: {text[:80]}" + ("…" if len(text) > 80 else "")


def _read_rows(stream: IO[str], report: ImportReport | None = None) -> Iterator[tuple[int, str, str, str]]:
    """(line, email, name, problem) for each data row; the header is optional.

    With a header, the email column is the first named like EMAIL_COLUMNS, the name
    the first named like NAME_COLUMNS. Without one, column 1 is the email, column 2 the name.
    The delimiter is sniffed from the first SNIFF_LINES lines. A line that cannot be read
    gives a row with `problem` set (and no email); reading goes on with the next line.
    """
    lines = _physical_lines(stream)
    head = list(itertools.islice(lines, SNIFF_LINES))
    delimiter = sniff_delimiter([text for _, text, _ in head])
    if report is not None:
        report.delimiter = delimiter
    records = itertools.chain(head, lines)
    email_col, name_col = 0, 1
    pending: list[tuple[int, list[str], str]] = []
    for number, text, problem in records:
        cells, problem = (([], problem) if problem else _parse_line(text, delimiter))
        if problem or not any(c.strip() for c in cells):
            # blank or unreadable before the header: data rows
            pending.append((number, cells, _with_text(problem, text)))
            continue
        header = [_norm_header(c) for c in cells]
        found = next((header.index(c) for c in EMAIL_COLUMNS if c in header), None)
        if found is not None:
            email_col = found
            name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
        else:
            if "@" not in "".join(cells):
                raise ImportFileError(
                    f"No email column: the header on line {number} ({', '.join(cells)[:200]!r}) names "
                    f"none of {', '.join(EMAIL_COLUMNS)}."
                )
            pending.append((number, cells, ""))
        break
    else:
        records = iter(())

    def rows() -> Iterator[tuple[int, list[str], str]]:
        yield from pending
        for number, text, problem in records:
            cells, problem = (([], problem) if problem else _parse_line(text, delimiter))
            yield number, cells, _with_text(problem, text)

    for number, cells, problem in rows():
        if problem:
            yield number, "", "", problem
            continue
        email = cells[email_col].strip() if len(cells) > email_col else ""
        name = cells[name_col].strip() if name_col is not None and len(cells) > name_col else ""
        if not any(c.strip() for c in cells):
            email = ""
        yield number, email, name[:200], ""


def _fingerprint(address: str) -> bytes:
    # 8-byte digests keep the "seen" set small for files of millions of rows.
    return hashlib.blake2b(address.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _chunks(items: Iterable[tuple[int, str, str, str]], size: int) -> Iterator[list[tuple[int, str, str, str]]]:
    chunk: list[tuple[int, str, str, str]] = []
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
    on_chunk: Callable[[ImportReport], None] | None = None,
    keep_rows: int = 10_000,
) -> ImportReport:
    """Import a CSV text stream into `mailing_list` and report what happened to each row.

    New valid addresses become active contacts subscribed to the list (ContactEvent
    "import"); an existing contact (matched regardless of case) is added to the list
    unless it unsubscribed from it, and its name is filled in or changed when
    `update_names`. Suppressed addresses and domains are rejected, and so are lines that
    cannot be read (with their line number; the next line is read as usual). The report
    keeps up to `keep_rows` notable rows (all are counted). One transaction per chunk: an
    import stopped half-way can simply be run again. An unsaved `mailing_list` is saved
    with the first row written to it, so an import that imports nothing creates no list.
    `on_row` sees every row, `on_chunk` the report after each chunk.
    """
    from campaigns.selectors import suppressed_among

    report = ImportReport(mailing_list=mailing_list.name, keep_rows=keep_rows)
    report.encoding = getattr(stream, "encoding", "") or ""
    seen: set[bytes] = set()
    label = actor_label or "CSV import"
    unsaved = mailing_list.pk is None
    for chunk in _chunks(_read_rows(stream, report), chunk_size):
        results = _import_chunk(
            chunk=chunk, mailing_list=mailing_list, seen=seen, update_names=update_names,
            actor=actor, actor_label=label, suppressed_among=suppressed_among,
        )
        for result in results:
            report.rows += 1
            report.add(result)
            if on_row is not None:
                on_row(result)
        if on_chunk is not None:
            on_chunk(report)
    report.list_created = unsaved and mailing_list.pk is not None
    return report


def _import_chunk(*, chunk, mailing_list, seen, update_names, actor, actor_label, suppressed_among
                  ) -> list[RowResult]:
    results: dict[int, RowResult] = {}
    valid: list[tuple[int, str, str]] = []
    for line, email, name, problem in chunk:
        if problem:
            results[line] = RowResult(line, email, Outcome.UNREADABLE, problem)
            continue
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
        ) if mailing_list.pk is not None else {}
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

        if mailing_list.pk is None and (new_contacts or to_subscribe or renamed):
            mailing_list.save()  # the first row written to a new list creates it
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
    return [results[line] for line, _, _, _ in chunk]


SNIFF_BYTES = 64 * 1024
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Bytes cp1252 leaves undefined: a file with one of them is read as latin-1.
CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


def sniff_encoding(binary: IO[bytes]) -> str:
    """The encoding of a CSV file: "utf-8-sig" (UTF-8 with or without a BOM), "utf-16"
    (with a BOM), "utf-16-le"/"utf-16-be" (no BOM, told by where the zero bytes are),
    else "cp1252", or "latin-1" when a byte cp1252 leaves undefined occurs.

    A seekable file is read through once (in chunks: memory stays bounded) to check that
    all of it is UTF-8, and left at its start; a pipe is judged on its first SNIFF_BYTES
    (open_text keeps them).
    """
    head = binary.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith(UTF16_BOMS):
        encoding = "utf-16"
    elif head.count(0) > len(head) // 4:
        even_zeros = head[0::2].count(0)
        encoding = "utf-16-be" if even_zeros > head[1::2].count(0) else "utf-16-le"
    else:
        encoding = _utf8_or_legacy(head, binary)
    if binary.seekable():
        binary.seek(0)
    return encoding


def _utf8_or_legacy(head: bytes, binary: IO[bytes]) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    undefined = False
    chunk = head
    utf8 = True
    while chunk:
        undefined = undefined or not CP1252_UNDEFINED.isdisjoint(chunk)
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        if not utf8 and undefined:
            break
        chunk = binary.read(1024 * 1024) if binary.seekable() else b""
    if utf8:
        return "utf-8-sig"
    return "latin-1" if undefined else "cp1252"


class _Replay(io.RawIOBase):
    """A pipe read again from its start: the sniffed head first, then the rest."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def open_text(binary: IO[bytes], encoding: str = "") -> io.TextIOWrapper:
    """A text stream over an uploaded or opened binary file, in its sniffed encoding
    (sniff_encoding; or `encoding` when given). Undecodable bytes become U+FFFD."""
    if not encoding:
        if binary.seekable():
            encoding = sniff_encoding(binary)
        else:
            head = binary.read(SNIFF_BYTES)
            encoding = sniff_encoding(io.BytesIO(head))
            binary = io.BufferedReader(_Replay(head, binary))
    return io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")


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
