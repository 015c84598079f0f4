"""``manage.py classify_bounce FILE [FILE ...]``: run the bounce parsing engine on files.
An interface to the engine only (no database).

    manage.py classify_bounce a.eml b.eml          # one JSON line per recipient
    find mail -name '*.eml' | manage.py classify_bounce --files-from -
    manage.py classify_bounce - < message.eml       # one message on stdin
    manage.py classify_bounce --summary *.eml       # counts by kind and reason

Each line: {"file", "kind", "recipient", "status", "replycode", "reason", "hard",
"permanent", "diagnostic", "remote_mta", "message_id", "token"}; one line with
"recipient": null when a message names no recipient. Needs no database: it only wraps
``bounces.parsing.cli`` (which ``python -m bounces.parsing.cli`` runs without Django).
"""

from __future__ import annotations

import sys
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bounces.parsing.cli import run


class Command(BaseCommand):
    help = "Parse bounce messages (files, a list of files, or stdin) and print JSON lines."
    # No system checks: they would touch the database configuration, which this
    # command does not need (it must run where no database is reachable).
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", metavar="FILE",
                            help="message files; '-' reads one message from stdin")
        parser.add_argument("--files-from", metavar="LIST",
                            help="read paths, one per line, from LIST ('-' = stdin)")
        parser.add_argument("--summary", action="store_true",
                            help="print counts by kind and reason instead of JSON lines")

    def handle(self, *args: Any, **options: Any) -> None:
        files: list[str] = options["files"]
        source: str | None = options["files_from"]
        files_from: IO[str] | None = None
        if source == "-":
            files_from = sys.stdin
        elif source:
            try:
                files_from = open(source, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"cannot read {source}: {exc}") from exc
        if not files and files_from is None:
            raise CommandError("give FILE arguments, '-' for stdin, or --files-from LIST")
        try:
            # write straight to the process's stdout: OutputWrapper adds a call per line
            code = run(files, files_from=files_from, summary=options["summary"], out=sys.stdout)
        finally:
            if files_from is not None and files_from is not sys.stdin:
                files_from.close()
        sys.stdout.flush()
        if code:
            raise CommandError("some files could not be read (see stderr)", returncode=code)
