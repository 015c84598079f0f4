"""Process bounce mailboxes now, in this process (no Celery needed).
An interface: calls the intake (mailbox poller, schedules).

    python manage.py process_bounces --all
    python manage.py process_bounces --mailbox "Main bounces" --dry-run
    python manage.py process_bounces --sync-schedules
"""

from __future__ import annotations

import argparse
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from bounces.intake.mailbox import (
    DatabaseUnavailableError,
    TransientRunError,
    database_failure_text,
    process_mailbox,
)
from bounces.intake.schedules import sync_all_schedules
from bounces.models import Mailbox, ProcessingRun


class Command(BaseCommand):
    help = "Fetch and process bounces from one or all enabled mailboxes, with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", action="append", default=[], metavar="NAME",
                            help="mailbox name (repeatable)")
        parser.add_argument("--all", action="store_true", help="every enabled mailbox")
        parser.add_argument("--dry-run", action="store_true",
                            help="fetch, parse and count, but change nothing (database or server)")
        parser.add_argument("--batch-size", type=_positive_int, default=None,
                            help="override the mailbox batch size")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--sync-schedules", action="store_true",
                            help="bring the Celery beat entries in line with the mailboxes, then exit")

    def handle(self, *args, **options) -> None:
        if options["sync_schedules"]:
            synced, removed = sync_all_schedules()
            self.stdout.write(f"{synced} mailbox schedules in sync, {removed} stale entries removed.")
            return
        mailboxes = self._mailboxes(options)
        show_bar = not options["no_progress"] and sys.stderr.isatty()
        failed = 0
        for mailbox in mailboxes:
            run = self._run(mailbox, options, show_bar)
            style = self.style.SUCCESS if run.status == ProcessingRun.Status.SUCCEEDED else self.style.ERROR
            prefix = "[dry run] " if run.dry_run else ""
            self.stdout.write(style(f"{prefix}{mailbox.name}: {run.get_status_display()} — "
                                    f"{run.fetched} fetched, {run.summary()}"))
            if run.status == ProcessingRun.Status.SKIPPED and run.error_log:
                self.stderr.write(run.error_log.strip())  # who holds the lock
            if run.status == ProcessingRun.Status.FAILED:
                failed += 1
                self.stderr.write(run.error_log.strip().splitlines()[-1] if run.error_log else "failed")
        if failed:
            raise CommandError(f"{failed} mailbox run(s) failed")

    def _mailboxes(self, options) -> list[Mailbox]:
        names = options["mailbox"]
        if names:
            found = list(Mailbox.objects.filter(name__in=names))
            missing = sorted(set(names) - {m.name for m in found})
            if missing:
                raise CommandError(f"no mailbox named {', '.join(missing)}")
            return found
        if options["all"]:
            return list(Mailbox.objects.filter(enabled=True))
        raise CommandError("name a mailbox with --mailbox NAME, or use --all")

    def _run(self, mailbox: Mailbox, options, show_bar: bool) -> ProcessingRun:
        bar = None
        if show_bar:
            from tqdm import tqdm

            # no monitor thread: large runs fork a parse worker, which wants no threads
            tqdm.monitor_interval = 0
            bar = tqdm(desc=mailbox.name, unit="msg", file=sys.stderr)

        def progress(run: ProcessingRun, n: int) -> None:
            if bar is not None:
                bar.total = run.total
                bar.update(n)
                bar.set_postfix_str(f"{run.hard} hard, {run.soft} soft, {run.unmatched} unmatched")

        try:
            return process_mailbox(
                mailbox_id=mailbox.pk, trigger=ProcessingRun.Trigger.COMMAND, dry_run=options["dry_run"],
                progress=progress, batch_size=options["batch_size"],
            )
        except DatabaseUnavailableError as exc:  # the run could not go on: say why, no traceback
            raise CommandError(str(exc)) from None
        except TransientRunError:
            return ProcessingRun.objects.filter(mailbox=mailbox).order_by("-created_at").first()
        except DatabaseError as exc:
            raise CommandError(database_failure_text(exc)) from None
        finally:
            if bar is not None:
                bar.close()


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number
