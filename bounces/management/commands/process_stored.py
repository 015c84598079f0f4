"""Process stored messages that are new or failed (reprocessing: no mail server involved), as one
run in chunks spread over the Celery workers. An interface: calls the intake.

    python manage.py process_stored                       # every pending stored message, on the workers
    python manage.py process_stored --mailbox "Main bounces" --wait
    python manage.py process_stored --in-process          # here, chunk after chunk (no worker needed)
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bounces.intake.stored import process_stored_messages
from bounces.models import Mailbox, ProcessingRun


class Command(BaseCommand):
    help = "Process stored messages still new or failed as one run, in chunks shared by the Celery workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", metavar="NAME", help="only the messages stored for this mailbox")
        parser.add_argument("--limit", type=int, default=None, help="at most this many messages, oldest first")
        parser.add_argument("--chunk-size", type=int, default=None,
                            help="messages per chunk (one task each); default PROCESSING_CHUNK_SIZE")
        parser.add_argument("--batch-size", type=int, default=500,
                            help="messages per transaction inside a chunk (default 500)")
        parser.add_argument("--in-process", action="store_true",
                            help="process the chunks here, one after another, instead of queueing them")
        parser.add_argument("--wait", action="store_true", help="wait for the run to end, printing its progress")
        parser.add_argument("--timeout", type=float, default=3600.0, help="how long --wait waits (seconds)")

    def handle(self, *args, **options) -> None:
        mailbox = None
        if options["mailbox"]:
            mailbox = Mailbox.objects.filter(name=options["mailbox"]).first()
            if mailbox is None:
                raise CommandError(f"no mailbox named {options['mailbox']}")
        if (options["chunk_size"] is not None and options["chunk_size"] < 1) or options["batch_size"] < 1:
            raise CommandError("--chunk-size and --batch-size must be 1 or more")
        run = process_stored_messages(mailbox=mailbox, limit=options["limit"], size=options["chunk_size"],
                                      batch_size=options["batch_size"], spread=not options["in_process"])
        self.stdout.write(f"run #{run.pk}: {run.total} stored messages in {run.chunks_total} chunks")
        if options["wait"] and not run.finished:
            run = self._wait(run, options["timeout"])
        if run.finished:
            style = self.style.SUCCESS if run.status == ProcessingRun.Status.SUCCEEDED else self.style.ERROR
            self.stdout.write(style(f"run #{run.pk}: {run.get_status_display()} — {run.processed} processed, "
                                    f"{run.summary()}"))
            if run.status != ProcessingRun.Status.SUCCEEDED and run.error_log:
                self.stderr.write(run.error_log.strip()[-2000:])
            if run.status == ProcessingRun.Status.FAILED:
                raise CommandError(f"run #{run.pk} failed")

    def _wait(self, run: ProcessingRun, timeout: float) -> ProcessingRun:
        deadline = time.monotonic() + timeout
        shown = -1
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.chunks_done != shown:
                shown = run.chunks_done
                self.stdout.write(f"  {run.chunks_done} / {run.chunks_total} chunks, "
                                  f"{run.processed} / {run.total} messages")
            if run.finished:
                return run
            time.sleep(0.5)
        raise CommandError(f"run #{run.pk} still {run.get_status_display().lower()} after {timeout:.0f} s "
                           f"({run.chunks_done} / {run.chunks_total} chunks)")
