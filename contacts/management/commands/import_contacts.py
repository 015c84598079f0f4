"""`manage.py import_contacts FILE --list NAME`: import a CSV file into a mailing list."""

from __future__ import annotations

import csv
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contacts.importing import (
    ImportFileError,
    Outcome,
    RowResult,
    csv_cell,
    import_contacts,
    open_text,
)
from contacts.models import MailingList


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file (a header naming an 'email' column, optionally 'name'; "
        "or no header: email, name) into a mailing list. Every row that is not created is "
        "reported with its outcome."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file (UTF-8), or - for standard input")
        parser.add_argument("--list", required=True, dest="list_name", help="mailing list name")
        parser.add_argument("--create-list", action="store_true", help="create the list if missing")
        parser.add_argument("--keep-names", action="store_true",
                            help="do not change the name of contacts already present")
        parser.add_argument("--report", metavar="PATH",
                            help="write every row's outcome as CSV to PATH (default: the rows not "
                                 "created are printed)")

    def handle(self, *args, file: str, list_name: str, create_list: bool, keep_names: bool,
               report: str | None, **options) -> None:
        try:
            mailing_list = MailingList.objects.get(name=list_name)
        except MailingList.DoesNotExist:
            if not create_list:
                raise CommandError(f"No mailing list named {list_name!r} (use --create-list).") from None
            # Saved with the first row imported: a file that imports nothing creates no list.
            mailing_list = MailingList(name=list_name)

        report_file = open(report, "w", newline="", encoding="utf-8") if report else None  # noqa: SIM115
        if report_file is not None:
            report_file.write("line,email,outcome,detail\r\n")

        def on_row(row: RowResult) -> None:
            if report_file is not None:
                csv.writer(report_file).writerow(
                    [row.line, csv_cell(row.email), row.outcome, csv_cell(row.detail)]
                )
            elif row.outcome != Outcome.CREATED:
                self.stdout.write(f"line {row.line}: {row.email or '(empty)'}: {row.outcome}"
                                  + (f" ({row.detail})" if row.detail else ""))

        try:
            if file == "-":
                stream = open_text(sys.stdin.buffer)
                result = self._run(stream, mailing_list, keep_names, on_row)
            else:
                try:
                    binary = open(file, "rb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    raise CommandError(f"Cannot open {file}: {exc}") from exc
                with binary, open_text(binary) as stream:
                    result = self._run(stream, mailing_list, keep_names, on_row)
        finally:
            if report_file is not None:
                report_file.close()
        if result.list_created:
            self.stdout.write(f"Created the list {list_name!r}.")
        elif mailing_list.pk is None:
            self.stdout.write(f"Nothing imported: the list {list_name!r} was not created.")
        self.stdout.write(result.summary())
        if report:
            self.stdout.write(f"Row outcomes written to {report}.")

    def _run(self, stream, mailing_list, keep_names, on_row):
        try:
            return import_contacts(
                stream=stream, mailing_list=mailing_list, update_names=not keep_names,
                actor_label="import_contacts command", on_row=on_row, keep_rows=0,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
