"""CSV import: encoding and delimiter sniffing, unreadable lines reported with their line
numbers while the rest is imported, and nothing created when nothing is imported."""

from __future__ import annotations

import io

import pytest

from contacts.importing import Outcome, import_contacts, open_text, sniff_delimiter, sniff_encoding
from contacts.models import Contact, MailingList, Subscription

pytestmark = pytest.mark.django_db

ROWS = "email;name\nzoe@example.org;Zoë Müller\nrene@example.org;René Ça\n"


def run(data: bytes, mailing_list: MailingList | None = None):
    mailing_list = mailing_list or MailingList.objects.create(name="News")
    return import_contacts(stream=open_text(io.BytesIO(data)), mailing_list=mailing_list)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252",
                                      "latin-1"])
def test_each_encoding_is_recognised_and_names_keep_their_accents(encoding):
    report = run(ROWS.encode(encoding))

    assert report.counts[Outcome.CREATED] == 2, report.notable
    assert Contact.objects.get(email="zoe@example.org").name == "Zoë Müller"
    assert Contact.objects.get(email="rene@example.org").name == "René Ça"


def test_a_cp1252_file_is_told_from_utf8_even_when_its_first_accent_comes_late():
    data = ("email,name\n" + "".join(f"u{i}@example.org,User {i}\n" for i in range(5000))
            + "last@example.org,Zoë “quoted”\n").encode("cp1252")
    assert len(data) > 64 * 1024

    assert sniff_encoding(io.BytesIO(data)) == "cp1252"
    run(data)
    assert Contact.objects.get(email="last@example.org").name == "Zoë “quoted”"


def test_a_byte_cp1252_does_not_define_falls_back_to_latin1():
    assert sniff_encoding(io.BytesIO(b"email\nx@example.org\n\x81\xe9\n")) == "latin-1"


@pytest.mark.parametrize(("delimiter", "label"), [(",", "comma"), (";", "semicolon"), ("\t", "tab"),
                                                  ("|", "pipe")])
def test_each_delimiter_is_recognised(delimiter, label):
    text = "\n".join(delimiter.join(row) for row in [
        ("email", "name"), ("a@example.org", "Smith, Ann"), ("b@example.org", "Bob; Jr"),
        ("c@example.org", "C|D"),
    ])
    report = run(text.encode())

    assert report.delimiter == delimiter
    assert report.counts[Outcome.CREATED] == 3, report.notable


def test_the_delimiter_inside_quotes_does_not_count():
    lines = ['email;name', 'a@example.org;"Doe, Jane, Dr"', 'b@example.org;"Roe, Rick, Mr"']
    assert sniff_delimiter(lines) == ";"


def test_an_unbalanced_quote_is_reported_with_its_line_and_does_not_swallow_the_next_rows():
    data = (b'email;name\n'
            b'ann@example.org;"Ann\n'           # line 2: the quote is never closed
            b'bob@example.org;Bob\n'
            b'carl@example.org;"Carl" Jr\n'     # line 4: text after the closing quote
            b'dora@example.org;Dora\n')

    report = run(data)

    assert report.counts[Outcome.CREATED] == 2
    assert set(Contact.objects.values_list("email", flat=True)) == {"bob@example.org", "dora@example.org"}
    unreadable = [(r.line, r.detail) for r in report.notable if r.outcome == Outcome.UNREADABLE]
    assert [line for line, _ in unreadable] == [2, 4]
    assert "unbalanced quote" in unreadable[0][1]


def test_an_overlong_line_is_reported_and_the_next_line_imported():
    data = b"email,name\nfirst@example.org,First\nsecond@example.org," + b"x" * 200_000 + b"\nthird@example.org,T\n"

    report = run(data)

    assert report.counts[Outcome.CREATED] == 2
    assert [(r.line, r.outcome) for r in report.notable] == [(3, Outcome.UNREADABLE)]


def test_a_new_list_is_created_only_when_a_row_is_imported():
    unsaved = MailingList(name="Fresh")
    report = run(b"email\nnot-an-address\n\n", unsaved)

    assert report.rows == 2 and report.imported == 0
    assert not report.list_created and unsaved.pk is None
    assert not MailingList.objects.filter(name="Fresh").exists()

    report = run(b"email\nnot-an-address\nok@example.org\n", MailingList(name="Fresh"))

    assert report.list_created
    fresh = MailingList.objects.get(name="Fresh")
    assert Subscription.objects.filter(mailing_list=fresh, contact__email="ok@example.org").exists()


def test_a_pipe_is_read_like_a_file():
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer) -> int:
            chunk = self._data.read(len(buffer))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    stream = open_text(io.BufferedReader(Pipe(ROWS.encode("utf-16"))))
    report = import_contacts(stream=stream, mailing_list=MailingList.objects.create(name="N"))

    assert report.counts[Outcome.CREATED] == 2
    assert Contact.objects.get(email="zoe@example.org").name == "Zoë Müller"
